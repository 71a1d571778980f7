"""Offline fixtures in the real formats: encoded videos and tiny random checkpoints.

Used by the tests and the benchmarks. Nothing here downloads anything: a tiny checkpoint is a
real `config.json` + `model.safetensors` + processor + chat template + a tokenizer trained
here with `tokenizers`, loaded back through the same `from_pretrained` path as a hub model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lmm_vqa.encoding import CODECS, write_video  # noqa: F401  (re-exported for tests and benchmarks)

# ----------------------------------------------------------------------------- videos


def moving_pattern(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a smooth colour field with a moving square, different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    freq = rng.uniform(0.02, 0.15, 3)
    out = np.empty((num_frames, height, width, 3), np.uint8)
    side = max(2, min(height, width) // 4)
    for t in range(num_frames):
        for c in range(3):
            out[t, :, :, c] = 127 + 120 * np.sin(freq[c] * (xx + 2 * t) + freq[(c + 1) % 3] * yy + phase[c])
        y0 = (t * 3) % max(1, height - side)
        x0 = (t * 5) % max(1, width - side)
        out[t, y0:y0 + side, x0:x0 + side] = (255 - 40 * (seed % 5), 40 * (seed % 7), 200)
    return out


def write_test_videos(folder: str | os.PathLike) -> dict[str, Path]:
    """A zoo of small real files, good and broken. Returns {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, codec in enumerate(CODECS):
        # 64x64 keeps SVT-AV1 (minimum 64 px) happy and everything fast.
        files[codec] = write_video(folder / f"{codec}{CODECS[codec][1]}", moving_pattern(20, 64, 64, seed=i),
                                   codec=codec, gop=5)
    files["odd_size"] = write_video(folder / "odd_size.mp4", moving_pattern(12, 50, 78, seed=7),
                                    codec="mpeg4")
    files["portrait"] = write_video(folder / "portrait.mp4", moving_pattern(12, 96, 48, seed=8), codec="h264")
    files["one_frame"] = write_video(folder / "one_frame.mp4", moving_pattern(1, 48, 64, seed=9), codec="h264")
    from PIL import Image

    files["image"] = folder / "still.png"
    Image.fromarray(moving_pattern(1, 40, 56, seed=10)[0]).save(files["image"])
    data = files["h264"].read_bytes()
    files["truncated"] = folder / "truncated.mp4"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["zero_bytes"] = folder / "zero_bytes.mp4"
    files["zero_bytes"].write_bytes(b"")
    files["not_video"] = folder / "notes.mp4"
    files["not_video"].write_text("this is a text file, not a video\n")
    return files


# ----------------------------------------------------------------------------- tokenizers

_CORPUS = (
    "How would you rate the quality of this video? The quality of the video is {w}. "
    "Rate the quality of the image. The quality of the image is {w}. "
    "Describe the quality of this video and explain why: blur, noise, compression blocks, exposure. "
)


def train_tokenizer(style: str, special_tokens: list[str], levels_single_token: bool = True, vocab_size: int = 1000):
    """Train a small BPE tokenizer with `tokenizers`, wrapped as a transformers fast tokenizer.

    style "llama": SentencePiece-like (metaspace, BOS `<s>` prepended). style "qwen": byte-level,
    no BOS. With `levels_single_token=False` the level words are kept out of the corpus, so they
    split into several tokens (and some share a first token).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    words = ["excellent", "good", "fair", "poor", "bad", "high", "low", "medium", "perfect", "terrible"]
    corpus = [_CORPUS.format(w=w if levels_single_token else "ok") for w in words] * 4
    if levels_single_token:
        corpus += [" ".join(words)] * 20
    corpus += ["the a of is in and to with this that was it quality video image frame sharp clear dark"] * 8
    if style == "llama":
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = sorted(set("".join(corpus)) | set("abcdefghijklmnopqrstuvwxyz") | {"▁"})
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                      initial_alphabet=alphabet, show_progress=False)
        tok.train_from_iterator(corpus, trainer)
        bos = special_tokens[1]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def train_sentencepiece(folder: str | os.PathLike, vocab_size: int = 500, levels_single_token: bool = True) -> Path:
    """Train a small SentencePiece model the way LLaMA's was made (BPE, byte fallback, split digits, a
    dummy prefix, `<unk>` `<s>` `</s>` = 0 1 2, no padding token) and save it as the hub's LLaMA
    checkpoints hold theirs: `tokenizer.model` plus a `tokenizer_config.json` naming LlamaTokenizer.
    With `levels_single_token=False` the level words stay out of the corpus and split into pieces."""
    import io
    import json

    import sentencepiece as spm

    words = ["excellent", "good", "fair", "poor", "bad", "high", "low", "medium", "perfect", "terrible"]
    if not levels_single_token:
        words = ["ok", "nice", "fine"]
    lines = []
    for w in words:
        lines += [f"USER: How would you rate the quality of this video?\nASSISTANT: The quality of the video is {w}.",
                  f"How would you rate the aesthetics of this image? The aesthetics of the image is {w}.",
                  "Describe the quality of this video and explain why: blur, noise, compression blocks, exposure."] * 3
    lines += [" ".join(words)] * 40
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", allow_whitespace_only_pieces=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "pad_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "legacy": False,
              "clean_up_tokenization_spaces": False, "model_max_length": 2048}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


# ----------------------------------------------------------------------------- checkpoints

def build_tiny_checkpoint(family: str, folder: str | os.PathLike, levels_single_token: bool = True,
                          seed: int = 0) -> Path:
    """Save a tiny random checkpoint of a registered backbone family into `folder`."""
    import torch

    from lmm_vqa.backbones import BACKBONES

    if family not in BACKBONES:
        raise ValueError(f"unknown backbone family {family!r}; known: {sorted(BACKBONES)}")
    spec = BACKBONES[family]
    folder = Path(folder)
    if spec.tokenizer_style == "sentencepiece":  # tokenizer.model, loaded as the hub's LLaMA checkpoints are
        import tempfile

        from transformers import AutoTokenizer

        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = AutoTokenizer.from_pretrained(train_sentencepiece(tmp, levels_single_token=levels_single_token))
    else:
        tokenizer = train_tokenizer(spec.tokenizer_style, spec.special_tokens, levels_single_token)
    spec.configure_tokenizer(tokenizer)
    processor = spec.build_tiny_processor(tokenizer)
    config = spec.build_tiny_config(tokenizer)
    torch.manual_seed(seed)
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_config(config)
    if spec.init_tiny:
        spec.init_tiny(model)
    # Random init with std 0.02 gives near-uniform level probabilities; a larger scale on the head
    # makes tiny models give distinct scores for distinct inputs, which the tests need.
    with torch.no_grad():
        model.get_output_embeddings().weight.normal_(0, 0.3)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def rig_greedy_answer(folder: str | os.PathLike, out: str | os.PathLike, prompt: str, answer: str) -> Path:
    """A copy of a tiny checkpoint whose greedy continuation of `prompt` is `answer`, then end of sequence:
    for testing scorers that read written answers, through the real generate(). The language model's
    layers are silenced (attention and MLP output projections zeroed), so each position's logits depend on
    its own token only; the answer's tokens get orthonormal embeddings, and the head maps each one (and the
    prompt's last token) to the next. The answer must not repeat a token. Tags such as <answer> become
    tokens of their own (added, not special, so decoding keeps them)."""
    import torch
    from transformers import AutoProcessor

    from lmm_vqa.checkpoints import from_pretrained

    processor = AutoProcessor.from_pretrained(folder)
    tok = processor.tokenizer
    tok.add_tokens([t for t in ("<think>", "</think>", "<answer>", "</answer>") if t not in tok.get_vocab()])
    model = from_pretrained(str(folder), dtype=torch.float32)
    model.resize_token_embeddings(len(tok))
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    chain = tok(prompt, add_special_tokens=False)["input_ids"][-1:] + tok(answer, add_special_tokens=False)["input_ids"]
    width = model.config.get_text_config().hidden_size
    if len(set(chain)) != len(chain) or len(chain) > width:
        raise ValueError(f"cannot rig {answer!r}: its tokens {chain} repeat, or outnumber the width {width}")
    embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    if embed.data_ptr() == head.data_ptr():
        raise ValueError("the checkpoint ties its head to its embeddings; rigging needs them apart")
    basis = torch.eye(width)
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith(("o_proj", "down_proj")) and isinstance(module, torch.nn.Linear):
                module.weight.zero_()
        head.zero_()
        for k, (token, following) in enumerate(zip(chain, chain[1:] + [eos])):
            embed[token] = basis[k]
            head[following] += 10 * basis[k]
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return Path(out)


def save_random_model(config, folder: str | os.PathLike, seed: int, dtype: str, device: str) -> None:
    """A model of `config` with seeded random weights in `dtype` (fp32 | bf16 | fp16), made on `device` and saved."""
    import torch
    from transformers import AutoModelForImageTextToText

    from lmm_vqa.checkpoints import torch_dtype

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=torch_dtype(dtype, device))
    model.save_pretrained(folder)


def build_llava_checkpoint(folder: str | os.PathLike, vision: dict, text: dict, image_size: int, patch_size: int,
                           seed: int = 0, dtype: str = "fp32", device: str = "cpu") -> Path:
    """Save a random LLaVA-1.5-format checkpoint of the given shapes (CLIPVisionConfig and LlamaConfig
    keyword arguments) with a locally trained tokenizer and the llava-1.5 chat template. Used for the
    demo model's untrained base and the 7B-shaped benchmarks. `text` may set a vocab_size larger than
    the tokenizer's, to get a real model's embedding shapes."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaProcessor

    from lmm_vqa.backbones import llava

    tok = train_tokenizer("llama", llava.SPECIAL_TOKENS)
    llava.configure_tokenizer(tok)
    vision_cfg = CLIPVisionConfig(image_size=image_size, patch_size=patch_size, **vision)
    text = {"vocab_size": len(tok), **text}
    text_cfg = LlamaConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                           **text)
    config = LlavaConfig(vision_config=vision_cfg, text_config=text_cfg,
                         image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu")
    save_random_model(config, folder, seed, dtype, device)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": image_size},
                                           crop_size={"height": image_size, "width": image_size}),
        tokenizer=tok, patch_size=patch_size, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=llava.CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    return Path(folder)


