"""Online triplet mining inside a batch. A miner is an object given to the training step:
``miner(embeddings, labels) -> (anchor_idx, positive_idx, negative_idx)``.

- :class:`BatchHardMiner` (Hermans et al., 2017): per anchor, its farthest positive and
  nearest negative.
- :class:`SemiHardMiner` (Schroff et al., FaceNet): per positive pair, the nearest negative
  that is still farther than the positive but inside the margin. A pair with no such
  negative is dropped, not given the hardest one instead (FaceNet: hardest negatives early
  on collapse the model); so every mined triplet is active, and a batch can have none.
- :class:`BatchAllMiner`: every valid triplet (pair it with ``TripletLoss(reduction=
  "mean_active")``).
"""

from __future__ import annotations

import torch

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between all rows: symmetric, exactly 0 on the diagonal and
    between duplicate rows, and with a finite gradient there.

    Computed from the differences, not through ``torch.cdist``: above 25 rows cdist expands
    ``|a|² + |b|² − 2a·b``, whose float32 cancellation leaves up to ~7e-4 where the distance
    is 0 (the diagonal, an image drawn twice by a P×K batch). That is more than the gaps
    semi-hard mining compares, so it could miss a semi-hard negative or take one that is not.
    """
    squared = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(-1)
    # clamp before sqrt: sqrt's gradient at 0 is infinite
    return torch.where(squared > 0, squared.clamp_min(1e-12).sqrt(), torch.zeros_like(squared))


def violating_fraction(embeddings: torch.Tensor, labels: torch.Tensor,
                       margin: float) -> float:
    """Share of all valid triplets of the batch with d(a, p) − d(a, n) + margin > 0,
    whichever triplets the miner picks: 1.0 when the embedding has collapsed (every distance
    equal), 0.0 once every identity sits a margin apart. Semi-hard mining keeps only active
    triplets, so its own active share is ~1.0 by construction and shows neither."""
    with torch.no_grad():
        d = pairwise_distances(embeddings)
        positive, negative = _masks(labels)
        valid = positive[:, :, None] & negative[:, None, :]
        total = int(valid.sum())
        if total == 0:
            return 0.0
        violating = (d[:, :, None] - d[:, None, :] + margin > 0) & valid
        return int(violating.sum()) / total


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


class BatchHardMiner:
    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        with torch.no_grad():
            d = pairwise_distances(embeddings)
            positive, negative = _masks(labels)
            valid = positive.any(1) & negative.any(1)
            hardest_p = d.masked_fill(~positive, -1.0).argmax(1)
            hardest_n = d.masked_fill(~negative, float("inf")).argmin(1)
            anchors = torch.nonzero(valid).squeeze(1)
        return anchors, hardest_p[anchors], hardest_n[anchors]


class SemiHardMiner:
    def __init__(self, margin: float = 0.2) -> None:
        self.margin = margin

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        with torch.no_grad():
            d = pairwise_distances(embeddings)
            positive, negative = _masks(labels)
            a, p = torch.nonzero(positive, as_tuple=True)
            d_ap = d[a, p][:, None]
            d_an = d[a]  # (pairs, N)
            semi = negative[a] & (d_an > d_ap) & (d_an < d_ap + self.margin)
            n = d_an.masked_fill(~semi, float("inf")).argmin(1)
            found = semi.any(1)
        return a[found], p[found], n[found]


class BatchAllMiner:
    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        with torch.no_grad():
            positive, negative = _masks(labels)
            valid = positive[:, :, None] & negative[:, None, :]
            a, p, n = torch.nonzero(valid, as_tuple=True)
        return a, p, n


MINERS = {"batch-hard": BatchHardMiner, "semi-hard": SemiHardMiner, "batch-all": BatchAllMiner}
