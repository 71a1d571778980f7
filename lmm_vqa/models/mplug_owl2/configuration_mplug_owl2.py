"""mPLUG-Owl2 configuration, read from the hub checkpoints' config.json as published.

Those files are LlamaConfig fields (the language model, at the top level) plus `visual_config`:
{"visual_model": {...}, "visual_abstractor": {...}}, with model_type "mplug_owl2". The two nested
dicts keep their published form; `vision_config` and `abstractor_config` read them with this
architecture's defaults (CLIP ViT-L/14 at 448 px; 64 queries, 6 layers) filled in.
"""

from __future__ import annotations

from dataclasses import dataclass

from huggingface_hub.dataclasses import strict
from transformers import LlamaConfig


@dataclass(frozen=True)
class MPLUGOwl2VisionSettings:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 448
    patch_size: int = 14
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0


@dataclass(frozen=True)
class MPLUGOwl2AbstractorSettings:
    num_learnable_queries: int = 64
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 2816
    attention_probs_dropout_prob: float = 0.0
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024
    grid_size: int = 32  # the vision tower's patch grid side (448 / 14); keys carry its 2-D position codes


def _settings(cls, values: dict | None):
    known = {f for f in cls.__dataclass_fields__}
    return cls(**{k: v for k, v in (values or {}).items() if k in known})


@strict
class MPLUGOwl2Config(LlamaConfig):
    r"""
    The language model's settings are LlamaConfig's (LLaMA-2-7B by default). `visual_config` holds
    `visual_model` (the ViT) and `visual_abstractor` (the learned-query resampler) as dicts.
    `image_token_index` is the id that stands for one visual token in `input_ids`: not a vocabulary
    entry, the processor writes it (Q-Align's IMAGE_TOKEN_INDEX, -200), the model replaces it.
    """

    model_type = "mplug_owl2"

    visual_config: dict | None = None
    image_token_index: int = -200

    def __post_init__(self, **kwargs):
        if self.visual_config is None:
            self.visual_config = {"visual_model": {}, "visual_abstractor": {}}
        super().__post_init__(**kwargs)

    @property
    def vision_config(self) -> MPLUGOwl2VisionSettings:
        return _settings(MPLUGOwl2VisionSettings, self.visual_config.get("visual_model"))

    @property
    def abstractor_config(self) -> MPLUGOwl2AbstractorSettings:
        return _settings(MPLUGOwl2AbstractorSettings, self.visual_config.get("visual_abstractor"))

    @property
    def image_seq_length(self) -> int:
        """Visual tokens per image in the language model: the queries plus one end-of-image token."""
        return self.abstractor_config.num_learnable_queries + 1


__all__ = ["MPLUGOwl2Config"]