def build_fast_vlm_checkpoint(folder: str | os.PathLike, vision: dict, text: dict, side: int, seed: int = 0) -> Path:
    """Save a random FastVLM-format checkpoint for training from scratch: `vision` a TimmWrapperConfig's keyword
    arguments (`fast_vlm.vision_config`), `text` Qwen2Config's, `side` the input image's side in pixels. The
    tower gets timm's own initialisation (`fast_vlm.reinit_tower`); the demo model's untrained base."""
    import torch
    from transformers import AutoModelForImageTextToText

    from lmm_vqa.backbones import fast_vlm

    tok = train_tokenizer("qwen", fast_vlm.SPECIAL_TOKENS)
    fast_vlm.configure_tokenizer(tok)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(fast_vlm.build_tiny_config(tok, vision, text))
    fast_vlm.reinit_tower(model.model.vision_tower, seed)
    model.save_pretrained(folder)
    fast_vlm.build_tiny_processor(tok, side).save_pretrained(folder)
    return Path(folder)


def build_mplug_owl2_checkpoint(folder: str | os.PathLike, visual: dict, text: dict, seed: int = 0,
                                dtype: str = "fp32", device: str = "cpu") -> Path:
    """Save a random mPLUG-Owl2 checkpoint (Q-Align's format) of the given shapes: `visual` is the config's
    visual_config ({"visual_model": {...}, "visual_abstractor": {...}}, empty for the architecture's own
    sizes), `text` LlamaConfig keyword arguments. With a locally trained SentencePiece tokenizer; for the
    7B-shaped benchmarks."""
    import tempfile

    from transformers import AutoTokenizer, CLIPImageProcessor

    from lmm_vqa.backbones import mplug_owl2
    from lmm_vqa.models import register
    from lmm_vqa.models.mplug_owl2 import MPLUGOwl2Config, MPLUGOwl2Processor

    register()
    with tempfile.TemporaryDirectory() as tmp:
        tok = AutoTokenizer.from_pretrained(train_sentencepiece(tmp))
    mplug_owl2.configure_tokenizer(tok)
    config = MPLUGOwl2Config(visual_config=visual, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id, **{"vocab_size": len(tok), **text})
    save_random_model(config, folder, seed, dtype, device)
    side = config.vision_config.image_size
    processor = MPLUGOwl2Processor(CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side,
                                                                                                "width": side}),
                                   tok, image_seq_length=config.image_seq_length)
    processor.save_pretrained(folder)
    return Path(folder)


