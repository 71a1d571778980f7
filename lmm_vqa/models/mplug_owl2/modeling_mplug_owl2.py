"""mPLUG-Owl2 (Ye et al., 2023), the model of Q-Align, OneAlign and DeQA-Score, for transformers 5.

The parts, with the module names of the published checkpoints (so their weights load as they are):
- `model.vision_model`: a CLIP-style ViT (ViT-L/14 at 448 px), pre-norm, fused per-head qkv.
- `model.visual_abstractor`: learned queries cross-attend to the ViT's tokens (keys carry fixed 2-D
  sine-cosine position codes), then a linear map to the language model's width and one learned
  end-of-image token: 64 + 1 visual tokens per image.
- `model.layers`...: LLaMA-2 whose key/value projections and both layer norms are "multiway": one
  copy for text tokens, one for visual tokens, chosen per token by a modality mask.

Images enter as `pixel_values`; in `input_ids` each visual token is `config.image_token_index`
(-200, Q-Align's IMAGE_TOKEN_INDEX: not a vocabulary id), which the processor writes and the model
replaces by the abstractor's output. The modality mask is where those ids were.

Written from the architecture's description and checked numerically against the original code's
outputs (tests/data/mplug_owl2/); attention, RoPE, caches, masks and generation are transformers'.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, BaseModelOutputWithPooling, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (LlamaMLP, LlamaRMSNorm, LlamaRotaryEmbedding,
                                                      apply_rotary_pos_emb, eager_attention_forward)

from lmm_vqa.models.mplug_owl2.configuration_mplug_owl2 import MPLUGOwl2Config

from lmm_vqa.models import cache_keyword

# transformers 5.24 renamed the cache argument `past_key_values` to `cache` (generate passes the new name):
# the model takes either, and uses the one this version knows for the mask builder and its outputs.
_CACHE_KW = cache_keyword()


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, dim) fixed codes: sines of dim/2 frequencies, then their cosines."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim / 2))
    angles = positions.reshape(-1, 1).float() * omega
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """(1 + grid^2, dim): a zero row for the class token, then row-major patches, each half of the
    code for one axis (first half: the row, second: the column)."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    codes = torch.cat([sincos_1d(dim // 2, rows), sincos_1d(dim // 2, cols)], dim=1)
    return torch.cat([torch.zeros(1, dim), codes])


def _attend(module, query, key, value, scaling, dropout=0.0, **kwargs):
    """Non-causal attention through transformers' attention interface; (B, H, L, d) in, (B, L, H, d) out."""
    attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(module.config._attn_implementation,
                                                                eager_attention_forward)
    out, _ = attention(module, query, key, value, None, scaling=scaling, dropout=dropout, **kwargs)
    return out


# ----------------------------------------------------------------------------- vision tower


class MPLUGOwl2VisionEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        v = config.vision_config
        self.cls_token = nn.Parameter(torch.zeros(1, 1, v.hidden_size))
        self.patch_embed = nn.Conv2d(v.num_channels, v.hidden_size, kernel_size=v.patch_size, stride=v.patch_size,
                                     bias=False)
        self.position_embedding = nn.Parameter(torch.zeros(1, (v.image_size // v.patch_size) ** 2 + 1, v.hidden_size))
        self.pre_layernorm = nn.LayerNorm(v.hidden_size, eps=v.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype)).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(len(patches), -1, -1).to(patches.dtype), patches], dim=1)
        tokens = tokens + self.position_embedding[:, : tokens.shape[1]].to(patches.dtype)
        return self.pre_layernorm(tokens)


class MPLUGOwl2VisionAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        v = config.vision_config
        self.config = config
        self.num_heads, self.head_dim = v.num_attention_heads, v.hidden_size // v.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = v.attention_dropout
        self.is_causal = False
        self.num_key_value_groups = 1
        self.query_key_value = nn.Linear(v.hidden_size, 3 * v.hidden_size)
        self.dense = nn.Linear(v.hidden_size, v.hidden_size)

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        # the fused projection is laid out head by head, q k v within each head
        qkv = self.query_key_value(hidden_states).view(batch, length, self.num_heads, 3, self.head_dim)
        query, key, value = qkv.permute(3, 0, 2, 1, 4)  # each (B, H, L, d)
        out = _attend(self, query, key, value, self.scaling, self.dropout if self.training else 0.0, **kwargs)
        return self.dense(out.reshape(batch, length, width))


