"""Contrastive loss (Hadsell, Chopra & LeCun, 2006) on pairs of embeddings."""

from __future__ import annotations

import torch
from torch import nn


class ContrastiveLoss(nn.Module):
    """``same · d²/2 + (1 − same) · max(0, margin − d)²/2``, averaged over pairs.

    Label convention: ``same = 1`` for a genuine pair (the same identity), ``0`` for an
    impostor pair; ``d`` is the Euclidean distance between the two embeddings.

    The article this project started from prints ``(1−Y)·d²/2 + Y·max(0, m−d)²/2``, which
    needs ``Y = 1`` for a *dissimilar* pair, while its text says ``Y = 1`` means "match".
    Its formula is the standard one; in our terms ``same = 1 − Y``.

    Args:
        margin: impostor pairs closer than this are pushed apart. For unit-length
            embeddings distances lie in [0, 2]; the default 1.0 sits in the middle.
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = float(margin)

    def forward(self, first: torch.Tensor, second: torch.Tensor,
                same: torch.Tensor) -> torch.Tensor:
        same = same.to(first.dtype)
        # d² directly for genuine pairs (its gradient at d = 0 is finite, d's is not)
        squared = (first - second).pow(2).sum(dim=1)
        distance = squared.clamp_min(1e-12).sqrt()
        impostor = (self.margin - distance).clamp_min(0).pow(2)
        return (same * squared + (1 - same) * impostor).mul(0.5).mean()
