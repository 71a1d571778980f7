"""How a model does on the graded benchmark's held-out split: SRCC and PLCC against the labels, per kind
and overall, and how often it ranks each source's pristine clip above that source's clearly degraded
versions (strength >= 0.5), the issue-15 bar for the demo model (SRCC >= 0.85, pristine first >= 95%). Where the
errors come from: the mean SRCC inside each source's own clips (the content held fixed), and how far the pristine
clips' scores spread across sources (the content alone moves them), beside all scores' spread; and each score
split into its kind-strength cell's mean, its source's offset and the clip's own rest (`error_split`). With
`--vs-ssim`, also how far that rest follows each clip's own SSIM, and each cell's mean SSIM on these clips.

    lmm-vqa score data/graded/test --model M --out pred.csv
    python eval/graded_check.py pred.csv --labels data/graded/test/labels.txt [--record PATH]
    python eval/graded_check.py pred.csv --labels data/graded/test/labels.txt --relabel psnr

`--relabel ssim|psnr`: label maths the model never saw. Each clip's label becomes a full-reference measure of that
clip itself (its decoded keyframes against its source's decoded pristine clip: luma SSIM, or PSNR), which depends
on the content, where the benchmark's labels depend only on the kind and strength; the pristine clip itself gets
the measure's best value (SSIM 1, PSNR 60 dB).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

import record
from lmm_vqa.data import load_labels
from lmm_vqa.metrics import plcc, srcc
from lmm_vqa.results import read_rows
from lmm_vqa.synth import parse_graded_name


def full_reference_labels(labels, measure: str, frames: int = 4) -> list[float]:
    """Each clip's `measure` (ssim | psnr, luma) against its source's pristine clip, over `frames` keyframes."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from tqdm.auto import tqdm

    from lmm_vqa.video import load_frames

    def luma(path):
        return load_frames(path, f"uniform:{frames}", max_frames=frames).frames.astype(np.float32) @ \
            np.array([0.299, 0.587, 0.114], np.float32)

    pristine = {parse_graded_name(n)[1]: p for n, p in zip(labels["name"], labels["path"])
                if parse_graded_name(n)[0] == "none"}
    refs, out = {}, []
    for name, path in tqdm(list(zip(labels["name"], labels["path"])), desc=f"{measure} labels", unit="video"):
        kind, source, _ = parse_graded_name(name)
        if kind == "none":
            out.append(1.0 if measure == "ssim" else 60.0)
            continue
        if source not in refs:
            refs[source] = luma(pristine[source])
        ref, got = refs[source], luma(path)
        if measure == "ssim":
            vals = [structural_similarity(a, b, data_range=255.0) for a, b in zip(ref, got)]
        else:
            vals = [min(60.0, peak_signal_noise_ratio(a, b, data_range=255.0)) for a, b in zip(ref, got)]
        out.append(float(np.mean(vals)))
    return out


def error_split(names, pred: np.ndarray, mos: np.ndarray, ssim: list[float] | None = None) -> dict:
    """Where a model's errors lie: each score split into the mean of its (kind, strength) cell, its source's mean
    offset from the cell means, and the clip's own rest. `cell_srcc`: the cell means alone against the labels
    (how well the kinds and strengths are ordered); `shares`: each part's share of the scores' variance. With
    `ssim` (each clip's own, against its pristine clip): how far the clip's own rest follows it (the mean SRCC of
    score and SSIM inside each distorted cell), and each cell's mean SSIM (the calibration's targets as the
    clips show them)."""
    parsed = [parse_graded_name(n) for n in names]
    cells = [(k, t) for k, _, t in parsed]
    members = defaultdict(list)
    for i, c in enumerate(cells):
        members[c].append(i)
    cell_mean = np.empty_like(pred)
    for idx in members.values():
        cell_mean[idx] = pred[idx].mean()
    offsets = defaultdict(list)
    for (_, source, _), r in zip(parsed, pred - cell_mean):
        offsets[source].append(r)
    source_part = np.array([np.mean(offsets[s]) for _, s, _ in parsed])
    rest = pred - cell_mean - source_part
    total = pred.var()
    out = {"cell_srcc": srcc(cell_mean, mos),
           "shares": {"cells": float(cell_mean.var() / total), "sources": float(source_part.var() / total),
                      "clips": float(rest.var() / total)}}
    if ssim is not None:
        ssim = np.asarray(ssim)
        distorted = {c: idx for c, idx in members.items() if c[0] != "none"}
        within = [srcc(pred[idx], ssim[idx]) for idx in distorted.values() if len(idx) > 2]
        out["within_cell_ssim_srcc"] = float(np.mean(within)) if within else None
        out["cell_ssim"] = {f"{k}_{round(100 * t):03d}": float(ssim[idx].mean()) for (k, t), idx in
                            sorted(distorted.items())}
    return out


