"""FP8 scoring on Hopper-class GPUs (`--dtype fp8`): the language model's large linear layers run as
float8 matrix products through torchao; everything else stays bf16 (vision tower, projector, norms, attention,
the head). Scaling (`--fp8-scaling`): row (default) quantises weights once per output row and activations per
token as they come; tensor uses one scale per weight matrix and one per activation tensor. Measured on an H200
(torch 2.11, torchao 0.17, LLaVA-7B shape; docs/benchmarks.md): tensor scaling ran at 0.92x row scaling's
frames/s, so row stays the default; tensor is there for GPUs and versions where the balance differs.

Needs a CUDA GPU of compute capability 8.9 or more (Ada, Hopper, Blackwell) and `pip install torchao`.
Scores move against bf16 (docs/benchmarks.md measures by how much); it is opt-in for that reason.
"""

from __future__ import annotations

MIN_CAPABILITY = (8, 9)
SCALINGS = ("row", "tensor")


def check_supported(device: str) -> None:
    """A clear error where FP8 matrix products cannot run: not a CUDA device, too old a GPU, no torchao."""
    import torch

    if not str(device).startswith("cuda"):
        raise ValueError(f"--dtype fp8 needs a CUDA GPU of compute capability >= 8.9 (Ada, Hopper); the device is "
                         f"{device}. Use bf16 (GPU) or fp32 (CPU)")
    capability = torch.cuda.get_device_capability(torch.device(device))
    if capability < MIN_CAPABILITY:
        raise ValueError(f"--dtype fp8 needs compute capability >= 8.9 (Ada, Hopper); {torch.cuda.get_device_name(device)} "
                         f"has {capability[0]}.{capability[1]}. Use bf16")
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise ValueError("--dtype fp8 runs its float8 layers through torchao: pip install torchao "
                         "(a version built for your torch)") from None


def _worth_quantising(module, name: str) -> bool:
    """Large plain linear layers whose sides fit float8 kernels (multiples of 16); LoRA's own small matrices
    stay as they are (their base layer is quantised)."""
    from torch import nn

    return (type(module) is nn.Linear and "lora_" not in name and module.in_features >= 256
            and module.out_features >= 256 and module.in_features % 16 == 0 and module.out_features % 16 == 0)


def check_scaling(scaling: str | None) -> str:
    scaling = scaling or "row"
    if scaling not in SCALINGS:
        raise ValueError(f"fp8 scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    return scaling


def quantize_language_model(model, scaling: str | None = "row") -> int:
    """Replace the language model's large linear layers' weights by float8 ones (in place, on the GPU), scaled
    per row or per tensor. Returns how many layers were converted."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, PerTensor, quantize_

    from lmm_vqa.compilation import language_modules

    count = 0

    def chosen(module, name):
        nonlocal count
        ok = _worth_quantising(module, name)
        count += ok
        return ok

    config = Float8DynamicActivationFloat8WeightConfig(
        granularity=PerRow() if check_scaling(scaling) == "row" else PerTensor())
    for lm in language_modules(model):
        quantize_(lm, config, filter_fn=chosen)
    if not count:
        raise ValueError("--dtype fp8: the language model has no linear layer large enough for float8 kernels")
    return count
