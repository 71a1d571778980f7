"""FastVLM in the transformers format (a timm FastViT-HD tower through `TimmWrapperModel` + Qwen2), e.g.
KamilaMila/FastVLM-0.5B (Apple's FastVLM converted).

The vision tower is convolutional up to its last two stages: every feature is rectified before anything is
pooled, so fine texture (noise, banding, blocking) reaches the language model, where a ViT's linear patch
embedding leaves it to the MLPs to discover. Its output grid (the input side / 64, squared) is flattened into
the visual tokens. Needs `timm` (the tower is built by `timm.create_model`).
"""

from __future__ import annotations

from lmm_vqa import backbones
from lmm_vqa.backbones.qwen2_vl import qwen_chat_template

CHAT_TEMPLATE = qwen_chat_template(image="<image>\n")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
PATCH = 64  # FastViT-HD's output stride: one visual token per 64x64 pixels


def vision_config(embed_dims=(16, 32, 64, 128, 256), layers=(1, 1, 1, 1, 1), inference_mode: bool = True) -> dict:
    """A FastViT-HD (timm `fastvit_mci3`) tower's config, smaller than the real one (layers (2, 12, 24, 4, 2),
    widths (96, ..., 1536)) where asked. Its features are twice the last width wide (FastViT's final
    convolution). `inference_mode`: each block reparameterised into one convolution, as FastVLM ships it;
    off, the multi-branch form with batch norms that FastViT is trained in (a reparameterised stack trained
    from scratch has no normalisation and its signal fades to nothing), folded by `reparameterize`."""
    return dict(architecture="fastvit_mci3", do_pooling=False, hidden_size=2 * embed_dims[-1], num_labels=0,
                model_args={"inference_mode": inference_mode, "layers": list(layers), "embed_dims": list(embed_dims)})


# The demo model's tower (eval/build_demo_base.py --family fast_vlm), in its training form: 1.2 M parameters,
# 512-wide features, one token per 64 px.
DEMO_VISION = vision_config(inference_mode=False)


def reinit_tower(tower, seed: int = 0):
    """Give a `TimmWrapperModel` tower timm's own initialisation. transformers re-initialises its convolutions with
    N(0, 0.02), right for loading weights over, but from which a stack this deep trains nowhere: activations
    shrink by orders of magnitude per stage (~1e-22 at the output). For training from scratch only."""
    import timm
    import torch

    torch.manual_seed(seed)
    fresh = timm.create_model(tower.config.architecture, pretrained=False, num_classes=0,
                              **(tower.config.model_args or {}))
    tower.timm_model.load_state_dict(fresh.state_dict())


def reparameterize(model):
    """Fold a FastVLM model's tower from its training form into FastVLM's shipped form, in place (the same
    function in eval mode, as timm's `reparameterize_model` computes it); returns the model."""
    from timm.utils import reparameterize_model

    tower = model.model.vision_tower
    if not (tower.config.model_args or {}).get("inference_mode", False):
        reparameterize_model(tower.timm_model, inplace=True)
        tower.config.model_args = {**tower.config.model_args, "inference_mode": True}
        model.config.vision_config = tower.config
    return model


def init_tiny(model):
    """A tiny random checkpoint in the shipped (reparameterised) form has no normalisation in its convolution
    stack, so transformers' N(0, 0.02) init leaves its output blind to the image (~1e-20 at the end). Each
    convolution is rescaled in turn so that its output has unit spread on random images (data-dependent
    init), which lets the image through as trained weights do."""
    import torch

    tower = model.model.vision_tower.eval()

    def unit_spread(conv, args, out):  # runs in forward order, so each sees its inputs already rescaled
        spread = out.std()
        conv.weight /= spread
        return out / spread  # what the rescaled convolution gives: its bias is zero

    with torch.no_grad():
        handles = []
        for conv in (m for m in tower.modules() if isinstance(m, torch.nn.Conv2d)):
            if conv.bias is not None:
                conv.bias.zero_()
            handles.append(conv.register_forward_hook(unit_spread))
        tower(pixel_values=torch.rand(4, 3, 128, 128))
        for handle in handles:
            handle.remove()


def configure_tokenizer(tok):
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})


def build_tiny_config(tok, vision: dict | None = None, text: dict | None = None):
    from transformers import FastVlmConfig, Qwen2Config, TimmWrapperConfig

    text = Qwen2Config(**{**dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048),
                          **(text or {}), "bos_token_id": None, "eos_token_id": tok.eos_token_id,
                          "pad_token_id": tok.pad_token_id})
    return FastVlmConfig(vision_config=TimmWrapperConfig(**(vision or vision_config((8, 16, 32, 64, 128)))),
                         text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"))


def build_tiny_processor(tok, side: int = 256):
    from transformers import CLIPImageProcessor, LlavaProcessor

    # FastVLM's preprocessing: bicubic resize of the short side, centre crop, pixels in [0, 1] (no mean/std)
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                         image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0])
    return LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=PATCH,
                          vision_feature_select_strategy="full", num_additional_image_tokens=0,
                          chat_template=CHAT_TEMPLATE)


BACKBONE = backbones.Backbone("fast_vlm", ("fast_vlm",), "KamilaMila/FastVLM-0.5B", "qwen", SPECIAL_TOKENS,
                              configure_tokenizer, build_tiny_config, build_tiny_processor, init_tiny=init_tiny)
