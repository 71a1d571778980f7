"""lmm-vqa: video quality assessment with large multimodal models."""

__version__ = "0.1.0"


def load_scorer(model, device=None, dtype=None, **overrides):
    """Load a scoring checkpoint; see `lmm_vqa.checkpoints.load_scorer`."""
    from lmm_vqa.checkpoints import load_scorer as _load

    return _load(model, device=device, dtype=dtype, **overrides)
