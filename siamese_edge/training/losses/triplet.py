"""Triplet margin loss (Weinberger & Saul; Schroff et al., FaceNet)."""

from __future__ import annotations

import torch
from torch import nn


class TripletLoss(nn.Module):
    """``max(0, d(a, p) − d(a, n) + margin)`` per triplet, Euclidean distances.

    Args:
        margin: how much closer the positive must be than the negative.
        reduction: ``mean`` over all triplets, or ``mean_active`` over those with a
            non-zero loss (for batch-all mining, where most triplets are already satisfied).
    """

    def __init__(self, margin: float = 0.2, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "mean_active"):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.margin = float(margin)
        self.reduction = reduction

    def per_triplet(self, anchor: torch.Tensor, positive: torch.Tensor,
                    negative: torch.Tensor) -> torch.Tensor:
        d_ap = (anchor - positive).pow(2).sum(1).clamp_min(1e-12).sqrt()
        d_an = (anchor - negative).pow(2).sum(1).clamp_min(1e-12).sqrt()
        return (d_ap - d_an + self.margin).clamp_min(0)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor,
                negative: torch.Tensor) -> torch.Tensor:
        losses = self.per_triplet(anchor, positive, negative)
        if len(losses) == 0:
            return anchor.sum() * 0.0  # keeps the graph: a batch without triplets
        if self.reduction == "mean_active":
            active = (losses > 0).sum()
            return losses.sum() / active.clamp_min(1)
        return losses.mean()
