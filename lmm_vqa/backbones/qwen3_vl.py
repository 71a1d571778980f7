"""Qwen3-VL (e.g. Qwen/Qwen3-VL-8B-Instruct) and Qwen3.5 (e.g. Q-ReAlign, q-future/Q-ReAlign-Mini-0.8B).

Both: a native-resolution ViT with its own patch merger ("visual", "visual.merger"), 16 px patches merged
2x2, M-RoPE with interleaved sections, ChatML. Qwen3-VL adds deepstack features from inner vision layers;
Qwen3.5's language model mixes linear-attention (gated delta rule) layers with full-attention ones.
The tiny checkpoints' chat template follows Qwen3's thinking convention: with `enable_thinking=False` the
assistant turn opens with an empty think block, which is how Q-ReAlign's scorer renders its prompts.
"""

from __future__ import annotations

from lmm_vqa import backbones
from lmm_vqa.backbones.qwen2_vl import SPECIAL_TOKENS, configure_tokenizer

IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def chat_template(thinking: bool) -> str:
    """ChatML, no default system turn; images before the text of a turn as their items come. With
    `thinking`, `enable_thinking=False` opens the answer with an empty think block (Qwen3's convention)."""
    no_think = ("{%- if enable_thinking is defined and enable_thinking is false -%}"
                "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif -%}") if thinking else ""
    return (
        "{%- for message in messages -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}{%- else -%}"
        "{%- for item in message['content'] -%}"
        "{%- if item['type'] == 'image' -%}{{ '" + IMAGE + "' }}"
        "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{ '<|im_end|>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}" + no_think + "{%- endif -%}"
    )


def configure_tokenizer_3(tok):
    configure_tokenizer(tok)
    tok.add_tokens(["<think>", "</think>"])  # added tokens, but not special ones: decoding keeps them


def token_ids(tok):
    return {"image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
            "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
            "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
            "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>")}


# head_dim 8 -> 4 rotary frequencies split over (t, h, w), interleaved as the real checkpoints have it.
ROPE = {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": True, "rope_theta": 10000.0}
VISION = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, patch_size=4, spatial_merge_size=2,
              temporal_patch_size=2, out_hidden_size=32, num_position_embeddings=64)


def build_tiny_config_3(tok):
    from transformers import Qwen3VLConfig

    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, max_position_embeddings=4096, rope_parameters=ROPE,
                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Qwen3VLConfig(vision_config={**VISION, "deepstack_visual_indexes": [0]}, text_config=text, **token_ids(tok))


def build_tiny_config_3_5(tok):
    from transformers import Qwen3_5Config

    # four layers: three linear-attention, then one full-attention (the real ratio)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, linear_conv_kernel_dim=4, linear_key_head_dim=8,
                linear_value_head_dim=8, linear_num_key_heads=2, linear_num_value_heads=4,
                max_position_embeddings=4096, rope_parameters={**ROPE, "partial_rotary_factor": 1.0},
                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Qwen3_5Config(vision_config=VISION, text_config=text, **token_ids(tok))


def _processor(tok, thinking: bool):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    # 4 px patches merged 2x2: images land on multiples of 8 px, between 8x8 and 64x64 pixels.
    pixels = {"shortest_edge": 8 * 8, "longest_edge": 64 * 64}
    image_processor = Qwen2VLImageProcessor(size=pixels, patch_size=4, merge_size=2, temporal_patch_size=2)
    video_processor = Qwen3VLVideoProcessor(size=pixels, patch_size=4, merge_size=2, temporal_patch_size=2)
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                            chat_template=chat_template(thinking))


RUNTIME = dict(vision="visual", projector="visual.merger", mrope=True)
QWEN3_VL = backbones.Backbone("qwen3_vl", ("qwen3_vl",), "Qwen/Qwen3-VL-8B-Instruct", "qwen", SPECIAL_TOKENS,
                              configure_tokenizer_3, build_tiny_config_3, lambda tok: _processor(tok, False),
                              **RUNTIME)
QWEN3_5 = backbones.Backbone("qwen3_5", ("qwen3_5",), "q-future/Q-ReAlign-Mini-0.8B", "qwen", SPECIAL_TOKENS,
                             configure_tokenizer_3, build_tiny_config_3_5, lambda tok: _processor(tok, True),
                             **RUNTIME)
