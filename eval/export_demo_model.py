"""Write a trained scorer folder as the bundled demo model: fp16 weights, processor, scorer.json. A FastVLM
tower trained in its multi-branch form is folded into the shipped form first.

    python eval/export_demo_model.py runs/demo_model lmm_vqa/demo_model
"""

import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from lmm_vqa.scoring import SCORER_FILE

if __name__ == "__main__":
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    model = AutoModelForImageTextToText.from_pretrained(run, dtype=torch.float32)
    if model.config.model_type == "fast_vlm":
        from lmm_vqa.backbones.fast_vlm import reparameterize

        reparameterize(model.eval())
    model = model.half()
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(run).save_pretrained(out)
    shutil.copy(run / SCORER_FILE, out / SCORER_FILE)
    size = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 20
    print(f"wrote {out} ({size:.1f} MiB)")
