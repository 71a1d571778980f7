"""Build the mPLUG-Owl2 parity fixture with the ORIGINAL code (Q-Align's q_align/model, transformers 4.36).

Not part of the test suite and not run by CI: it needs the original implementation, which pins
transformers 4.36, so it runs in its own environment. What it writes is committed beside it:

  checkpoint/     a tiny random mPLUG-Owl2 checkpoint saved by the original classes, in the hub's
                  format (config.json with model_type mplug_owl2 and visual_config, pytorch_model.bin,
                  tokenizer.model + tokenizer_config.json, preprocessor_config.json)
  images/         the test images (PNG)
  reference.json  per case: the prompt, the original tokenizer_image_token ids, and the original
                  model's level probabilities (fp32, CPU), computed exactly as Q-Align's scorer does
                  (expand2square with the mean colour, CLIPImageProcessor, softmax over the five level
                  logits at the last position; video: one <|image|> for all frames)

Run (see tests/data/mplug_owl2/README.md):
  python -m venv /tmp/v436 && /tmp/v436/bin/pip install torch transformers==4.36.2 sentencepiece protobuf \
      icecream 'numpy<2' pillow
  python -c "from lmm_vqa.testing import train_sentencepiece as t; t('/tmp/mplug_tok')"   # this project's env
  PYTHONPATH=/path/to/Q-Align /tmp/v436/bin/python tests/data/mplug_owl2/make_reference.py /tmp/mplug_tok
"""

import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
LEVELS = ["excellent", "good", "fair", "poor", "bad"]


def tiny_config(vocab_size):
    from q_align.model.configuration_mplug_owl2 import MPLUGOwl2Config

    visual = {"visual_model": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   image_size=32, patch_size=8, layer_norm_eps=1e-6),
              "visual_abstractor": dict(num_learnable_queries=8, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=48, encoder_hidden_size=32,
                                        grid_size=4, layer_norm_eps=1e-6)}
    return MPLUGOwl2Config(visual_config=visual, vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                           max_position_embeddings=2048, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def randomise(model, seed=0):
    """Weights far from the std-0.02 init, so outputs depend strongly on every input and module."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if p.ndim >= 2 and "embed" not in name and "query_embeds" not in name and "vit_eos" not in name:
                p.copy_(noise / math.sqrt(p.shape[-1]))
            elif name.endswith("weight") and p.ndim == 1:  # norms
                p.copy_(1 + 0.3 * noise)
            else:
                p.copy_(0.5 * noise)


def test_images(folder):
    rng = np.random.default_rng(0)
    sizes = {"landscape": (24, 40), "portrait": (44, 20), "square": (32, 32), "odd": (17, 53), "large": (70, 90)}
    out = {}
    for name, (h, w) in sizes.items():
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 255 // max(1, w - 1)), (yy * 255 // max(1, h - 1)), np.full_like(xx, 90)], -1)
        img = np.clip(img + rng.integers(-60, 60, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"{name}.png"
        Image.fromarray(img).save(path)
        out[name] = path
    for t in range(3):
        img = rng.integers(0, 255, (36, 48, 3)).astype(np.uint8)
        path = folder / f"frame{t}.png"
        Image.fromarray(img).save(path)
        out[f"frame{t}"] = path
    return out


def main(tokenizer_folder):
    from transformers import CLIPImageProcessor, LlamaTokenizer

    out = HERE
    ckpt = out / "checkpoint"
    shutil.rmtree(ckpt, ignore_errors=True)
    (out / "images").mkdir(exist_ok=True)
    ckpt.mkdir()
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(Path(tokenizer_folder) / f, ckpt / f)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(ckpt)
    # The original model's __init__ loads "q-future/one-align"'s tokenizer and image processor: run from a
    # folder where that name is a local folder holding this checkpoint's, so nothing is downloaded.
    work = Path(tempfile.mkdtemp())
    (work / "q-future").mkdir()
    shutil.copytree(ckpt, work / "q-future" / "one-align")
    os.chdir(work)

    from q_align.mm_utils import tokenizer_image_token
    from q_align.model.modeling_mplug_owl2 import MPLUGOwl2LlamaForCausalLM, expand2square

    tokenizer = LlamaTokenizer.from_pretrained(str(ckpt))  # Q-Align's builder: use_fast=False
    image_processor = CLIPImageProcessor.from_pretrained(str(ckpt))
    torch.manual_seed(0)
    config = tiny_config(tokenizer.vocab_size)
    # 4.36 picks SDPA by default, and the original's SDPA branch fails there with a NameError
    # (_prepare_4d_causal_attention_mask_for_sdpa is not imported): its eager attention it is.
    config._attn_implementation = "eager"
    model = MPLUGOwl2LlamaForCausalLM(config).eval()
    randomise(model)
    model.save_pretrained(ckpt, safe_serialization=False)  # the .bin format the hub repos hold
    for f in ("tokenizer.model", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy(work / "q-future" / "one-align" / f, ckpt / f)

    level_ids = [ids[1] for ids in tokenizer(LEVELS)["input_ids"]]
    fill = tuple(int(x * 255) for x in image_processor.image_mean)
    images = test_images(out / "images")

    def run(prompt, frames, video):
        ids = tokenizer_image_token(prompt, tokenizer, return_tensors="pt").unsqueeze(0)
        pil = [expand2square(Image.open(images[f]).convert("RGB"), fill) for f in frames]
        pixels = image_processor.preprocess(pil, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            logits = model(ids, images=[pixels] if video else pixels)["logits"][:, -1, level_ids]
        return ids[0].tolist(), torch.softmax(logits.double(), -1)[0].tolist()

    # Q-Align's scorer.py prompts: quality of an image, aesthetics of an image, quality of a video
    template = "USER: How would you rate the {0} of this {1}?\n<|image|>\nASSISTANT: The {0} of the {1} is"
    cases = []
    for name in ("landscape", "portrait", "square", "odd", "large"):
        prompt = template.format("quality", "image")
        ids, probs = run(prompt, [name], video=False)
        cases.append({"name": f"image_{name}", "prompt": prompt, "images": [f"{name}.png"], "input_ids": ids,
                      "level_probs": probs})
    prompt = template.format("aesthetics", "image")
    ids, probs = run(prompt, ["landscape"], video=False)
    cases.append({"name": "aesthetics_landscape", "prompt": prompt, "images": ["landscape.png"], "input_ids": ids,
                  "level_probs": probs})
    prompt = template.format("quality", "video")
    frames = ["frame0", "frame1", "frame2"]
    ids, probs = run(prompt, frames, video=True)
    cases.append({"name": "video_3_frames", "prompt": prompt, "images": [f"{f}.png" for f in frames],
                  "input_ids": ids, "level_probs": probs})
    import transformers

    record = {"made_by": "tests/data/mplug_owl2/make_reference.py with Q-Align's q_align/model",
              "transformers": transformers.__version__, "torch": torch.__version__,
              "levels": LEVELS, "level_ids": level_ids, "fill": list(fill), "cases": cases}
    (out / "reference.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({c["name"]: [round(p, 4) for p in c["level_probs"]] for c in cases}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
