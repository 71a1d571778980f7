"""LLaVA-OneVision (SigLIP + Qwen2, anyres), the format of Q-SiT, e.g. zhangzicheng/q-sit."""

from __future__ import annotations

from lmm_vqa import backbones
from lmm_vqa.backbones.qwen2_vl import qwen_chat_template

CHAT_TEMPLATE = qwen_chat_template(image="<image>\n", video="<video>\n")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]


def configure_tokenizer(tok):
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<image>", "<video>"]})


def build_tiny_config(tok):
    from transformers import LlavaOnevisionConfig, Qwen2Config, SiglipVisionConfig

    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                image_size=32, patch_size=8)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return LlavaOnevisionConfig(vision_config=vision, text_config=text,
                                image_token_index=tok.convert_tokens_to_ids("<image>"),
                                video_token_index=tok.convert_tokens_to_ids("<video>"),
                                vision_feature_layer=-1, vision_feature_select_strategy="full",
                                image_grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]],
                                vision_aspect_ratio="anyres_max_9")


def build_tiny_processor(tok):
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    image_processor = LlavaOnevisionImageProcessor(size={"height": 32, "width": 32}, image_grid_pinpoints=pinpoints)
    video_processor = LlavaOnevisionVideoProcessor(size={"height": 32, "width": 32})
    return LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                   num_image_tokens=16, vision_feature_select_strategy="full",
                                   vision_aspect_ratio="anyres_max_9", chat_template=CHAT_TEMPLATE)


BACKBONE = backbones.Backbone("llava_onevision", ("llava_onevision",), "llava-hf/llava-onevision-qwen2-7b-ov-hf",
                              "qwen", SPECIAL_TOKENS, configure_tokenizer, build_tiny_config, build_tiny_processor)