def build_qwen2_vl_checkpoint(folder: str | os.PathLike, vision: dict, text: dict, seed: int = 0, dtype: str = "fp32",
                              device: str = "cpu") -> Path:
    """Save a random Qwen2-VL checkpoint of the given shapes (Qwen2VLConfig's vision_config and text_config keyword
    arguments) with a locally trained tokenizer and the real processor's defaults (14 px patches merged 2 x 2, up
    to 1280 merged patches an image); for the 7B-shaped benchmarks."""
    from transformers import Qwen2VLConfig, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    from lmm_vqa.backbones import qwen2_vl

    tok = train_tokenizer("qwen", qwen2_vl.SPECIAL_TOKENS)
    qwen2_vl.configure_tokenizer(tok)
    text = {"vocab_size": len(tok), "bos_token_id": None, "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id, **text}
    config = Qwen2VLConfig(vision_config=vision, text_config=text, **qwen2_vl.token_ids(tok))
    save_random_model(config, folder, seed, dtype, device)
    Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(), tokenizer=tok,
                     chat_template=qwen2_vl.CHAT_TEMPLATE).save_pretrained(folder)
    return Path(folder)


def build_qwen3_5_checkpoint(folder: str | os.PathLike, vision: dict, text: dict, seed: int = 0, dtype: str = "fp32",
                             device: str = "cpu") -> Path:
    """Save a random Qwen3.5 checkpoint of the given shapes (Qwen3_5Config's vision_config and text_config keyword
    arguments) with a locally trained tokenizer and the published processor's settings (16 px patches merged 2 x 2,
    mean and std 0.5, thinking-style chat template); for the benchmarks of Q-ReAlign's shapes."""
    from transformers import Qwen2VLImageProcessor, Qwen3_5Config, Qwen3VLProcessor, Qwen3VLVideoProcessor

    from lmm_vqa.backbones import qwen3_vl

    tok = train_tokenizer("qwen", qwen3_vl.SPECIAL_TOKENS)
    qwen3_vl.configure_tokenizer_3(tok)
    text = {"bos_token_id": None, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, **text}
    config = Qwen3_5Config(vision_config=vision, text_config=text,
                           tie_word_embeddings=text.get("tie_word_embeddings", False), **qwen3_vl.token_ids(tok))
    save_random_model(config, folder, seed, dtype, device)
    pixels = {"shortest_edge": 65536, "longest_edge": 16777216}
    norm = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=16, **norm),
                     video_processor=Qwen3VLVideoProcessor(size=pixels, patch_size=16, **norm), tokenizer=tok,
                     chat_template=qwen3_vl.chat_template(thinking=True)).save_pretrained(folder)
    return Path(folder)


