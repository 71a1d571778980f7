"""HIVE ablation on the held-out synthetic split: Q-Align baseline / + local views (one shared
encoder) / + dual encoder / + fine levels / HIVE (dual encoder, fused levels).

    python eval/hive_ablation.py --data data/synth_hive --base lmm_vqa/demo_model --work runs/ablation

Makes the synthetic VDPVE-style data if missing (448x256, so that 224 px local crops are native
resolution), fine-tunes five LoRA adapters on the base, assembles the two fused models with
`lmm-vqa hive`, scores the test split with every row and prints the table: the challenge metric
(NTIRE 2023 main score), SRCC, PLCC and the number of distinct predicted scores; a histogram of
the predictions is written beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

TRAIN = {  # adapter folder under work: (config, views, encoder)
    "coarse_global": ("hive_coarse_synthetic", "global", "shared"),
    "coarse_tokens": ("hive_coarse_synthetic", "dual", "shared"),
    "coarse_dualenc": ("hive_coarse_synthetic", "dual", "dual"),
    "fine_global": ("hive_fine_synthetic", "global", "shared"),
    "fine_dualenc": ("hive_fine_synthetic", "dual", "dual"),
}
FUSED = {"hive_global": ("coarse_global", "fine_global"), "hive_dualenc": ("coarse_dualenc", "fine_dualenc")}
ROWS = {  # row: model folder under work
    "Q-Align baseline (global, 5 levels)": "coarse_global",
    "+ local views, one encoder (LM fuses tokens)": "coarse_tokens",
    "+ dual encoder (separate, gated fusion)": "coarse_dualenc",
    "+ fine levels (global, fused 5+9)": "hive_global",
    "HIVE (dual encoder, fused 5+9)": "hive_dualenc",
}


def sh(*args):
    print("+", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True)


def sh_parallel(commands: list[list], logs: list[Path]) -> None:
    """Run the commands at once (small models leave the GPU mostly idle); stop at the first failure."""
    procs = []
    for cmd, log in zip(commands, logs):
        print("+", " ".join(map(str, cmd)), f"> {log}", flush=True)
        procs.append(subprocess.Popen([str(a) for a in cmd], stdout=open(log, "w"), stderr=subprocess.STDOUT))
    failed = [log for p, log in zip(procs, logs) if p.wait() != 0]
    if failed:
        raise SystemExit(f"training failed, see {failed}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/synth_hive")
    p.add_argument("--base", default="lmm_vqa/demo_model")
    p.add_argument("--work", default="runs/ablation")
    p.add_argument("--sources", type=int, default=60)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train", nargs="*", default=[], help="extra key=value for every training run")
    p.add_argument("--parallel", action="store_true", help="train the five adapters at the same time")
    args = p.parse_args(argv)
    data, work = Path(args.data), Path(args.work)
    if not (data / "test/labels.txt").is_file():
        sh("lmm-vqa", "synth", data, "--layout", "vdpve", "--sources", args.sources, "--size", "448x256",
           "--seconds", "2", "--fps", "8")
    common = [f"model={args.base}", f"train_labels={data / 'train/labels.txt'}",
              f"val_labels={data / 'val/labels.txt'}", f"epochs={args.epochs}", "frames=fps:2", "max_frames=4",
              "overwrite=true", *args.train]
    work.mkdir(parents=True, exist_ok=True)
    commands = [["lmm-vqa", "train", config, *common, f"views={views}", f"encoder={encoder}",
                 f"output_dir={work / name}"] for name, (config, views, encoder) in TRAIN.items()]
    if args.parallel:
        sh_parallel(commands, [work / f"train_{name}.log" for name in TRAIN])
    else:
        for cmd in commands:
            sh(*cmd)
    for name, (coarse, fine) in FUSED.items():
        sh("lmm-vqa", "hive", work / coarse, work / fine, "--val", data / "val/labels.txt", "--out", work / name)

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
    print(f"\n{'model':<46}{'NTIRE main':>11}{'SRCC':>8}{'PLCC':>8}{'distinct':>10}{'n':>6}")
    for r in table:
        print(f"{r['row']:<46}{r['main']:>11.4f}{r['srcc']:>8.4f}{r['plcc']:>8.4f}{r['distinct']:>10}{r['n']:>6}")
    extra = {"fusion_fit": {n: json.loads((work / n / "hive.json").read_text()) for n in FUSED},
             "gate_tanh": {n: gate(work / n) for n, (_, _, enc) in TRAIN.items() if enc == "dual"}}
    for name, spec in extra["fusion_fit"].items():
        print(f"{name}: fusion weights {spec['weights']}, validation {spec['fit']}")
    print(f"dual-encoder gates, tanh(gate): {extra['gate_tanh']}")
    (work / "ablation.json").write_text(json.dumps({"rows": table, **extra}, indent=2) + "\n")
    histogram(preds, work / "ablation_hist.png")


def gate(folder: Path) -> float:
    """tanh of the dual encoder's learned fusion gate: how much of the local views gets in."""
    from safetensors.torch import load_file

    weights = load_file(folder / "adapter_model.safetensors")
    return round(float(next(v for k, v in weights.items() if k.endswith("hive_fusion.gate")).float().tanh()), 4)


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
