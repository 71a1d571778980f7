"""Evaluation report: predictions joined with labels -> challenge metrics, table, JSON, plot.

No torch here: `lmm-vqa evaluate` starts fast.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from lmm_vqa import metrics


def join(pred_rows: list[dict], labels, column: str = "score", allow_missing: bool = False) -> dict:
    """Match prediction rows (from `lmm-vqa score`) to label rows.

    A prediction matches a label by absolute path, else by the label's name being the trailing
    part of the prediction's path. Labels without an `ok` prediction and predictions without a
    label are an error listing them, unless `allow_missing` (then they are counted and reported).
    """
    by_path = {os.path.abspath(p): i for i, p in enumerate(labels["path"])}
    by_name = {n.replace("\\", "/"): i for i, n in enumerate(labels["name"])}
    pred = np.full(len(labels), np.nan)
    extra, failed = [], {}
    for row in pred_rows:
        path = str(row["path"])
        i = by_path.get(os.path.abspath(path))
        if i is None:
            parts = Path(path).as_posix().split("/")
            i = next((by_name[k] for k in ("/".join(parts[j:]) for j in range(len(parts))) if k in by_name), None)
        if i is None:
            extra.append(path)
        elif row.get("status", "ok") != "ok" or row.get(column) in (None, ""):
            failed[i] = row.get("error") or "no score"
        else:
            pred[i] = float(row[column])
    missing = [labels["name"][i] + (f" (failed: {failed[i]})" if i in failed else "")
               for i in np.flatnonzero(np.isnan(pred))]
    if (missing or extra) and not allow_missing:
        lines = []
        for items, what in ((missing, "labelled videos have no prediction"), (extra, "predictions have no label")):
            if items:  # only what is wrong
                lines += [f"{len(items)} {what}:"] + [f"  {m}" for m in items[:20]] + (["  ..."] if len(items) > 20 else [])
        raise ValueError("\n".join(lines) + "\n(--allow-missing evaluates the matched videos and reports counts)")
    keep = ~np.isnan(pred)
    return {"pred": pred[keep], "mos": np.asarray(labels["mos"])[keep],
            "group": [g for g, k in zip(labels["group"], keep) if k],
            "subset": [s for s, k in zip(labels["subset"], keep) if k],
            "missing": missing, "extra": extra}


MIN_SUBSET = 4  # a cubic fit needs 4 points: smaller subsets are listed, not scored


def _protocol_score(protocol, pred, mos, groups):
    if protocol == "ntire2023":
        return metrics.ntire2023_score(pred, mos) if len(pred) >= MIN_SUBSET else None
    return metrics.aim2024_score(pred, mos, groups)


def evaluate(joined: dict, protocol: str) -> dict:
    """{"protocol", "n", "overall": {...}, "subsets": {name: {...}}, "missing", "extra"}."""
    if protocol not in ("ntire2023", "aim2024"):
        raise ValueError(f"protocol must be ntire2023 or aim2024, got {protocol!r}")
    pred, mos, groups = joined["pred"], joined["mos"], joined["group"]
    if len(pred) < 3:
        raise ValueError(f"only {len(pred)} matched predictions: too few to evaluate")
    result = {"protocol": protocol, "n": int(len(pred)), "overall": _protocol_score(protocol, pred, mos, groups)}
    result["overall"].update({"srcc": metrics.srcc(pred, mos), "krcc": metrics.krcc(pred, mos),
                              "plcc_raw": metrics.plcc(pred, mos), "plcc_poly3": metrics.plcc_poly3(pred, mos),
                              "plcc_logistic": metrics.plcc_logistic(pred, mos)})
    subsets: dict[str, dict] = {}
    facets = {"subset": joined["subset"]}
    if protocol == "aim2024":  # CVQAD: per codec (subset) and per preset (second half of the group key)
        facets["preset"] = [g.split("|", 1)[-1] for g in groups]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # small subsets may have NaN groups
        for facet, labels in facets.items():
            for value in sorted(set(labels) - {""}):
                idx = np.asarray([i for i, v in enumerate(labels) if v == value])
                score = _protocol_score(protocol, pred[idx], mos[idx], [groups[i] for i in idx])
                subsets[f"{facet}={value}"] = {"n": int(len(idx)), **(score or {"note": "n too small"})}
    result["subsets"] = subsets
    result["missing"], result["extra"] = len(joined["missing"]), len(joined["extra"])
    return result


def format_table(result: dict) -> str:
    main_keys = ["srcc", "plcc", "main"] if result["protocol"] == "ntire2023" else ["srocc", "krocc", "plcc", "final"]
    header = f"{'set':<28}{'n':>6}" + "".join(f"{k:>9}" for k in main_keys)
    lines = [f"protocol: {result['protocol']}", header, "-" * len(header)]

    def cell(v):
        return f"{'-':>9}" if v is None or math.isnan(v) else f"{v:>9.4f}"

    def row(name, n, vals):
        if "note" in vals:
            return f"{name:<28}{n:>6}   {vals['note']} (under {MIN_SUBSET} videos)"
        return f"{name:<28}{n:>6}" + "".join(cell(vals.get(k)) for k in main_keys)

    lines.append(row("all", result["n"], result["overall"]))
    for name, vals in result["subsets"].items():
        lines.append(row(name, vals["n"], vals))
    o = result["overall"]
    lines.append(f"overall SRCC {o['srcc']:.4f}  KRCC {o['krcc']:.4f}  PLCC raw {o['plcc_raw']:.4f}  "
                 f"cubic {o['plcc_poly3']:.4f}  logistic {o['plcc_logistic']:.4f}")
    if result["protocol"] == "aim2024":
        lines.append("aim2024: correlations inside (sequence, preset) groups; '-' where no group reaches "
                     "the size threshold (SROCC 15, KROCC/PLCC 6) or a group's predictions are constant")
    if result["missing"] or result["extra"]:
        lines.append(f"not evaluated: {result['missing']} labelled videos without a prediction, "
                     f"{result['extra']} predictions without a label")
    return "\n".join(lines)


def scatter_plot(joined: dict, result: dict, path: str | os.PathLike, title: str = "") -> None:
    """Predicted score against MOS, coloured by subset, with the fitted cubic (NTIRE 2023 report style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred, mos, subsets = joined["pred"], joined["mos"], np.asarray(joined["subset"])
    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    for value in sorted(set(subsets.tolist())):
        sel = subsets == value
        from lmm_vqa.data import VDPVE_SUBSETS

        label = f"{value} {VDPVE_SUBSETS[value]}" if value in VDPVE_SUBSETS else (value or "all")
        label += f" (n={int(sel.sum())}" + (", too few to score)" if sel.sum() < MIN_SUBSET else ")")
        ax.scatter(pred[sel], mos[sel], s=14, alpha=0.7, label=label)
    if len(pred) >= 4 and np.ptp(pred) > 0:
        xs = np.linspace(pred.min(), pred.max(), 200)
        ax.plot(xs, np.polyval(np.polyfit(pred, mos, 3), xs), "k-", lw=1.5, label="cubic fit")
    o = result["overall"]
    key = "main" if result["protocol"] == "ntire2023" else "final"
    ax.set_title(title or f"{result['protocol']}: {key} {o[key]:.3f}  SRCC {o['srcc']:.3f}  n={result['n']}")
    ax.set_xlabel("predicted score")
    ax.set_ylabel("MOS")
    ax.grid(alpha=0.3)
    if len(set(subsets.tolist())) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def nan_to_none(value):
    """A result with every NaN (undefined correlation) as None, so that it is valid JSON (null)."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def run(pred_file, label_file, protocol: str | None = None, layout: str = "auto", out_dir=None,
        column: str = "score", allow_missing: bool = False) -> dict:
    from lmm_vqa.data import detect_layout, load_labels
    from lmm_vqa.results import read_rows

    labels = load_labels(label_file, layout)
    if protocol is None:
        protocol = "aim2024" if (layout if layout != "auto" else detect_layout(Path(label_file))) == "cvqad" \
            else "ntire2023"
    joined = join(read_rows(pred_file), labels, column, allow_missing)
    result = evaluate(joined, protocol)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(nan_to_none(result), indent=2, allow_nan=False) + "\n")
        scatter_plot(joined, result, out_dir / "scatter.png")
    return result


def training_curve_plot(history: list[dict], path: str | os.PathLike, metric: str = "") -> None:
    """Training loss per logged step and the validation metric per epoch, one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "loss" in h]
    val = [h for h in history if "val_metric" in h]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    if train:
        ax.plot([h["step"] for h in train], [h["loss"] for h in train], "C0-", lw=1.2, label="train loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("train loss", color="C0")
    ax.grid(alpha=0.3)
    if val:
        ax2 = ax.twinx()
        steps = [h["step"] for h in val]
        ax2.plot(steps, [h["val_metric"] for h in val], "C1o-", label=f"val selection score ({metric}, signed)")
        ax2.plot(steps, [h["val_srcc"] for h in val], "C2s--", ms=4, label="val SRCC")
        ax2.set_ylabel("validation", color="C1")
        ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
