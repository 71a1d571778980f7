"""Qwen2-VL and Qwen2.5-VL (M-RoPE, native-resolution vision), e.g. Qwen/Qwen2-VL-7B-Instruct."""

from __future__ import annotations

from lmm_vqa import backbones


def qwen_chat_template(image: str, video: str = "<|vision_start|><|video_pad|><|vision_end|>") -> str:
    """ChatML with a default system turn; `image` (`video`) is what one image (video) item renders as. With
    `add_vision_id` each is announced as "Picture N: " ("Video N: "), counted over the conversation, as
    Qwen2-VL's template does."""
    image, video = image.replace("\n", "\\n"), video.replace("\n", "\\n")
    return (
        "{%- set image_count = namespace(value=0) -%}{%- set video_count = namespace(value=0) -%}"
        "{%- for message in messages -%}"
        "{%- if loop.first and message['role'] != 'system' -%}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}{%- else -%}"
        "{%- for item in message['content'] -%}"
        "{%- if item['type'] == 'image' -%}{%- set image_count.value = image_count.value + 1 -%}"
        "{%- if add_vision_id -%}{{ 'Picture ' + image_count.value | string + ': ' }}{%- endif -%}{{ '" + image + "' }}"
        "{%- elif item['type'] == 'video' -%}{%- set video_count.value = video_count.value + 1 -%}"
        "{%- if add_vision_id -%}{{ 'Video ' + video_count.value | string + ': ' }}{%- endif -%}{{ '" + video + "' }}"
        "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{ '<|im_end|>\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


CHAT_TEMPLATE = qwen_chat_template(image="<|vision_start|><|image_pad|><|vision_end|>")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]


def configure_tokenizer(tok):
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})


def token_ids(tok):
    return {"image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
            "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
            "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
            "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>")}


def _text(tok):
    # head_dim 8 -> 4 rotary frequencies split over (t, h, w).
    return dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0},
                bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def build_tiny_config_2(tok):
    from transformers import Qwen2VLConfig

    vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2, patch_size=4,
                  spatial_merge_size=2, temporal_patch_size=2)
    return Qwen2VLConfig(vision_config=vision, text_config=_text(tok), **token_ids(tok))


def build_tiny_config_2_5(tok):
    from transformers import Qwen2_5_VLConfig

    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, patch_size=4, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=32, window_size=16, fullatt_block_indexes=[1])
    return Qwen2_5_VLConfig(vision_config=vision, text_config=_text(tok), **token_ids(tok))


def _processor(tok, cls_name):
    import transformers
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    # 4 px patches merged 2x2: images land on multiples of 8 px, between 8x8 and 64x64 pixels.
    pixels = {"shortest_edge": 8 * 8, "longest_edge": 64 * 64}
    image_processor = Qwen2VLImageProcessor(size=pixels, patch_size=4, merge_size=2, temporal_patch_size=2)
    video_processor = Qwen2VLVideoProcessor(size=pixels, patch_size=4, merge_size=2, temporal_patch_size=2)
    cls = getattr(transformers, cls_name)
    return cls(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
               chat_template=CHAT_TEMPLATE)


# The vision tower ("visual") holds its own patch merger, which projects to the LM's width; M-RoPE.
RUNTIME = dict(vision="visual", projector="visual.merger", mrope=True)
QWEN2_VL = backbones.Backbone("qwen2_vl", ("qwen2_vl",), "Qwen/Qwen2-VL-7B-Instruct", "qwen", SPECIAL_TOKENS,
                              configure_tokenizer, build_tiny_config_2,
                              lambda tok: _processor(tok, "Qwen2VLProcessor"), **RUNTIME)
QWEN2_5_VL = backbones.Backbone("qwen2_5_vl", ("qwen2_5_vl",), "Qwen/Qwen2.5-VL-7B-Instruct", "qwen",
                                SPECIAL_TOKENS, configure_tokenizer, build_tiny_config_2_5,
                                lambda tok: _processor(tok, "Qwen2_5_VLProcessor"), **RUNTIME)
