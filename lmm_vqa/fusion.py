"""Coarse-to-fine descriptor fusion: scores of several level sets -> one score.

Each level set's score is brought to 0-1 (its own lowest and highest values), then the scores are
mixed with convex weights fitted on a validation split. Shapes: B videos, K level sets.
"""

from __future__ import annotations

import numpy as np

from lmm_vqa import metrics


def fuse(scores_01: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, K) scores on 0-1, (K,) weights summing to 1 -> (B,) fused scores on 0-1."""
    return np.asarray(scores_01, np.float64) @ np.asarray(weights, np.float64)


def fit_weights(scores_01: np.ndarray, mos: np.ndarray, groups=None, step: float = 0.05) -> tuple[np.ndarray, float]:
    """Convex weights of two level sets maximising `metrics.selection_score` on a validation split.
    Returns (weights (2,), metric)."""
    scores_01 = np.asarray(scores_01, np.float64)
    if scores_01.shape[1] != 2:
        raise ValueError(f"fit_weights fuses two level sets, got {scores_01.shape[1]}")
    best = (np.array([1.0, 0.0]), -np.inf)
    for w in np.arange(0.0, 1.0 + 1e-9, step):
        weights = np.array([1 - w, w])
        m = metrics.selection_score(fuse(scores_01, weights), mos, groups)
        if m > best[1] + 1e-12:
            best = (weights, float(m))
    return best
