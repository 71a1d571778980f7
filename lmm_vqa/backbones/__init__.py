"""Backbone families: one module each, all of the same shape, registered in one dict.

Scoring goes through `AutoProcessor` / `AutoModelForImageTextToText` and needs nothing
family-specific; a family module says how a tiny offline checkpoint of that family is built
(tokenizer style, special tokens, config, processor and chat template), so every registered
family is tested the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Backbone:
    name: str
    model_types: tuple[str, ...]  # config.model_type values of real checkpoints of this family
    example_checkpoint: str  # a public hub checkpoint of this format
    tokenizer_style: str  # "llama" (SentencePiece-like, BOS) or "qwen" (byte-level, no BOS)
    special_tokens: list[str]
    configure_tokenizer: Callable  # (tokenizer) -> None: bos/eos/pad and padding side
    build_tiny_config: Callable  # (tokenizer) -> PreTrainedConfig
    build_tiny_processor: Callable  # (tokenizer) -> ProcessorMixin with chat template


from lmm_vqa.backbones import llava, llava_onevision, qwen2_vl  # noqa: E402

BACKBONES: dict[str, Backbone] = {
    "llava": llava.BACKBONE,
    "llava_onevision": llava_onevision.BACKBONE,
    "qwen2_vl": qwen2_vl.QWEN2_VL,
    "qwen2_5_vl": qwen2_vl.QWEN2_5_VL,
}
