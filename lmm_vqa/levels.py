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


def probs_to_score(level_probs, values):
    """Expected level value. level_probs: (..., L) summing to 1; values: (L,). Returns (...)."""
    return level_probs @ values


def score_from_probs(level_probs: np.ndarray, levels: LevelSet) -> float:
    return float(probs_to_score(np.asarray(level_probs, np.float64), np.asarray(levels.values)))
