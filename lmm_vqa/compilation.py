"""torch.compile of the language model for scoring: on by default on a GPU (`--compile auto`), off on the CPU.

The language model is ~94% of a 7B scorer's time; compiled, its kernels fuse (norms, RoPE, SiLU-gating,
residual adds) and launch with less Python. Each decoder layer is compiled on its own ("regional"
compilation): the layers share one code, so the first layer's compilation serves them all, and the warm-up
is seconds where compiling the whole language model took a minute. Measured on an H100, LLaVA-1.5-7B shape,
model only (eval/compile_probe.py, docs/benchmarks.md): eager 55.1 frames/s; layer by layer 71.6, warm-up
7.7 s; the whole model 67.4, warm-up 63.8 s. `dynamic=True`: one graph for every batch size and prompt
length, so a change of image count or a short last batch does not recompile. Inductor's cache on disk
(TORCHINDUCTOR_CACHE_DIR, by default under ~/.cache/lmm-vqa/inductor) spares a second run of the CLI most of
the warm-up.

Inductor keeps a fused kernel's intermediates in fp32 where eager bf16 rounds each op's output; compiled here
with `emulate_precision_casts`, it rounds where eager does. Measured on an H200 (docs/benchmarks.md): on the
trained demo model that halved the largest score difference against eager bf16 (0.0054 -> 0.0027 on the 1-5
scale, inside the documented 3e-3 bf16 tolerance).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from lmm_vqa.dual import inner_model

INDUCTOR_OPTIONS = {"emulate_precision_casts": True}  # round fused intermediates as eager does (see above)


def cache_dir() -> Path:
    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR", Path.home() / ".cache" / "lmm-vqa" / "inductor"))


def resolve(compile: str | bool | None, device=None) -> bool:
    """auto (None): on on a CUDA GPU, off elsewhere (the CPU gains little and waits for the compiler); on | off."""
    if compile in (None, "auto"):
        return device is not None and getattr(device, "type", str(device)).startswith("cuda")
    if compile in (True, "on"):
        return True
    if compile in (False, "off"):
        return False
    raise ValueError(f"compile must be auto, on or off, got {compile!r}")


def language_modules(model) -> list:
    """The language model, or each of its layers where the family keeps them in a plain list beside the vision
    parts (mPLUG-Owl2)."""
    from torch import nn

    from lmm_vqa.backbones import family_of

    inner = inner_model(model)
    lm = inner.get_submodule(family_of(inner.config).language)
    return list(lm) if isinstance(lm, nn.ModuleList) else [lm]


def decoder_layers(model) -> list:
    """The language model's decoder layers, in order (a language model without a `layers` list counts as one)."""
    from torch import nn

    layers = []
    for lm in language_modules(model):
        layers += list(lm.layers) if isinstance(getattr(lm, "layers", None), nn.ModuleList) else [lm]
    return layers


def compile_language_model(model) -> None:
    """Compile each decoder layer in place (the vision tower, the embeddings and the head stay eager). The first
    forward pass is timed: it compiles, or loads the compiled code from the cache (`warmup_s`)."""
    import time

    import torch

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
    layers = decoder_layers(model)
    # With a KV cache each layer guards on its own cache entry, so the shared code may hold one compiled entry a
    # layer, times the adapters a HIVE model switches between: past the limit, Dynamo would run the rest eagerly
    for limit in ("cache_size_limit", "accumulated_cache_size_limit"):
        setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 8 * len(layers)))
    for layer in layers:
        layer.compile(dynamic=True, options=INDUCTOR_OPTIONS)
        layer._lmm_vqa_compiled = True
    inner = inner_model(model)  # not compiled itself: its hooks time the first pass from outside

    def started(module, args, kwargs):
        inner._lmm_vqa_start = time.perf_counter()
        start_hook.remove()

    def finished(module, args, kwargs, output):
        inner._lmm_vqa_warmup_s = time.perf_counter() - inner._lmm_vqa_start
        end_hook.remove()

    start_hook = inner.register_forward_pre_hook(started, with_kwargs=True)
    end_hook = inner.register_forward_hook(finished, with_kwargs=True)


def is_compiled(model) -> bool:
    return any(getattr(layer, "_lmm_vqa_compiled", False) for layer in decoder_layers(model))


def warmup_s(model) -> float | None:
    """Seconds the compiled model's first forward pass took (compiling, or loading from the cache); None if it
    is not compiled or has not run."""
    return getattr(inner_model(model), "_lmm_vqa_warmup_s", None) if is_compiled(model) else None


def warmup_note(model) -> str:
    """What the CLI says after a compiled run: the warm-up and where its cache is."""
    seconds = warmup_s(model)
    if seconds is None:
        return ""
    return (f"torch.compile warm-up: {seconds:.1f} s in the first batch; Inductor's cache "
            f"({os.environ.get('TORCHINDUCTOR_CACHE_DIR', cache_dir())}) spares a second run most of it")


@contextlib.contextmanager
def eager(model):
    """The language model uncompiled for a while: generate() (explain) steps one token at a time with a
    growing cache, which graphs made for scoring's prompt-sized passes do not serve."""
    import torch

    if not is_compiled(model):
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield
