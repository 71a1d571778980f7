"""mPLUG-Owl2 (Q-Align, OneAlign, DeQA-Score), implemented natively in lmm_vqa/models/mplug_owl2/.

Its language model's layers sit directly under the inner model (`model.layers`), beside the vision
tower (`model.vision_model`) and the visual abstractor (`model.visual_abstractor`, the projector).
The tiny checkpoint's tokenizer is a SentencePiece model, as the published checkpoints ship it.
"""

from __future__ import annotations

from lmm_vqa import backbones

TINY_VISUAL = {"visual_model": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                    image_size=32, patch_size=8),
               "visual_abstractor": dict(num_learnable_queries=8, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, intermediate_size=48, encoder_hidden_size=32,
                                         grid_size=4)}


def configure_tokenizer(tok):
    tok.pad_token = tok.unk_token  # the published checkpoints pad with <unk>


def build_tiny_config(tok):
    import lmm_vqa.models
    lmm_vqa.models.register()
    from lmm_vqa.models.mplug_owl2 import MPLUGOwl2Config

    return MPLUGOwl2Config(visual_config=TINY_VISUAL, vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                           max_position_embeddings=2048, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           pad_token_id=tok.pad_token_id)


def build_tiny_processor(tok):
    from transformers import CLIPImageProcessor

    from lmm_vqa.models.mplug_owl2 import MPLUGOwl2Processor

    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return MPLUGOwl2Processor(image_processor=image_processor, tokenizer=tok,
                              image_seq_length=TINY_VISUAL["visual_abstractor"]["num_learnable_queries"] + 1)


BACKBONE = backbones.Backbone("mplug_owl2", ("mplug_owl2",), "q-future/one-align", "sentencepiece", [],
                              configure_tokenizer, build_tiny_config, build_tiny_processor,
                              vision="vision_model", projector="visual_abstractor", language="layers")
