"""Training losses on level log-probabilities and on the expected score.

Shapes: B videos, R prompts (a video's keyframes), L levels. `level_logp` are log P(word | prompt)
over the whole vocabulary (not renormalised), so the level term also pulls probability mass onto
the level words. The score terms take the expected score of `levels.pool_frames`, as scoring does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def level_loss(level_logp: torch.Tensor, target: torch.Tensor, member: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the target level distributions (R, L) against the model's word log-probs (R, L),
    one row per prompt. With `member` (B, R), each video's rows are averaged first, so a video counts
    once however many keyframes it has; every keyframe is taught the video's level, as Q-Align trains.
    One-hot targets give Q-Align's loss; soft targets differ from KL(target || p) by a constant."""
    per_row = -(target * level_logp).sum(-1)  # (R,)
    if member is None:
        return per_row.mean()
    return ((member / member.sum(-1, keepdim=True)) @ per_row).mean()


def plcc_loss(pred: torch.Tensor, mos: torch.Tensor) -> torch.Tensor:
    """(1 - Pearson r) / 2 over the batch, in [0, 1]; zero for a batch of fewer than 2 or a constant MOS."""
    if pred.numel() < 2 or mos.std() == 0:
        return pred.sum() * 0
    p, m = pred - pred.mean(), mos - mos.mean()
    r = (p * m).sum() / (p.norm() * m.norm() + 1e-8)
    return (1 - r) / 2


def rank_loss(pred: torch.Tensor, mos: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise logistic rank loss over pairs with different MOS, within a group where `groups`
    (B,) int ids are given (CVQAD: scores compare only inside a (sequence, preset) group)."""
    diff_pred = pred[:, None] - pred[None, :]
    sign = torch.sign(mos[:, None] - mos[None, :])
    valid = sign > 0  # each unordered pair once, ties left out
    if groups is not None:
        valid &= groups[:, None] == groups[None, :]
    if not valid.any():
        return pred.sum() * 0
    return F.softplus(-diff_pred[valid]).mean()
