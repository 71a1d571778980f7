"""HIVE ablation on a held-out synthetic split, over several seeds: Q-Align baseline / + local views (one
shared encoder) / + dual encoder / + fine levels / HIVE (dual encoder, fused levels), with the classical
reference (hand features + ridge) on the same split.

    python eval/hive_ablation.py --variant local --seeds 0 1 2 --base lmm_vqa/demo_model --work runs/abl_local

Makes the graded benchmark's data if missing (`lmm-vqa synth --layout graded --variant V`, 1280x720, so that
the local views are native-resolution crops), fine-tunes the five LoRA adapters per seed on the base (the
keyframes decoded once, into WORK/frame_cache, for all of them), assembles the two fused models with `lmm-vqa
hive`, scores the test split with every row and prints mean ± sd over the seeds of the challenge metric (NTIRE
2023 main score), SRCC, PLCC and the number of distinct predicted scores. Each finished seed's rows are kept in
WORK/seedN/results.json and a rerun skips that seed, so a run cut short (a GPU call's time limit) continues
where it stopped. Writes beside it: the dual encoder's gate and the share of the global tokens its fusion adds,
over training (gate.png, from the training logs), histograms of the predictions, coarse against fused
(hist.png), and eval/results/hive_ablation_<variant>.json.
"""

from __future__ import annotations

