"""Quality levels: words and values; level probabilities -> score; MOS -> labels.

A level set is data: words ordered worst to best, each with a value. The score of a
prediction is the expectation of the value under the level probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LevelSet:
    words: tuple[str, ...]  # worst to best
    values: tuple[float, ...]

    def __post_init__(self):
        if len(self.words) < 2 or len(self.words) != len(self.values):
            raise ValueError(f"a level set needs >= 2 words with one value each, got {self.words} / {self.values}")
        if len(set(self.words)) != len(self.words):
            raise ValueError(f"level words must be distinct, got {self.words}")
        if any(b <= a for a, b in zip(self.values, self.values[1:])):
            raise ValueError(f"level values must increase from worst to best, got {self.values}")

    @classmethod
    def from_json(cls, obj) -> "LevelSet":
        """From {"bad": 1, ..., "excellent": 5} or [["bad", 1], ...]; sorted by value."""
        pairs = obj.items() if isinstance(obj, dict) else obj
        pairs = sorted(((str(w), float(v)) for w, v in pairs), key=lambda p: p[1])
        return cls(tuple(w for w, _ in pairs), tuple(v for _, v in pairs))

    def to_json(self) -> dict:
        return dict(zip(self.words, self.values))

    @property
    def low(self) -> float:
        return self.values[0]

    @property
    def high(self) -> float:
        return self.values[-1]

    def normalise(self, score):
        """Map a score on this set's scale to 0-1."""
        return (score - self.low) / (self.high - self.low)


# Q-Align's five levels.
DEFAULT_LEVELS = LevelSet(("bad", "poor", "fair", "good", "excellent"), (1.0, 2.0, 3.0, 4.0, 5.0))
# HIVE's finer descriptors, worst to best, on the same 1-5 scale in half steps (several are
# more than one token in common tokenizers; scoring takes their exact word probabilities).
FINE_LEVELS = LevelSet(("awful", "bad", "poor", "mediocre", "fair", "decent", "good", "great", "excellent"),
                       (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0))


def probs_to_score(level_probs, values):
    """Expected level value. level_probs: (..., L) summing to 1; values: (L,). Returns (...)."""
    return level_probs @ values


def pool_frames(frame_probs, member):
    """A video's level distribution: the mean of its frames' distributions, each renormalised over the
    levels. Scoring and training both use this. frame_probs: (R, L); member: (B, R), 1 where row r is a
    frame of video b. Returns (B, L). numpy or torch."""
    return (member / member.sum(-1)[:, None]) @ frame_probs


def score_from_probs(level_probs: np.ndarray, levels: LevelSet) -> float:
    return float(probs_to_score(np.asarray(level_probs, np.float64), np.asarray(levels.values)))


# ----------------------------------------------------------------------------- MOS -> training targets

def mos_to_scale(mos, mos_range: tuple[float, float], levels: LevelSet):
    """Map MOS linearly from `mos_range` = (low, high) onto [levels.low, levels.high]."""
    lo, hi = mos_range
    if not hi > lo:
        raise ValueError(f"MOS range must have high > low, got {mos_range}")
    return levels.low + (np.asarray(mos, np.float64) - lo) / (hi - lo) * (levels.high - levels.low)


def hard_labels(mos, mos_range: tuple[float, float], levels: LevelSet) -> np.ndarray:
    """Q-Align: the MOS range cut into L equal-width bins (right-closed), one-hot. (N,) -> (N, L)."""
    lo, hi = mos_range
    pos = (np.asarray(mos, np.float64) - lo) / (hi - lo) * len(levels.words)
    idx = np.clip(np.ceil(pos - 1e-9).astype(int) - 1, 0, len(levels.words) - 1)
    return np.eye(len(levels.words))[idx]


def two_nearest_labels(score, levels: LevelSet) -> np.ndarray:
    """Mass split between the two levels around `score` (on the level scale) so that the
    expectation is exactly `score`; for scores without a std (e.g. pairwise-derived). (N,) -> (N, L)."""
    v = np.asarray(levels.values)
    s = np.clip(np.atleast_1d(np.asarray(score, np.float64)), v[0], v[-1])
    hi = np.clip(np.searchsorted(v, s, side="left"), 1, len(v) - 1)
    w_hi = (s - v[hi - 1]) / (v[hi] - v[hi - 1])
    out = np.zeros((len(s), len(v)))
    out[np.arange(len(s)), hi - 1] = 1 - w_hi
    out[np.arange(len(s)), hi] += w_hi
    return out


def gaussian_labels(score, std, levels: LevelSet, min_std: float = 0.2, max_error: float = 0.05) -> np.ndarray:
    """DeQA-Score's soft labels: a Gaussian N(score, std) read at the level values, then the affine
    correction a*p + b (clipped at 0) that makes the total 1 and the expectation `score`. Where the
    std is unknown (NaN) or below `min_std`, or the corrected expectation still misses by more
    than `max_error`, the two-nearest-levels label is used instead. score, std: (N,) on the level
    scale. Returns (N, L)."""
    v = np.asarray(levels.values)
    s = np.atleast_1d(np.asarray(score, np.float64))
    sd = np.broadcast_to(np.asarray(std, np.float64), s.shape)
    out = two_nearest_labels(s, levels)
    for i, (mu, sigma) in enumerate(zip(s, sd)):
        if not sigma >= min_std:  # also NaN
            continue
        p = np.exp(-0.5 * ((v - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        # Solve a*sum(p) + b*L = 1 and a*sum(p*v) + b*sum(v) = mu.
        try:
            a, b = np.linalg.solve([[p.sum(), len(v)], [p @ v, v.sum()]], [1.0, mu])
        except np.linalg.LinAlgError:  # p's mean is already the levels' centre = mu: only rescale
            a, b = 1 / p.sum(), 0.0
        q = np.clip(a * p + b, 0, None)
        q = q / q.sum()
        if abs(q @ v - mu) <= max_error:
            out[i] = q
    return out
