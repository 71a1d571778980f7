"""torch.compile of the language model for scoring (opt-in: `--compile on`).

The language model is ~94% of a 7B scorer's time; compiled, its kernels fuse (norms, RoPE, SiLU-gating,
residual adds) and launch with less Python. `dynamic=True` compiles one graph for every batch size and
prompt length, so a change of image count or a short last batch does not recompile. Inductor's graph
cache on disk (TORCHINDUCTOR_CACHE_DIR, by default under ~/.cache/lmm-vqa/inductor) spares a second run
of the CLI part of the warm-up.

Inductor keeps a fused kernel's intermediates in fp32 where eager bf16 rounds each op's output; compiled here
with `emulate_precision_casts`, it rounds where eager does. Measured on an H200 (docs/benchmarks.md): on the
trained demo model that halved the largest score difference against eager bf16 (0.0054 -> 0.0027 on the 1-5
scale, inside the documented 3e-3 bf16 tolerance), and on the LLaVA-7B shape it scored 1.11x eager end to end.

Off by default: that 1.11x pays back its first warm-up (~100 s for a 7B model) only after tens of thousands
of frames, so a default run would mostly be slower; `--compile on` is for large jobs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


INDUCTOR_OPTIONS = {"emulate_precision_casts": True}  # round fused intermediates as eager does (see above)


def cache_dir() -> Path:
    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR", Path.home() / ".cache" / "lmm-vqa" / "inductor"))


def resolve(compile: str | bool | None) -> bool:
    """auto (None): off, on every device (see the module docstring); on | off."""
    if compile in (None, "auto"):
        return False
    if compile in (True, "on"):
        return True
    if compile in (False, "off"):
        return False
    raise ValueError(f"compile must be auto, on or off, got {compile!r}")


def language_modules(model) -> list:
    """The modules whose forward compiles: the language model, or each of its layers where the family
    keeps them in a plain list beside the vision parts (mPLUG-Owl2)."""
    from torch import nn

    from lmm_vqa.backbones import family_of
    from lmm_vqa.dual import inner_model

    inner = inner_model(model)
    lm = inner.get_submodule(family_of(inner.config).language)
    return list(lm) if isinstance(lm, nn.ModuleList) else [lm]


def compile_language_model(model) -> None:
    """Compile the language model's forward in place (the vision tower and the head stay eager). Each compiled
    module times its first call, which compiles (or loads the compiled code from the cache): `warmup_s`."""
    import time

    import torch

    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
    for lm in language_modules(model):
        lm._eager_forward = lm.forward
        compiled = torch.compile(lm.forward, dynamic=True, options=INDUCTOR_OPTIONS)

        def forward(*args, _compiled=compiled, _module=lm, **kwargs):
            if hasattr(_module, "_warmup_s"):
                return _compiled(*args, **kwargs)
            start = time.perf_counter()
            out = _compiled(*args, **kwargs)
            _module._warmup_s = time.perf_counter() - start
            return out

        lm.forward = forward


def warmup_s(model) -> float | None:
    """Seconds the compiled language model's first calls took (compiling, or loading from the cache); None if
    it is not compiled or has not run."""
    times = [getattr(lm, "_warmup_s", None) for lm in language_modules(model) if hasattr(lm, "_eager_forward")]
    return sum(times) if times and all(t is not None for t in times) else None


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
    growing cache, which a graph made for scoring's prompt-sized passes does not serve."""
    modules = [lm for lm in language_modules(model) if hasattr(lm, "_eager_forward")]  # none: not compiled
    compiled = [lm.forward for lm in modules]
    for lm in modules:
        lm.forward = lm._eager_forward
    try:
        yield
    finally:
        for lm, forward in zip(modules, compiled):
            lm.forward = forward
