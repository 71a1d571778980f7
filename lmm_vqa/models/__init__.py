"""Model families lmm-vqa implements itself, for checkpoints whose own code is remote code pinned to an
old transformers (today: mPLUG-Owl2, the model of Q-Align, OneAlign and DeQA-Score).

`register()` makes transformers' Auto classes load them; lmm-vqa's loaders call it. From your own code:
`import lmm_vqa.models; lmm_vqa.models.register()`, then `AutoModelForImageTextToText.from_pretrained(...)`.
"""


def register() -> None:
    import lmm_vqa.models.mplug_owl2  # noqa: F401  (registers on import)
