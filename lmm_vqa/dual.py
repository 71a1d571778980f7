"""HIVE's dual local-global encoder: global and local views through separate encoders, fused
before the language model.

- Two encoders. The global view goes through the model's vision tower and projector; the local
  views through a second copy of them (`model.model.hive_local`). The copy shares the frozen base
  weights, so it costs no memory, and gets its own LoRA (`vision: lora`) and its own trained
  projector, so the two encoders part ways as they train.
- Fusion (`model.model.hive_fusion`). Each frame's global-view tokens attend to that frame's
  local-view tokens (cross-attention), and the result is added through a tanh gate. The fusion's
  output projection starts at zero (as LoRA's B matrix does), so an untrained dual encoder is exactly
  the global-view model, and the language model sees as many image tokens per frame as with the
  global view alone. The gate starts open (tanh(1) = 0.76), not at zero as in Flamingo: with a zero
  gate no fusion weight gets a gradient until the gate has moved, and Adam moves a scalar by about one
  learning rate per step, so in a short fine-tune the gate stayed at 0.004 (docs/benchmarks.md).

Both hook into the model's own `get_image_features`, which in every family returns one feature
tensor per image at the language model's width. So the family's layer choice, projector, anyres
packing or patch merging apply to both encoders.

The prompt holds one image per frame (the global view). The local views are preprocessed apart
(`inputs["local_views"]`) and handed to the forward pass with `feeding(model, local_inputs)`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect

import torch
import torch.nn.functional as F
from torch import nn

LOCAL_ENCODER = "hive_local"  # model.model.hive_local: {vision_tower, multi_modal_projector} | {visual}
FUSION = "hive_fusion"  # model.model.hive_fusion: LocalGlobalFusion
LOCAL_KEY = "local_views"  # inputs[LOCAL_KEY]: the image processor's output for the local views
_PER_IMAGE_ARGS = ("pixel_values", "image_sizes", "image_grid_thw", "batch_num_images")


class LocalGlobalFusion(nn.Module):
    """Cross-attention from global-view tokens to local-view tokens, added through a tanh gate.

    global_tokens (F, Tg, D), local_tokens (F, Tl, D) -> (F, Tg, D); F frames, D the LM width.
    """

    def __init__(self, dim: int, inner_dim: int | None = None, head_dim: int = 64):
        super().__init__()
        inner = inner_dim or min(dim, 1024)  # a 4096-wide LM gets a 1024-wide attention: 17M parameters
        self.num_heads = max(1, inner // head_dim)
        self.norm_global, self.norm_local = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v = (nn.Linear(dim, inner, bias=False) for _ in range(3))
        self.out = nn.Linear(inner, dim, bias=False)
        nn.init.zeros_(self.out.weight)  # training starts from the global view alone, every weight with a gradient
        self.gate = nn.Parameter(torch.ones(()))
        self.share = None  # ||added|| / ||global tokens|| of the last training forward (a tensor): what gets in

    def forward(self, global_tokens: torch.Tensor, local_tokens: torch.Tensor) -> torch.Tensor:
        def heads(x):  # (F, T, inner) -> (F, H, T, inner / H)
            return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

        local = self.norm_local(local_tokens)
        q, k, v = heads(self.q(self.norm_global(global_tokens))), heads(self.k(local)), heads(self.v(local))
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)  # (F, Tg, inner)
        added = self.gate.tanh() * self.out(attended)
        if self.training:  # read by the training log
            self.share = added.detach().float().norm() / global_tokens.detach().float().norm().clamp_min(1e-12)
        return global_tokens + added


def inner_model(model):
    """The model under the task head (e.g. LlavaModel), through DDP and peft wrappers."""
    model = getattr(model, "module", model)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, "model", base)


def has_dual_encoder(model) -> bool:
    return hasattr(inner_model(model), FUSION)


def attach_dual_encoder(model) -> None:
    """Give a transformers image-text model (before peft wraps it) a local encoder and a fusion
    module, and route its `get_image_features` through them. Idempotent."""
    inner = inner_model(model)
    if hasattr(inner, FUSION):
        return
    from lmm_vqa.backbones import family_of

    parts = [n for n in family_of(inner.config).encoder_parts if isinstance(getattr(inner, n, None), nn.Module)]
    if not parts or not hasattr(inner, "get_image_features"):
        raise ValueError(f"{type(inner).__name__}: no vision tower / get_image_features to build a dual encoder on")
    local = nn.ModuleDict()
    for name in parts:
        module = getattr(inner, name)
        shared = {id(p): p for p in module.parameters()}  # deepcopy's memo: parameters stay the same tensors
        local[name] = copy.deepcopy(module, shared)
    ref = inner.get_input_embeddings().weight
    fusion = LocalGlobalFusion(model.config.get_text_config().hidden_size).to(ref.device, ref.dtype)
    inner.add_module(LOCAL_ENCODER, local)
    inner.add_module(FUSION, fusion)
    inner._hive_local_inputs = None
    encode_global = inner.get_image_features

    def get_image_features(*args, **kwargs):
        return _dual_image_features(inner, encode_global, *args, **kwargs)

    # generate() reads this signature to run the image encoder once before decoding
    get_image_features.__signature__ = inspect.signature(encode_global)
    inner.get_image_features = get_image_features  # an instance attribute shadows the class's method


@contextlib.contextmanager
def feeding(model, local_inputs: dict | None):
    """Make `local_inputs` (the local views, preprocessed) the dual encoder's for the forward
    passes inside the block. A model without a dual encoder takes None and nothing changes."""
    inner = inner_model(model)
    dual = hasattr(inner, FUSION)
    if dual != (local_inputs is not None):
        raise ValueError("the model has a dual encoder but no local views were given (scorer config "
                         "encoder: dual needs views: dual)" if dual else
                         "local views were given for a model without a dual encoder "
                         "(scorer config encoder: dual, but the checkpoint was not trained with it)")
    if not dual:
        yield
        return
    inner._hive_local_inputs = local_inputs
    try:
        yield
    finally:
        inner._hive_local_inputs = None


def _dual_image_features(inner, encode_global, *args, **kwargs):
    """The model's get_image_features, with the local views encoded by the local encoder and fused
    into the global views' features. Returns the global call's output, one fused tensor per frame."""
    local_inputs = inner._hive_local_inputs
    if local_inputs is None:
        raise ValueError("this model has a dual encoder: run it inside dual.feeding(model, local_inputs)")
    signature = inspect.signature(encode_global)
    call = signature.bind(*args, **kwargs).arguments  # every argument by name, so the per-image ones can be swapped
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            call.update(call.pop(p.name, {}))
    out = encode_global(**call)
    shared = {k: v for k, v in call.items() if k not in _PER_IMAGE_ARGS}  # layer choice, return_dict, ...
    with _local_encoder(inner):
        local = encode_global(**shared, **local_inputs).pooler_output
    glob = list(out.pooler_output)
    if len(local) % len(glob):
        raise ValueError(f"{len(local)} local views for {len(glob)} global views: expected the same number per frame")
    fused = fuse_views(getattr(inner, FUSION), glob, list(local))
    # as the family returns them: one (F, T, D) tensor (FastVLM) or a list of per-image tensors (LLaVA, Qwen-VL)
    out.pooler_output = torch.stack(fused) if torch.is_tensor(out.pooler_output) else fused
    return out


def fuse_views(fusion: nn.Module, glob: list[torch.Tensor], local: list[torch.Tensor]) -> list[torch.Tensor]:
    """F global feature tensors (Tg, D) and F*K local ones (Tl, D), frame by frame -> F fused (Tg, D)."""
    per_frame = len(local) // len(glob)
    if len({g.shape for g in glob}) == 1 and len({x.shape for x in local}) == 1:  # one batched call
        keys = torch.stack(local).reshape(len(glob), -1, local[0].shape[-1])
        return list(fusion(torch.stack(glob), keys.to(glob[0].dtype)))
    return [fusion(g[None], torch.cat(local[i * per_frame:(i + 1) * per_frame])[None].to(g.dtype))[0]
            for i, g in enumerate(glob)]


@contextlib.contextmanager
def _local_encoder(inner):
    """Swap the local encoder's modules in for the global ones while the block runs."""
    local = getattr(inner, LOCAL_ENCODER)
    originals = {name: getattr(inner, name) for name in local.keys()}
    try:
        for name, module in local.items():
            setattr(inner, name, module)
        yield
    finally:
        for name, module in originals.items():
            setattr(inner, name, module)


def split_views(images: list, views_per_frame: int) -> tuple[list, list]:
    """Per-frame [global, local...] images -> (the global views, the local views), order kept."""
    if len(images) % views_per_frame:
        raise ValueError(f"{len(images)} images are not whole frames of {views_per_frame} views")
    return images[::views_per_frame], [im for i, im in enumerate(images) if i % views_per_frame]
