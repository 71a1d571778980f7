"""Model families lmm-vqa implements itself, for checkpoints whose own code is remote code pinned to an
old transformers (today: mPLUG-Owl2, the model of Q-Align, OneAlign and DeQA-Score).

`register()` makes transformers' Auto classes load them; lmm-vqa's loaders call it. From your own code:
`import lmm_vqa.models; lmm_vqa.models.register()`, then `AutoModelForImageTextToText.from_pretrained(...)`.
"""

import functools


def register() -> None:
    import lmm_vqa.models.mplug_owl2  # noqa: F401  (registers on import)


@functools.cache
def cache_keyword() -> str:
    """The name of a forward pass's KV-cache argument: `cache` since transformers 5.24, `past_key_values`
    before (still accepted there, with a deprecation warning)."""
    import inspect

    from transformers.masking_utils import create_causal_mask

    return "cache" if "cache" in inspect.signature(create_causal_mask).parameters else "past_key_values"
