"""Write a trained scorer folder as the bundled demo model: fp16 weights, processor, scorer.json. A FastVLM
tower trained in its multi-branch form is folded into the shipped form first. The scorer scores three squares
spread over each frame (crops: 3, as the shipped model does since session 21; training validates on the centre).

    python eval/export_demo_model.py runs/demo_model lmm_vqa/demo_model [--crops K]
"""

import argparse
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from lmm_vqa.scoring import ScorerConfig

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--crops", type=int, default=3, help="squares scored per frame (1: the centre)")
    args = parser.parse_args()
    run, out = args.run, args.out
    model = AutoModelForImageTextToText.from_pretrained(run, dtype=torch.float32)
    if model.config.model_type == "fast_vlm":
        from lmm_vqa.backbones.fast_vlm import reparameterize

        reparameterize(model.eval())
    model = model.half()
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(run).save_pretrained(out)
    ScorerConfig.load(run, crops=args.crops).save(out)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 20
    print(f"wrote {out} ({size:.1f} MiB)")