def check(pred_file, labels_file, clear: float = 0.5, relabel: str | None = None, vs_ssim: bool = False) -> dict:
    rows = {Path(r["path"]).name: float(r["score"]) for r in read_rows(pred_file) if r["status"] == "ok"}
    labels = load_labels(labels_file)
    if relabel:
        labels = labels.remove_columns("mos").add_column("mos", full_reference_labels(labels, relabel))
    names = [Path(n).name for n in labels["name"]]  # a label list may name its files by path
    missing = [n for n in names if n not in rows]
    if missing:
        raise SystemExit(f"{len(missing)} labelled videos have no score in {pred_file}, e.g. {missing[:3]}")
    by_kind, pristine, degraded = defaultdict(lambda: ([], [])), {}, defaultdict(list)
    by_source = defaultdict(lambda: ([], []))
    for name, mos in zip(names, labels["mos"]):
        kind, source, strength = parse_graded_name(name)
        by_kind[kind][0].append(rows[name])
        by_kind[kind][1].append(mos)
        by_source[source][0].append(rows[name])
        by_source[source][1].append(mos)
        if kind == "none":
            pristine[source] = rows[name]
        elif strength >= clear:
            degraded[source].append(rows[name])
    pred = np.array([rows[n] for n in names])
    mos = np.array(labels["mos"], dtype=float)
    pairs = [(pristine[s], d) for s, ds in degraded.items() if s in pristine for d in ds]
    kinds = {k: {"srcc": srcc(np.array(p), np.array(m)), "n": len(p)} for k, (p, m) in by_kind.items() if k != "none"}
    within = [srcc(np.array(p), np.array(m)) for p, m in by_source.values() if len(set(m)) > 1]
    split = error_split(names, pred, mos, full_reference_labels(labels, "ssim") if vs_ssim else None)
    return {"n": len(pred), "srcc": srcc(pred, mos), "plcc": plcc(pred, mos), "kinds": kinds, **split,
            "pristine_first": float(np.mean([a > b for a, b in pairs])) if pairs else None, "pairs": len(pairs),
            # where the errors come from: the ranking inside each source's own clips (content held fixed), and how
            # far the pristine clips' scores spread across sources (content alone), against all scores' spread
            "within_source_srcc": float(np.mean(within)) if within else None,
            "pristine_sd": float(np.std(list(pristine.values()))) if len(pristine) > 1 else None,
            "score_sd": float(np.std(pred))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("predictions")
    p.add_argument("--labels", required=True)
    p.add_argument("--relabel", choices=["ssim", "psnr"], help="check against each clip's own full-reference "
                   "measure instead of the benchmark's labels (label maths the model never saw)")
    p.add_argument("--vs-ssim", action="store_true", help="also compare each clip's score with its own SSIM "
                   "against its pristine clip, inside each kind-strength cell (decodes every clip)")
    p.add_argument("--record", help="write the figures to this result file (e.g. eval/results/demo_graded.json)")
    args = p.parse_args(argv)
    r = check(args.predictions, args.labels, relabel=args.relabel, vs_ssim=args.vs_ssim)
    r["labels"] = args.relabel or "benchmark"
    ranked = (f"pristine ranked above its clearly degraded versions in {100 * r['pristine_first']:.1f}% of "
              f"{r['pairs']} pairs" if r["pairs"] else "no pristine clips (the clustered variant has none)")
    print(f"{r['n']} videos: SRCC {r['srcc']:.4f}, PLCC {r['plcc']:.4f}; {ranked}")
    if r["within_source_srcc"] is not None:
        spread = f"; pristine clips' scores spread sd {r['pristine_sd']:.3f}" if r["pristine_sd"] is not None else ""
        print(f"  within each source: SRCC {r['within_source_srcc']:.4f} (mean){spread}, all scores sd {r['score_sd']:.3f}")
    shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["shares"].items())
    print(f"  kind-strength cell means alone: SRCC {r['cell_srcc']:.4f}; the scores' variance: {shares}")
    if r.get("within_cell_ssim_srcc") is not None:
        print(f"  inside a cell, score vs the clip's own SSIM: SRCC {r['within_cell_ssim_srcc']:.3f} (mean)")
    for kind, k in sorted(r["kinds"].items()):
        print(f"  {kind:<12} SRCC {k['srcc']:.4f} ({k['n']} videos)")
    if args.record:
        print(f"wrote {record.write(Path(args.record).stem, r, args.record)}")


if __name__ == "__main__":
    main()