class MPLUGOwl2VisionMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        v = config.vision_config
        self.fc1, self.fc2 = nn.Linear(v.hidden_size, v.intermediate_size), nn.Linear(v.intermediate_size, v.hidden_size)
        self.act = ACT2FN[v.hidden_act]

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class MPLUGOwl2VisionLayer(GradientCheckpointingLayer):
    def __init__(self, config):
        super().__init__()
        v = config.vision_config
        self.input_layernorm = nn.LayerNorm(v.hidden_size, eps=v.layer_norm_eps)
        self.self_attn = MPLUGOwl2VisionAttention(config)
        self.post_attention_layernorm = nn.LayerNorm(v.hidden_size, eps=v.layer_norm_eps)
        self.mlp = MPLUGOwl2VisionMLP(config)

    def forward(self, hidden_states, **kwargs):
        hidden_states = hidden_states + self.self_attn(self.input_layernorm(hidden_states), **kwargs)
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


class MPLUGOwl2VisionEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.ModuleList(MPLUGOwl2VisionLayer(config) for _ in range(config.vision_config.num_hidden_layers))

    def forward(self, hidden_states, **kwargs):
        for layer in self.layers:
            hidden_states = layer(hidden_states, **kwargs)
        return hidden_states


class MPLUGOwl2VisionModel(nn.Module):
    """Pixels (N, 3, S, S) -> tokens (N, 1 + (S/p)^2, D), final layer norm applied to every token."""

    def __init__(self, config):
        super().__init__()
        self.embeddings = MPLUGOwl2VisionEmbeddings(config)
        self.encoder = MPLUGOwl2VisionEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.vision_config.hidden_size, eps=config.vision_config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values), **kwargs))


# ----------------------------------------------------------------------------- visual abstractor


class MPLUGOwl2AbstractorMLP(nn.Module):
    """SwiGLU with a layer norm before the output projection."""

    def __init__(self, config):
        super().__init__()
        a = config.abstractor_config
        self.w1 = nn.Linear(a.hidden_size, a.intermediate_size)
        self.w2 = nn.Linear(a.intermediate_size, a.hidden_size)
        self.w3 = nn.Linear(a.hidden_size, a.intermediate_size)
        self.ffn_ln = nn.LayerNorm(a.intermediate_size, eps=a.layer_norm_eps)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.w2(self.ffn_ln(self.act(self.w1(x)) * self.w3(x)))


class MPLUGOwl2AbstractorAttention(nn.Module):
    """Queries attend to [queries; image tokens]; keys carry position codes, values do not."""

    def __init__(self, config):
        super().__init__()
        a = config.abstractor_config
        self.config = config
        self.num_heads, self.head_dim = a.num_attention_heads, a.hidden_size // a.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = a.attention_probs_dropout_prob
        self.is_causal = False
        self.num_key_value_groups = 1
        self.query = nn.Linear(a.hidden_size, a.hidden_size)
        self.key = nn.Linear(a.encoder_hidden_size, a.hidden_size)
        self.value = nn.Linear(a.encoder_hidden_size, a.hidden_size)
        # fixed codes, stored in the checkpoints: 1-D for the queries, 2-D (with the class token's zero row) for the image
        self.register_buffer("q_pos_embed", sincos_1d(a.hidden_size, torch.arange(a.num_learnable_queries)))
        self.register_buffer("k_pos_embed", sincos_2d(a.hidden_size, a.grid_size))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor, **kwargs) -> torch.Tensor:
        """queries (N, Q, D) and memory = [queries; image tokens] (N, Q + T, D), both normalised."""
        def heads(x):
            return x.view(*x.shape[:2], self.num_heads, self.head_dim).transpose(1, 2)

        q_pos = self.q_pos_embed.to(queries.dtype)
        k_pos = torch.cat([q_pos, self.k_pos_embed.to(queries.dtype)])
        query, key, value = heads(self.query(queries + q_pos)), heads(self.key(memory + k_pos)), heads(self.value(memory))
        out = _attend(self, query, key, value, self.scaling, self.dropout if self.training else 0.0, **kwargs)
        return out.reshape(*queries.shape[:2], -1)


class MPLUGOwl2AbstractorOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        dim = config.abstractor_config.hidden_size
        self.out_proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)  # eps 1e-5, as in the original (only ffn_ln takes the config's)
        self.mlp = MPLUGOwl2AbstractorMLP(config)


class MPLUGOwl2AbstractorCrossAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        dim = config.abstractor_config.hidden_size
        self.norm1, self.normk = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = MPLUGOwl2AbstractorAttention(config)
        self.output = MPLUGOwl2AbstractorOutput(config)

    def forward(self, queries, image_tokens, **kwargs):
        queries = self.norm1(queries)  # the residual stream continues from the normalised queries
        memory = torch.cat([queries, self.normk(image_tokens)], dim=1)
        queries = queries + self.output.out_proj(self.attention(queries, memory, **kwargs))
        return queries + self.output.mlp(self.output.norm2(queries))


class MPLUGOwl2AbstractorLayer(GradientCheckpointingLayer):
    def __init__(self, config):
        super().__init__()
        self.crossattention = MPLUGOwl2AbstractorCrossAttention(config)

    def forward(self, queries, image_tokens, **kwargs):
        return self.crossattention(queries, image_tokens, **kwargs)