import argparse
import json
import os
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
# rows read from a fused model's test predictions: its fine adapter's own score (what the fusion is given)
PART_ROWS = {"fine levels alone (global, 9 levels)": ("hive_global", "score_fine"),
             "fine levels alone (dual encoder, 9 levels)": ("hive_dualenc", "score_fine")}


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
    p.add_argument("--variant", choices=["plain", "local", "clustered", "narrow"], default="plain")
    p.add_argument("--data", help="the data folder (default data/graded_<variant>; made if missing)")
    p.add_argument("--base", default="lmm_vqa/demo_model")
    p.add_argument("--work", help="default runs/ablation_<variant>")
    p.add_argument("--sources", type=int, default=16)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes making the data")
    p.add_argument("--train", nargs="*", default=[], help="extra key=value for every training run")
    p.add_argument("--parallel", action="store_true", help="train a seed's five adapters at the same time")
    p.add_argument("--record", help="result file (default eval/results/hive_ablation_<variant>.json)")
    p.add_argument("--global-only", action="store_true", help="only the global-view rows (the Q-Align baseline and "
                   "+ fine levels): what the clustered and narrow variants are built for, at a fraction of the cost")
    p.add_argument("--add-words", action="store_true", help="first give the base's tokenizer the finer level words "
                   "it lacks, each one token started between its neighbouring known words (eval/add_level_words.py), "
                   "and train every row on that base")
    args = p.parse_args(argv)
    train = {k: v for k, v in TRAIN.items() if v[1] == "global" or not args.global_only}
    fused = {k: v for k, v in FUSED.items() if set(v) <= set(train)}
    rows = {row: (folder, "score") for row, folder in ROWS.items() if folder in train or folder in fused}
    rows.update({row: part for row, part in PART_ROWS.items() if part[0] in fused})
    data = Path(args.data or f"data/graded_{args.variant}")
    work = Path(args.work or f"runs/ablation_{args.variant}")
    if not (data / "test/labels.txt").is_file():
        sh("lmm-vqa", "synth", data, "--layout", "graded", "--variant", args.variant, "--sources", args.sources,
           "--size", args.size, "--seconds", "2", "--fps", "8", "--workers", args.workers)
    from lmm_vqa.data import load_labels

    base = args.base
    if args.add_words:
        base = work / "base_words"
        if not (base / "config.json").is_file():
            sh("python", Path(__file__).parent / "add_level_words.py", args.base, base)

    labels = load_labels(data / "test/labels.txt")
    runs = {row: [] for row in rows}
    preds = {}
    for seed in args.seeds:
        run = work / f"seed{seed}"
        run.mkdir(parents=True, exist_ok=True)
        done = run / "results.json"  # a seed's rows, written when it is finished: a rerun skips it
        if done.is_file():
            saved = json.loads(done.read_text())
            for row, (folder, column) in rows.items():  # a row added since: read from the seed's predictions
                if row not in saved["rows"]:
                    saved["rows"][row], saved["preds"][row] = test_result(run, folder, column, labels, seed)
                runs[row].append(saved["rows"][row])
            if seed == args.seeds[0]:
                preds = {row: np.array(saved["preds"][row]) for row in rows}
            print(f"seed {seed}: finished earlier ({done}), not run again", flush=True)
            continue
        joined_preds = {}
        common = [f"model={base}", f"train_labels={data / 'train/labels.txt'}",
                  f"val_labels={data / 'val/labels.txt'}", f"epochs={args.epochs}", "frames=fps:2", "max_frames=4",
                  f"seed={seed}", "overwrite=true", f"frame_cache={work / 'frame_cache'}", *args.train]
        commands = [["lmm-vqa", "train", config, *common, f"views={views}", f"encoder={encoder}",
                     f"output_dir={run / name}"] for name, (config, views, encoder) in train.items()]
        if args.parallel:
            sh_parallel(commands, [run / f"train_{name}.log" for name in train])
        else:
            for cmd in commands:
                sh(*cmd)
        for name, (coarse, fine) in fused.items():
            sh("lmm-vqa", "hive", run / coarse, run / fine, "--val", data / "val/labels.txt", "--out", run / name)
        for folder in dict.fromkeys(folder for folder, _ in rows.values()):
            score_test(data, run / folder, run / f"test_{folder}.csv")
        for row, (folder, column) in rows.items():
            result, joined_preds[row] = test_result(run, folder, column, labels, seed)
            runs[row].append(result)
        if seed == args.seeds[0]:
            preds = {row: np.array(v) for row, v in joined_preds.items()}
        done.write_text(json.dumps({"rows": {row: runs[row][-1] for row in rows},
                                    "preds": joined_preds}) + "\n")
        print(f"seed {seed}: " + "; ".join(f"{row} SRCC {runs[row][-1]['srcc']:.4f}" for row in rows), flush=True)

    # the base model as it is, before any of the rows' fine-tuning (its own levels): where the rows start from
    if not (work / "test_base.csv").is_file():
        score_test(data, args.base, work / "test_base.csv")
    untrained, _ = overall(work / "test_base.csv", labels)
    classical = {}
    sh("python", Path(__file__).parent / "classical_baseline.py", "--train", data / "train/labels.txt",
       "--test", data / "test/labels.txt", "--out", work / "classical")
    for name in ("blur", "ridge"):
        result, _ = overall(work / "classical" / f"{name}.csv", labels)
        classical[name] = {k: result[k] for k in ("main", "srcc", "plcc")}

    table = []
    print(f"\n{args.variant} variant, seeds {args.seeds}: mean ± sd")
    print(f"{'model':<46}{'NTIRE main':>16}{'SRCC':>16}{'PLCC':>16}{'distinct':>10}")
    for row, results in runs.items():
        stats = {k: (float(np.mean([r[k] for r in results])), float(np.std([r[k] for r in results], ddof=1))
                     if len(results) > 1 else 0.0) for k in ("main", "srcc", "plcc", "distinct")}
        table.append({"row": row, **{k: {"mean": m, "sd": sd} for k, (m, sd) in stats.items()}, "runs": results})
        print(f"{row:<46}" + "".join(f"{m:>9.4f} ± {sd:<5.3f}" for k, (m, sd) in stats.items() if k != "distinct")
              + f"{stats['distinct'][0]:>10.0f}")
    print(f"{'base model, not fine-tuned':<46}{untrained['main']:>16.4f}{untrained['srcc']:>16.4f}{untrained['plcc']:>16.4f}")
    for name, r in classical.items():
        print(f"{'classical: ' + name:<46}{r['main']:>16.4f}{r['srcc']:>16.4f}{r['plcc']:>16.4f}")
    if any(encoder == "dual" for _, _, encoder in train.values()):
        gate_plot(work, args.seeds, work / "gate.png")
    histogram(preds, work / "hist.png")
    import record

    figures = {"variant": args.variant, "seeds": args.seeds, "sources": args.sources, "epochs": args.epochs,
               "size": args.size, "global_only": args.global_only, "base": args.base, "add_words": args.add_words,
               "rows": table, "classical": classical,
               "untrained": {k: untrained[k] for k in ("main", "srcc", "plcc")},
               "fusion_fit": {f"seed{s}/{n}": json.loads((work / f"seed{s}" / n / "hive.json").read_text())["weights"]
                              for s in args.seeds for n in fused}}
    print(f"wrote {record.write(f'hive_ablation_{args.variant}', figures, args.record)}")


