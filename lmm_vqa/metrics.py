"""Correlation metrics and the two challenges' protocols: arrays in, floats out (no torch).

- NTIRE 2023 Quality Assessment of Video Enhancement: main = (|SRCC| + |PLCC|) / 2, with PLCC
  taken after a 3rd-order polynomial fit of the predictions to the MOS on the evaluated set.
- AIM 2024 Compressed Video Quality Assessment (the MSU compression benchmark protocol):
  correlations inside each (sequence, preset) group, Fisher-z averaged with group-size weights.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats


def _clean(pred, mos):
    pred, mos = np.asarray(pred, np.float64), np.asarray(mos, np.float64)
    if pred.shape != mos.shape or pred.ndim != 1:
        raise ValueError(f"pred and mos must be 1-D arrays of one length, got {pred.shape} and {mos.shape}")
    return pred, mos


def _constant(x) -> bool:
    return len(x) < 2 or bool(np.all(x == x[0]))


def srcc(pred, mos) -> float:
    """Spearman rank correlation; ties get average ranks. NaN for constant input."""
    pred, mos = _clean(pred, mos)
    if _constant(pred) or _constant(mos):
        return float("nan")
    return float(stats.spearmanr(pred, mos)[0])


def krcc(pred, mos) -> float:
    """Kendall tau-b, as scipy.stats.kendalltau. NaN for constant input."""
    pred, mos = _clean(pred, mos)
    if _constant(pred) or _constant(mos):
        return float("nan")
    return float(stats.kendalltau(pred, mos)[0])


def plcc(pred, mos) -> float:
    """Pearson linear correlation, no fitting. NaN for constant input."""
    pred, mos = _clean(pred, mos)
    if _constant(pred) or _constant(mos):
        return float("nan")
    return float(np.clip(np.corrcoef(pred, mos)[0, 1], -1.0, 1.0))


def fit_poly3(pred, mos):
    """Predictions mapped to the MOS scale by the least-squares cubic np.polyfit(pred, mos, 3)."""
    pred, mos = _clean(pred, mos)
    return np.polyval(np.polyfit(pred, mos, 3), pred)


def plcc_poly3(pred, mos) -> float:
    """PLCC between the cubic-fitted predictions and the MOS (the NTIRE 2023 PLCC)."""
    pred, mos = _clean(pred, mos)
    if _constant(pred) or _constant(mos):
        return float("nan")
    return plcc(fit_poly3(pred, mos), mos)


def logistic4(x, b1, b2, b3, b4):
    """VQEG 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    return (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4))) + b2


def plcc_logistic(pred, mos) -> float:
    """PLCC after fitting the VQEG 4-parameter logistic to the MOS."""
    pred, mos = _clean(pred, mos)
    if _constant(pred) or _constant(mos):
        return float("nan")
    p0 = [mos.max(), mos.min(), pred.mean(), pred.std() / 4 or 1.0]
    try:
        with warnings.catch_warnings(), np.errstate(over="ignore"):
            warnings.simplefilter("ignore", optimize.OptimizeWarning)  # covariance is not used
            params, _ = optimize.curve_fit(logistic4, pred, mos, p0=p0, maxfev=20000)
    except RuntimeError:  # no convergence: the monotonic fit does not exist; report the raw PLCC
        return plcc(pred, mos)
    with np.errstate(over="ignore"):
        return plcc(logistic4(pred, *params), mos)


def ntire2023_score(pred, mos) -> dict:
    """NTIRE 2023 VQA-VE: {"srcc", "plcc" (after the cubic fit), "main" = (|srcc| + |plcc|) / 2}."""
    s, p = srcc(pred, mos), plcc_poly3(pred, mos)
    return {"srcc": s, "plcc": p, "main": (abs(s) + abs(p)) / 2}


# Group-size thresholds of the MSU benchmark: a group counts for a metric when size >= threshold.
AIM2024_MIN_GROUP = {"srocc": 15, "krocc": 6, "plcc": 6}
_GROUP_CORR = {"srocc": srcc, "krocc": krcc, "plcc": plcc}