class MPLUGOwl2AbstractorEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        n = config.abstractor_config.num_hidden_layers
        self.layers = nn.ModuleList(MPLUGOwl2AbstractorLayer(config) for _ in range(n))


class MPLUGOwl2VisualAbstractor(nn.Module):
    """Image tokens (N, T, Dv) -> visual tokens for the language model (N, Q + 1, D_lm)."""

    def __init__(self, config):
        super().__init__()
        a = config.abstractor_config
        self.encoder = MPLUGOwl2AbstractorEncoder(config)
        self.visual_fc = nn.Linear(a.hidden_size, config.hidden_size)
        self.query_embeds = nn.Parameter(torch.zeros(1, a.num_learnable_queries, a.hidden_size))
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, image_tokens: torch.Tensor, **kwargs) -> torch.Tensor:
        queries = self.query_embeds.expand(len(image_tokens), -1, -1).to(image_tokens.dtype)
        for layer in self.encoder.layers:
            queries = layer(queries, image_tokens, **kwargs)
        tokens = self.visual_fc(queries)
        return torch.cat([tokens, self.vit_eos.expand(len(tokens), -1, -1).to(tokens.dtype)], dim=1)


# ----------------------------------------------------------------------------- modality-adaptive LLaMA


class MPLUGOwl2Multiway(nn.Module):
    """Two copies of a token-wise module: `multiway[0]` for text tokens, `multiway[1]` for visual ones."""

    def __init__(self, make: Callable[[], nn.Module]):
        super().__init__()
        self.multiway = nn.ModuleList([make(), make()])

    def forward(self, hidden_states: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
        """`visual`: (B, L) bool, True at visual tokens; None when there are none (e.g. decoding)."""
        text = self.multiway[0](hidden_states)
        if visual is None:
            return text
        # Both copies run on every token and the mask picks: no data-dependent shapes, no host sync.
        return torch.where(visual[..., None], self.multiway[1](hidden_states), text)


class MPLUGOwl2MultiwayRMSNorm(MPLUGOwl2Multiway):
    """The multiway RMS norm. Its two copies share the normalisation and differ only in their scale, so the
    normalisation runs once and each token takes its copy's scale: the same numbers as running both copies
    and picking, with half the kernels (a host launching kernels is what limits scoring speed here)."""

    def __init__(self, hidden_size: int, eps: float):
        super().__init__(lambda: LlamaRMSNorm(hidden_size, eps=eps))

    def forward(self, hidden_states: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
        text, image = self.multiway
        if visual is None:
            return text(hidden_states)
        x = hidden_states.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + text.variance_epsilon)  # LlamaRMSNorm's steps
        return torch.where(visual[..., None], image.weight, text.weight) * x.to(hidden_states.dtype)


class MPLUGOwl2Attention(nn.Module):
    def __init__(self, config: MPLUGOwl2Config, layer_idx: int):
        super().__init__()
        self.config, self.layer_idx = config, layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = True
        width, kv_width, bias = config.hidden_size, config.num_key_value_heads * self.head_dim, config.attention_bias
        self.q_proj = nn.Linear(width, config.num_attention_heads * self.head_dim, bias=bias)
        self.k_proj = MPLUGOwl2Multiway(lambda: nn.Linear(width, kv_width, bias=bias))
        self.v_proj = MPLUGOwl2Multiway(lambda: nn.Linear(width, kv_width, bias=bias))
        self.o_proj = nn.Linear(config.num_attention_heads * self.head_dim, width, bias=bias)

    def forward(self, hidden_states, visual, position_embeddings, attention_mask=None, cache=None, **kwargs):
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states, visual).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states, visual).view(shape).transpose(1, 2)
        query, key = apply_rotary_pos_emb(query, key, *position_embeddings)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                                    eager_attention_forward)
        out, _ = attention(self, query, key, value, attention_mask, scaling=self.scaling,
                           dropout=self.config.attention_dropout if self.training else 0.0, **kwargs)
        return self.o_proj(out.reshape(*hidden_states.shape[:-1], -1))


class MPLUGOwl2DecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: MPLUGOwl2Config, layer_idx: int):
        super().__init__()
        self.self_attn = MPLUGOwl2Attention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = MPLUGOwl2MultiwayRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = MPLUGOwl2MultiwayRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, hidden_states, visual=None, attention_mask=None, position_embeddings=None, cache=None, **kwargs):
        attended = self.self_attn(self.input_layernorm(hidden_states, visual), visual, position_embeddings,
                                  attention_mask=attention_mask, cache=cache, **kwargs)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states, visual))


# ----------------------------------------------------------------------------- models