# Qwen3.5-0.8B and -9B (Q-ReAlign Mini and Pro), as their published config.json files give them: a ViT of 16 px
# patches merged 2 x 2 (12 x 768 for 0.8B, 27 x 1152 for 9B), and a language model in which three of every four
# layers are linear attention (gated delta rule) and the fourth full attention with an output gate, a quarter of
# each head rotated (M-RoPE, interleaved 11/11/10).
_QWEN3_5_TEXT = dict(vocab_size=248320, head_dim=256, linear_conv_kernel_dim=4, linear_key_head_dim=128,
                     linear_value_head_dim=128, linear_num_key_heads=16, max_position_embeddings=262144,
                     rope_parameters={"rope_type": "default", "mrope_section": [11, 11, 10], "mrope_interleaved": True,
                                      "rope_theta": 10000000.0, "partial_rotary_factor": 0.25})
QWEN3_5_0_8B_SHAPES = {"vision": dict(depth=12, hidden_size=768, intermediate_size=3072, num_heads=12,
                                      out_hidden_size=1024),
                       "text": dict(_QWEN3_5_TEXT, hidden_size=1024, intermediate_size=3584, num_hidden_layers=24,
                                    num_attention_heads=8, num_key_value_heads=2, linear_num_value_heads=16,
                                    tie_word_embeddings=True)}
QWEN3_5_9B_SHAPES = {"vision": dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16,
                                    out_hidden_size=4096),
                     "text": dict(_QWEN3_5_TEXT, hidden_size=4096, intermediate_size=12288, num_hidden_layers=32,
                                  num_attention_heads=16, num_key_value_heads=4, linear_num_value_heads=32,
                                  tie_word_embeddings=False)}