def score_test(data: Path, model, out: Path) -> None:
    sh("lmm-vqa", "score", data / "test", "--model", model, "--out", out, "--quiet", "--overwrite",
       "--batch-size", "32", "--workers", "8")


def overall(csv: Path, labels, column: str = "score") -> tuple[dict, np.ndarray]:
    """The NTIRE 2023 metrics of `column` in a predictions file against the test labels, and the predictions."""
    from lmm_vqa.report import evaluate, join
    from lmm_vqa.results import read_rows

    joined = join(read_rows(csv), labels, column=column)
    return evaluate(joined, "ntire2023")["overall"], joined["pred"]


def test_result(run: Path, folder: str, column: str, labels, seed: int) -> tuple[dict, list]:
    """One row's metrics on the test split, from `column` of run/test_<folder>.csv, and its predictions."""
    result, pred = overall(run / f"test_{folder}.csv", labels, column)
    return ({"seed": seed, "main": result["main"], "srcc": result["srcc"], "plcc": result["plcc"],
             "distinct": int(len(np.unique(pred.round(4)))),
             **(fusion(run / folder) if TRAIN.get(folder, ("", "", ""))[2] == "dual" else {})},
            [float(x) for x in pred])


def gate_plot(work: Path, seeds: list, path: Path) -> None:
    """The dual encoder's fusion over training, from each run's log: tanh(gate), and the share it adds to the
    global view's tokens (||added|| / ||global||, the last batch before each log line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3), dpi=120)
    for seed in seeds:
        for name, (_, _, encoder) in TRAIN.items():
            log = work / f"seed{seed}" / name / "log.jsonl"
            if encoder != "dual" or not log.is_file():
                continue
            rows = [json.loads(line) for line in log.read_text().splitlines()]
            for ax, key in zip(axes, ("gate_tanh", "fusion_share")):
                points = [(r["step"], r[key]) for r in rows if key in r]
                if points:
                    ax.plot(*zip(*points), marker=".", label=f"{name}, seed {seed}")
    for ax, label in zip(axes, ("tanh(gate)", "||added|| / ||global tokens||")):
        ax.set_xlabel("step")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fusion(folder: Path) -> dict:
    """The dual encoder's learned fusion: tanh(gate), and the share of the global tokens it added in the last
    logged training batch (how much of the local views gets in)."""
    from safetensors.torch import load_file

    weights = load_file(folder / "adapter_model.safetensors")
    gate = next(v for k, v in weights.items() if k.endswith("hive_fusion.gate"))
    shares = [json.loads(line).get("fusion_share") for line in (folder / "log.jsonl").read_text().splitlines()]
    shares = [x for x in shares if x is not None]
    return {"gate_tanh": round(float(gate.float().tanh()), 4), "fusion_share": shares[-1] if shares else None}


def histogram(preds: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(preds), 1, figsize=(7, 1.8 * len(preds)), sharex=True, dpi=120)
    bins = np.histogram_bin_edges(np.concatenate(list(preds.values())), bins=80)  # one width: a collapse shows as one bar
    for ax, (name, pred) in zip(axes, preds.items()):
        ax.hist(pred, bins=bins, color="C0")
        ax.set_title(f"{name}: {len(np.unique(pred.round(4)))} distinct scores", fontsize=9)
    axes[-1].set_xlabel("predicted score (1-5)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