def group_correlations(pred, mos, groups) -> list[dict]:
    """Per-group {"group", "size", "srocc", "krocc", "plcc"} for groups of >= 3 rows, in order of
    first appearance. Rows whose prediction or MOS is NaN are left out of the correlation (as
    pandas' pairwise `DataFrame.corr` does), but the group's size counts all its rows."""
    pred, mos = _clean(pred, mos)
    keys = [tuple(g) if isinstance(g, (list, tuple, np.ndarray)) else g for g in groups]
    if len(keys) != len(pred):
        raise ValueError(f"{len(keys)} group labels for {len(pred)} predictions")
    order: dict = {}
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    out = []
    for key, rows in order.items():
        if len(rows) < 3:
            continue
        idx = np.asarray(rows)
        ok = idx[~(np.isnan(pred[idx]) | np.isnan(mos[idx]))]
        out.append({"group": key, "size": len(rows),
                    **{name: fn(pred[ok], mos[ok]) for name, fn in _GROUP_CORR.items()}})
    return out


def fisher_pool(r, weights, signed: bool = False) -> float:
    """The benchmark's pooling: z = arctanh(r) (r = +-1 becomes +-0.99), mean weighted by group size,
    tanh back, absolute value; a pooled value of exactly 0.99 is reported as 1. `signed` keeps the
    sign instead of the absolute value (for choosing between models, see `selection_score`)."""
    r, w = np.asarray(r, np.float64), np.asarray(weights, np.float64)
    if len(r) == 0:
        return float("nan")
    with np.errstate(divide="ignore"):
        z = np.arctanh(r)
    z = np.where(np.isposinf(z), np.arctanh(0.99), np.where(np.isneginf(z), np.arctanh(-0.99), z))
    pooled = float(np.tanh(np.sum(z * w) / np.sum(w)))
    if not signed:
        pooled = abs(pooled)
    return float(np.copysign(1.0, pooled)) if abs(pooled) == 0.99 else pooled


def aim2024_score(pred, mos, groups, signed: bool = False) -> dict:
    """AIM 2024 CVQA: {"srocc", "krocc", "plcc", "final" = their mean}, groups = (sequence, preset).
    The challenge reports absolute values; `signed=True` keeps the pooled correlations' signs."""
    per_group = group_correlations(pred, mos, groups)
    result = {}
    for name, min_size in AIM2024_MIN_GROUP.items():
        used = [g for g in per_group if g["size"] >= min_size]
        bad = [g["group"] for g in used if np.isnan(g[name])]
        if bad:
            warnings.warn(f"{name}: NaN in group(s) {bad} (constant predictions?); the pooled {name} is NaN, "
                          "as in the official evaluation", RuntimeWarning, stacklevel=2)
        result[name] = fisher_pool([g[name] for g in used], [g["size"] for g in used], signed)
    result["final"] = float(np.mean([result["srocc"], result["krocc"], result["plcc"]]))
    return result


def selection_score(pred, mos, groups=None) -> float:
    """The score to choose a checkpoint or fusion weights by on a validation split, with every
    correlation's sign kept: an anti-correlated model is a bad one, though the challenges' abs()
    would rank it high. Inside `groups`: the AIM 2024 final score pooled with signs; else NTIRE 2023's
    main score with the SRCC's sign on both terms (a cubic fit turns a falling trend into a
    positive PLCC, so that PLCC takes the SRCC's sign)."""
    if groups is not None:
        return aim2024_score(pred, mos, groups, signed=True)["final"]
    s = srcc(pred, mos)
    return float(np.sign(s) * (abs(s) + plcc_poly3(pred, mos)) / 2)


def bootstrap_ci(score_fn, *arrays, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of `score_fn(*arrays)` (a float), resampling rows."""
    arrays = [np.asarray(a) for a in arrays]
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            values.append(score_fn(*[a[idx] for a in arrays]))
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    lo, hi = np.percentile(values, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)