# Qwen2-VL-7B: a 32-block ViT (1280 wide, 14 px patches, merged 2 x 2 into the LM's width) and a 28-layer,
# 3584-wide language model with grouped-query attention (4 key/value heads) and M-RoPE.
QWEN2_VL_7B_SHAPES = {"vision": dict(depth=32, embed_dim=1280, hidden_size=3584, num_heads=16, mlp_ratio=4,
                                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
                      "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                   num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                                   rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24],
                                                    "rope_theta": 1000000.0})}


# mPLUG-Owl2 7B (Q-Align, OneAlign): ViT-L/14 at 448 px, a 6-layer abstractor with 64 queries (the
# architecture's defaults) and LLaMA-2-7B, for benchmarks with random weights.
MPLUG_OWL2_7B_SHAPES = {"visual": {"visual_model": {}, "visual_abstractor": {}},
                        "text": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                     num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048)}


# Shapes of the small demo model (random init, trained on synthetic data; ~6M parameters) and of
# LLaVA-1.5-7B (CLIP ViT-L/14-336 + Llama-2-7B), for benchmarks with random weights.
DEMO_SHAPES = {"vision": dict(hidden_size=192, intermediate_size=768, num_hidden_layers=6, num_attention_heads=3),
               "text": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                            num_key_value_heads=4, max_position_embeddings=1024),
               "image_size": 224, "patch_size": 16}
# The FastVLM-format demo (eval/build_demo_base.py --family fast_vlm): the tower is fast_vlm.DEMO_VISION.
DEMO_FAST_VLM_SHAPES = {"text": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                                     num_key_value_heads=4, max_position_embeddings=1024), "side": 256}
LLAVA_7B_SHAPES = {"vision": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, projection_dim=768),
                   "text": dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
                   "image_size": 336, "patch_size": 14}


def build_hive_folder(base: str | os.PathLike, folder: str | os.PathLike, dual_encoder: bool = False,
                      lora_std: float = 0.0, dtype: str = "fp32", device: str = "cpu") -> Path:
    """A HIVE folder as `lmm-vqa hive` writes one, without training: a coarse (5-level) and a fine
    (9-level) LoRA adapter on `base`, fusion weights 0.5 / 0.5. With `dual_encoder`, both use HIVE's
    dual encoder (global + 4 local views, LoRA on both vision encoders too). `lora_std` > 0 fills the
    LoRA B matrices (zero after peft's init, which leaves the base model unchanged) with random
    values, different per adapter, so that the two adapters answer differently."""
    import copy
    import json

    import torch
    from transformers import AutoProcessor

    from lmm_vqa.adapters import make_trainable
    from lmm_vqa.checkpoints import HIVE_FILE, from_pretrained, torch_dtype
    from lmm_vqa.dual import attach_dual_encoder
    from lmm_vqa.hive import PARTS
    from lmm_vqa.levels import DEFAULT_LEVELS, FINE_LEVELS
    from lmm_vqa.scoring import ScorerConfig

    folder, base = Path(folder), Path(base).resolve()
    net = from_pretrained(str(base), dtype=torch_dtype(dtype, device)).to(device)
    if dual_encoder:
        attach_dual_encoder(net)
    vision = "lora" if dual_encoder else "frozen"
    peft_model = make_trainable(net, language="lora", vision=vision, adapter_name=PARTS[0])
    peft_model.add_adapter(PARTS[1], copy.deepcopy(peft_model.peft_config[PARTS[0]]))
    if lora_std:
        with torch.no_grad():
            for seed, part in enumerate(PARTS):
                gen = torch.Generator().manual_seed(seed)
                for name, p in peft_model.named_parameters():
                    if f"lora_B.{part}." in name:
                        p.copy_(torch.randn(p.shape, generator=gen) * lora_std)
    peft_model.save_pretrained(folder)  # adapters not named "default" go to folder/<name>
    processor = AutoProcessor.from_pretrained(base)
    views = dict(views="dual", local_views="grid:4", encoder="dual") if dual_encoder else {}
    for part, levels in zip(PARTS, (DEFAULT_LEVELS, FINE_LEVELS)):
        processor.save_pretrained(folder / part)
        ScorerConfig(levels=levels.to_json(), **views).save(folder / part)
        cfg = json.loads((folder / part / "adapter_config.json").read_text())
        cfg["base_model_name_or_path"] = str(base)
        (folder / part / "adapter_config.json").write_text(json.dumps(cfg))
    (folder / HIVE_FILE).write_text(json.dumps({"adapters": {p: p for p in PARTS},
                                                "weights": {p: 0.5 for p in PARTS}}))
    return folder
