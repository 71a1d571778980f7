"""Backbone families: one module each, all of the same shape, registered in one dict.

The registry is the one place that knows a family at run time, looked up by a checkpoint's
`config.model_type` (`family_of`): where its vision encoder, projector and language model sit (LoRA
targets, the dual encoder's copy, QLoRA's unquantised modules, what compiles) and whether it uses
M-RoPE. Loading goes through `AutoProcessor` / `AutoModelForImageTextToText`; families transformers
does not have are implemented in lmm_vqa/models/ and registered with those Auto classes. A family module also says how a tiny offline
checkpoint of that family is built (tokenizer style, special tokens, config, processor and chat
template), so every registered family is tested the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Backbone:
    name: str
    model_types: tuple[str, ...]  # config.model_type values of real checkpoints of this family
    example_checkpoint: str  # a public hub checkpoint of this format
    tokenizer_style: str  # "llama" (SentencePiece-like BPE, BOS), "qwen" (byte-level, no BOS), "sentencepiece" (tokenizer.model)
    special_tokens: list[str]
    configure_tokenizer: Callable  # (tokenizer) -> None: bos/eos/pad and padding side
    build_tiny_config: Callable  # (tokenizer) -> PreTrainedConfig
    build_tiny_processor: Callable  # (tokenizer) -> ProcessorMixin with chat template
    # --- run-time facts, under the task model's `model` (transformers 5 layout)
    vision: str = "vision_tower"  # the vision encoder
    projector: str = "multi_modal_projector"  # vision features -> the LM's width ("visual.merger": inside the tower)
    mrope: bool = False  # M-RoPE (Qwen-VL): text positions continue past the vision grid, offsets in rope_deltas
    language: str = "language_model"  # the language model's decoder (mPLUG-Owl2: its layer list, "layers")
    init_tiny: Callable | None = None  # (model) -> None: weights a tiny random model needs beyond from_config's

    @property
    def encoder_parts(self) -> tuple[str, ...]:
        """The top-level modules that make image features: the vision encoder, and the projector where
        it is not inside the encoder."""
        return tuple(dict.fromkeys([self.vision, self.projector.split(".")[0]]))


from lmm_vqa.backbones import fast_vlm, llava, llava_onevision, mplug_owl2, qwen2_vl, qwen3_vl  # noqa: E402

BACKBONES: dict[str, Backbone] = {
    "llava": llava.BACKBONE,
    "fast_vlm": fast_vlm.BACKBONE,
    "llava_onevision": llava_onevision.BACKBONE,
    "mplug_owl2": mplug_owl2.BACKBONE,
    "qwen2_vl": qwen2_vl.QWEN2_VL,
    "qwen2_5_vl": qwen2_vl.QWEN2_5_VL,
    "qwen3_vl": qwen3_vl.QWEN3_VL,
    "qwen3_5": qwen3_vl.QWEN3_5,
}


def family_of(config) -> Backbone:
    """The registered family of a checkpoint's config (a PreTrainedConfig), by `model_type`."""
    model_type = getattr(config, "model_type", None)
    for backbone in BACKBONES.values():
        if model_type in backbone.model_types:
            return backbone
    supported = sorted(t for b in BACKBONES.values() for t in b.model_types)
    raise ValueError(f"model_type {model_type!r} ({', '.join(getattr(config, 'architectures', None) or ['?'])}) is "
                     f"not a family lmm-vqa supports; supported model types: {', '.join(supported)}")
