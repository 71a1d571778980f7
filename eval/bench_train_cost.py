"""Fine-tuning cost at real scale: a LLaVA-1.5-7B-shaped model (CLIP ViT-L/14-336 + Llama-2-7B
shapes, random weights), one 336 px frame per sample, gradient checkpointing, through the recipe
itself (`train/lora_finetune.py`): samples/s and peak GPU memory for LoRA (bf16) and QLoRA (4-bit), and LoRA
without gradient checkpointing (a GPU with the memory for it recomputes nothing).

    python eval/bench_train_cost.py --work /tmp/cost --steps 12 --batch-size 8
    python eval/bench_train_cost.py --variants "LoRA bf16" "LoRA bf16, no checkpointing" --time-steps

`--time-steps`: the recipe's time_steps=true, one more run per variant: where a step's time goes (data,
forward, backward, optimizer; ms per step over the steps after the third). It waits for the GPU between the parts,
so its samples/s are not the plain run's; the plain rows are measured without it.

Each variant runs in its own process (fresh GPU memory). Samples/s is measured over the steps after
the first three (warm-up); peak memory is torch's max allocated over the whole run, loading included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import record

VARIANTS = {  # name: recipe overrides (after run_variant's own, so they win)
    "LoRA bf16": ["dtype=bf16"],
    "QLoRA 4-bit": ["dtype=bf16", "quantization=4"],
    "LoRA bf16, no checkpointing": ["dtype=bf16", "gradient_checkpointing=false"],
}


def prepare(work: Path, num_images: int, shapes: str = "7b") -> tuple[Path, Path]:
    """The random 7B-shaped checkpoint (bf16, on disk, loaded back as users load one) and labelled frames."""
    import torch
    from PIL import Image

    from lmm_vqa.testing import DEMO_SHAPES, LLAVA_7B_SHAPES, build_llava_checkpoint, moving_pattern

    model = work / f"llava_{shapes}_random"
    if not (model / "config.json").is_file():
        build_llava_checkpoint(model, **(LLAVA_7B_SHAPES if shapes == "7b" else DEMO_SHAPES), dtype="bf16", device="cuda" if torch.cuda.is_available()
                               else "cpu")
    frames_dir = work / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rows = ["path,mos"]
    rng = np.random.default_rng(0)
    for i in range(num_images):
        name = f"frame_{i:03d}.png"
        Image.fromarray(moving_pattern(1, 360, 480, seed=i)[0]).save(frames_dir / name)
        rows.append(f"{name},{rng.uniform(0, 100):.2f}")
    (frames_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    return model, frames_dir / "labels.csv"


def run_variant(name: str, model: Path, labels: Path, work: Path, steps: int, batch_size: int,
                time_steps: bool = False) -> dict:
    out = work / (name.replace(" ", "_").replace(",", "") + ("_timed" if time_steps else ""))
    overrides = [f"model={model}", f"train_labels={labels}", "val_labels=null", f"output_dir={out}",
                 "gradient_checkpointing=true", f"batch_size={batch_size}", f"max_steps={steps}", "log_every=1",
                 "frames=uniform:1", "max_frames=1", "mos_range=[0, 100]", "warmup_ratio=0", "num_workers=6",
                 "language=lora", "vision=frozen", "projector=true", "keep_checkpoints=1", "overwrite=true",
                 *VARIANTS[name], *(["time_steps=true"] if time_steps else [])]
    recipe = Path(__file__).resolve().parents[1] / "train" / "lora_finetune.py"
    cmd = [sys.executable, str(recipe), str(recipe.parent / "configs" / "synthetic_vdpve.yaml"), *overrides]
    subprocess.run(cmd, check=True)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    timed = [r for r in log if "loss" in r]
    warm = [r for r in timed if r["step"] > 3]
    seconds = warm[-1]["seconds"] - timed[2]["seconds"]
    summary = json.loads((out / "summary.json").read_text())
    if time_steps:
        parts = [k for k in warm[0] if k.startswith("ms_")]
        return {"variant": name, "batch": batch_size, **{k: float(np.mean([r[k] for r in warm])) for k in parts}}
    return {"variant": name, "batch": batch_size, "samples_per_s": len(warm) * batch_size / seconds,
            "peak_gib": max((r["max_memory_gib"] for r in log if "max_memory_gib" in r), default=float("nan")),
            "trainable_m": summary["trainable_parameters"] / 1e6, "loss_first": timed[0]["loss"],
            "loss_last": timed[-1]["loss"], "losses": [r["loss"] for r in timed]}  # to compare curves across variants


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/cost")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, nargs="+", default=[8])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--shapes", choices=["7b", "demo"], default="7b", help="demo: the small demo shapes, to try "
                                                                          "the script on a CPU")
    p.add_argument("--time-steps", action="store_true", help="also one timed run per variant: where a step's time "
                                                                "goes")
    p.add_argument("--record", help="result file (default eval/results/train_cost.json)")
    args = p.parse_args(argv)
    work = Path(args.work)
    model, labels = prepare(work, max(args.batch_size) * (args.steps + 1), args.shapes)
    rows = [run_variant(v, model, labels, work, args.steps, b) for v in args.variants for b in args.batch_size]
    split = ([run_variant(v, model, labels, work, args.steps, b, time_steps=True) for v in args.variants
              for b in args.batch_size] if args.time_steps else [])
    print(f"\n{'variant':<30}{'batch':>6}{'samples/s':>11}{'peak GiB':>10}{'trainable M':>13}{'loss first->last':>20}")
    for r in rows:
        print(f"{r['variant']:<30}{r['batch']:>6}{r['samples_per_s']:>11.2f}{r['peak_gib']:>10.2f}"
              f"{r['trainable_m']:>13.1f}{r['loss_first']:>11.3f} -> {r['loss_last']:.3f}")
    for r in split:
        print(f"{r['variant']}, batch {r['batch']}, where a step's time goes (ms): "
              + ", ".join(f"{k[3:]} {v:.0f}" for k, v in r.items() if k.startswith("ms_")))
    name = Path(args.record).stem if args.record else "train_cost"
    print(f"wrote {record.write(name, rows + split, args.record)}")


if __name__ == "__main__":
    main()
