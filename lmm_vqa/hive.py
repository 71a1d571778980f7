"""HIVE: a coarse (5-level) and a fine (finer-level) LoRA adapter on one base model, fused.

A HIVE folder:
    hive.json    {"adapters": {"coarse": "coarse", "fine": "fine"}, "weights": {...}, "fit": {...}}
    coarse/      a scorer folder from the recipe (adapter, processor, scorer.json with 5 levels)
    fine/        the same with the finer level set
Both adapters sit on one base model held in memory once; each batch of prompts is encoded once
and run through each adapter. Their scores are brought to 0-1 and fused with the weights fitted on
a validation split (`lmm-vqa hive`). Views and frame sampling must be the same in both.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from lmm_vqa.fusion import fit_weights, fuse
from lmm_vqa.levels import LevelSet, score_from_probs
from lmm_vqa.checkpoints import HIVE_FILE
from lmm_vqa.scoring import Scorer, ScorerConfig, level_word_logprobs, resolve_level_tokens

PARTS = ("coarse", "fine")
_SHARED = ("mode", "frames", "max_frames", "views", "local_views", "encoder", "question", "answer_prefix")


class HiveScorer(Scorer):
    """Scores with every adapter and fuses; rows add `score_coarse` and `score_fine`."""

    extra_columns = ("score_coarse", "score_fine")
    explain_with = "coarse"  # the adapter that answers in words (explain, chat), whatever scored last

    def __init__(self, model, processor, configs: dict[str, ScorerConfig], weights: dict[str, float], name=""):
        first = configs[PARTS[0]]
        for part in PARTS[1:]:
            differ = [k for k in _SHARED if getattr(configs[part], k) != getattr(first, k)]
            if differ:
                raise ValueError(f"HIVE adapters must share {differ}: coarse has "
                                 f"{[getattr(first, k) for k in differ]}, {part} has "
                                 f"{[getattr(configs[part], k) for k in differ]}")
        super().__init__(model, processor, first, name)
        self.part_levels = {p: LevelSet.from_json(configs[p].levels) for p in PARTS}
        self.part_ids = {p: resolve_level_tokens(self.tokenizer, first.answer_prefix, self.part_levels[p].words)
                         for p in PARTS}
        self.part_exact = {p: any(len(i) > 1 for i in self.part_ids[p]) for p in PARTS}
        self.weights = np.array([weights[p] for p in PARTS], np.float64)

    def start_level_probs(self, texts, images):
        """As Scorer's, giving (B, L_coarse + L_fine): each adapter's level probabilities, side by side.
        The batch is preprocessed once and run through each adapter."""
        with torch.inference_mode():
            inputs = self.encode(texts, images)
            probs = []
            for part in PARTS:
                self.model.set_adapter(part)
                probs.append(level_word_logprobs(self.model, inputs, self.part_ids[part], self.mrope,
                                                 use_cache=self.part_exact[part]).softmax(-1))
            probs = torch.cat(probs, dim=1)
        return lambda: probs.cpu().numpy().astype(np.float64)

    def answering(self):
        """generate() runs with the `explain_with` adapter: scoring switches adapters batch by batch, and
        a chat must not answer one turn with one adapter and the next with another."""
        self.model.set_adapter(self.explain_with)
        return contextlib.nullcontext()

    def summarise(self, level_probs: np.ndarray) -> dict:
        cut = len(self.part_levels["coarse"].words)
        probs = {"coarse": level_probs[:cut], "fine": level_probs[cut:]}
        scores = {p: score_from_probs(probs[p], self.part_levels[p]) for p in PARTS}
        scores_01 = np.array([self.part_levels[p].normalise(scores[p]) for p in PARTS])
        fused_01 = float(fuse(scores_01[None], self.weights)[0])
        coarse = self.part_levels["coarse"]
        return {"score": coarse.low + fused_01 * (coarse.high - coarse.low), "score_01": fused_01,
                "score_coarse": scores["coarse"], "score_fine": scores["fine"],
                "levels": {w: float(x) for w, x in zip(coarse.words, probs["coarse"])}}


def build(coarse: str | os.PathLike, fine: str | os.PathLike, val_labels, out_dir, layout: str = "auto",
          device: str | None = None, dtype: str | None = None, batch_size: int = 16, num_workers: int = 4) -> dict:
    """Assemble a HIVE folder from two recipe outputs and fit the fusion weights on `val_labels`.
    Returns hive.json's content, with the validation metrics of each part and of the fusion."""
    from lmm_vqa import metrics
    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.data import detect_layout, load_labels

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for part, src in zip(PARTS, (coarse, fine)):
        if Path(src).resolve() != (out / part).resolve():
            shutil.copytree(src, out / part, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints"))
    spec = {"adapters": {p: p for p in PARTS}, "weights": {"coarse": 0.5, "fine": 0.5}}
    (out / HIVE_FILE).write_text(json.dumps(spec, indent=2) + "\n")

    scorer = load_scorer(out, device, dtype)
    layout = detect_layout(Path(val_labels)) if layout == "auto" else layout
    val = load_labels(val_labels, layout, check_files=True)
    rows = list(scorer.score_paths(val["path"], batch_size=batch_size, num_workers=num_workers))
    bad = [r["path"] for r in rows if r["status"] != "ok"]
    if bad:
        raise ValueError(f"{len(bad)} validation videos failed to score, e.g. {bad[:3]}: fix them before fitting")
    mos = np.asarray(val["mos"], np.float64)
    groups = list(val["group"]) if layout == "cvqad" else None
    parts_01 = np.array([[scorer.part_levels[p].normalise(r[f"score_{p}"]) for p in PARTS] for r in rows])
    weights, fused_metric = fit_weights(parts_01, mos, groups)

    spec["weights"] = {p: round(float(w), 4) for p, w in zip(PARTS, weights)}
    spec["fit"] = {"val_labels": str(val_labels), "n": len(rows), "metric": "aim2024" if groups else "ntire2023",
                   "coarse": metrics.selection_score(parts_01[:, 0], mos, groups),
                   "fine": metrics.selection_score(parts_01[:, 1], mos, groups), "fused": fused_metric,
                   "distinct_scores": {"coarse": int(len(np.unique(parts_01[:, 0].round(4)))),
                                       "fine": int(len(np.unique(parts_01[:, 1].round(4)))),
                                       "fused": int(len(np.unique(fuse(parts_01, weights).round(4))))}}
    (out / HIVE_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    return spec