class MPLUGOwl2PreTrainedModel(PreTrainedModel):
    config_class = MPLUGOwl2Config
    config: MPLUGOwl2Config
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["MPLUGOwl2DecoderLayer", "MPLUGOwl2VisionLayer", "MPLUGOwl2AbstractorLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    _supports_flash_attn = False  # the vision and abstractor attention pass no mask; the LM's does
    _supports_attention_backend = True
    _can_compile_fullgraph = False  # the image features' scatter depends on the data

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, MPLUGOwl2VisionEmbeddings):
            module.cls_token.normal_(0, std)
            module.position_embedding.normal_(0, std)
        elif isinstance(module, MPLUGOwl2VisualAbstractor):
            module.query_embeds.normal_(0, std)
            module.vit_eos.normal_(0, std)
        elif isinstance(module, MPLUGOwl2AbstractorAttention):
            a = self.config.abstractor_config
            module.q_pos_embed.copy_(sincos_1d(a.hidden_size, torch.arange(a.num_learnable_queries)))
            module.k_pos_embed.copy_(sincos_2d(a.hidden_size, a.grid_size))


class MPLUGOwl2Model(MPLUGOwl2PreTrainedModel):
    """The language model with the vision tower and abstractor beside it, as the checkpoints lay them out."""

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(MPLUGOwl2DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)
        self.vision_model = MPLUGOwl2VisionModel(config)
        self.visual_abstractor = MPLUGOwl2VisualAbstractor(config)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        """(N, 3, S, S) -> `pooler_output`: N tensors (Q + 1, D), each image's tokens for the language model."""
        tokens = self.visual_abstractor(self.vision_model(pixel_values))
        return BaseModelOutputWithPooling(last_hidden_state=tokens, pooler_output=list(tokens))

    def forward(self, input_ids: torch.LongTensor | None = None, pixel_values: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, position_ids: torch.LongTensor | None = None,
                cache: Cache | None = None, inputs_embeds: torch.Tensor | None = None,
                visual_mask: torch.Tensor | None = None, use_cache: bool | None = None,
                past_key_values: Cache | None = None, **kwargs) -> BaseModelOutputWithPast:
        """`visual_mask` (B, L) bool marks visual tokens where `inputs_embeds` is given instead of ids.
        `past_key_values` is `cache` under its name before transformers 5.24."""
        cache = past_key_values if cache is None else cache
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if input_ids is not None:
            is_image = input_ids == self.config.image_token_index
            inputs_embeds = self.embed_tokens(input_ids.masked_fill(is_image, 0))
            if pixel_values is not None:
                features = torch.cat(list(self.get_image_features(pixel_values).pooler_output))
                count = int(is_image.sum())
                if count != len(features):
                    raise ValueError(f"the prompt has {count} visual-token places for {len(features)} visual tokens "
                                     f"({len(pixel_values)} images x {self.config.image_seq_length})")
                inputs_embeds = inputs_embeds.masked_scatter(is_image[..., None], features.to(inputs_embeds.dtype))
                visual_mask = is_image
            elif cache is None or cache.get_seq_length() == 0:
                if bool(is_image.any()):
                    raise ValueError("the prompt has image places but no pixel_values were given")
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if position_ids is None:
            seen = cache.get_seq_length() if cache is not None else 0
            position_ids = (torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + seen)[None]
        mask = create_causal_mask(config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  position_ids=position_ids, **{_CACHE_KW: cache})
        hidden = inputs_embeds
        position_embeddings = self.rotary_emb(hidden, position_ids=position_ids)
        for layer in self.layers:
            hidden = layer(hidden, visual_mask, attention_mask=mask, position_embeddings=position_embeddings,
                           cache=cache if use_cache else None, **kwargs)
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden), **{_CACHE_KW: cache if use_cache else None})


class MPLUGOwl2ForConditionalGeneration(MPLUGOwl2PreTrainedModel, GenerationMixin):
    """mPLUG-Owl2 with its language-model head; the class the `mplug_owl2` checkpoints load into."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}  # only where the config ties them

    def __init__(self, config: MPLUGOwl2Config):
        super().__init__(config)
        self.model = MPLUGOwl2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def get_image_features(self, pixel_values, **kwargs):
        return self.model.get_image_features(pixel_values, **kwargs)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, position_ids=None,
                cache=None, inputs_embeds=None, labels=None, use_cache=None,
                logits_to_keep: int | torch.Tensor = 0, past_key_values=None, **kwargs) -> CausalLMOutputWithPast:
        out = self.model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                         position_ids=position_ids, cache=past_key_values if cache is None else cache,
                         inputs_embeds=inputs_embeds,
                         use_cache=use_cache, **kwargs)
        hidden = out.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, keep])
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{_CACHE_KW: getattr(out, _CACHE_KW)})


__all__ = ["MPLUGOwl2ForConditionalGeneration", "MPLUGOwl2Model", "MPLUGOwl2PreTrainedModel"]
