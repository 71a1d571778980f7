"""HIVE ablation on the held-out synthetic split: Q-Align baseline / + local views / + fine levels / HIVE.

    python eval/hive_ablation.py --data data/synth_hive --base lmm_vqa/demo_model --work runs/ablation

Makes the synthetic VDPVE-style data if missing (448x256, so that 224 px local crops are native
resolution), fine-tunes four LoRA adapters on the base (coarse/fine levels x global/dual views),
assembles the two fused models with `lmm-vqa hive`, scores the test split with all four rows and
prints the table: the challenge metric (NTIRE 2023 main score), SRCC, PLCC and the number of
distinct predicted scores; a histogram of the predictions is written beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

ROWS = {  # row: (model folder under work, what it is)
    "Q-Align baseline (global, 5 levels)": "coarse_global",
    "+ local views (dual, 5 levels)": "coarse_dual",
    "+ fine levels (global, fused 5+9)": "hive_global",
    "HIVE (dual, fused 5+9)": "hive_dual",
}


def sh(*args):
    print("+", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/synth_hive")
    p.add_argument("--base", default="lmm_vqa/demo_model")
    p.add_argument("--work", default="runs/ablation")
    p.add_argument("--sources", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train", nargs="*", default=[], help="extra key=value for every training run")
    args = p.parse_args(argv)
    data, work = Path(args.data), Path(args.work)
    if not (data / "test/labels.txt").is_file():
        sh("lmm-vqa", "synth", data, "--layout", "vdpve", "--sources", args.sources, "--size", "448x256",
           "--seconds", "2", "--fps", "8")
    common = [f"model={args.base}", f"train_labels={data / 'train/labels.txt'}",
              f"val_labels={data / 'val/labels.txt'}", f"epochs={args.epochs}", "frames=fps:2", "max_frames=4",
              "overwrite=true", *args.train]
    for part in ("coarse", "fine"):
        for views in ("global", "dual"):
            sh("lmm-vqa", "train", f"hive_{part}_synthetic", *common, f"views={views}",
               f"output_dir={work / f'{part}_{views}'}")
    for views in ("global", "dual"):
        sh("lmm-vqa", "hive", work / f"coarse_{views}", work / f"fine_{views}", "--val", data / "val/labels.txt",
           "--out", work / f"hive_{views}")

    from lmm_vqa.report import evaluate, join
    from lmm_vqa.data import load_labels
    from lmm_vqa.results import read_rows

    labels = load_labels(data / "test/labels.txt")
    table, preds = [], {}
    for row, folder in ROWS.items():
        out = work / f"test_{folder}.csv"
        sh("lmm-vqa", "score", data / "test", "--model", work / folder, "--out", out, "--quiet", "--batch-size", "32",
           "--workers", "8")
        joined = join(read_rows(out), labels)
        result = evaluate(joined, "ntire2023")["overall"]
        preds[row] = joined["pred"]
        table.append({"row": row, "main": result["main"], "srcc": result["srcc"], "plcc": result["plcc"],
                      "distinct": int(len(np.unique(joined["pred"].round(4)))), "n": int(len(joined["pred"]))})
    print(f"\n{'model':<38}{'NTIRE main':>11}{'SRCC':>8}{'PLCC':>8}{'distinct':>10}{'n':>6}")
    for r in table:
        print(f"{r['row']:<38}{r['main']:>11.4f}{r['srcc']:>8.4f}{r['plcc']:>8.4f}{r['distinct']:>10}{r['n']:>6}")
    (work / "ablation.json").write_text(json.dumps(table, indent=2) + "\n")
    histogram(preds, work / "ablation_hist.png")


def histogram(preds: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(preds), 1, figsize=(7, 1.8 * len(preds)), sharex=True, dpi=120)
    for ax, (name, pred) in zip(axes, preds.items()):
        ax.hist(pred, bins=80, color="C0")
        ax.set_title(f"{name}: {len(np.unique(pred.round(4)))} distinct scores", fontsize=9)
    axes[-1].set_xlabel("predicted score (1-5)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
