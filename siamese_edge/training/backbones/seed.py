"""The network of the article this project started from, reproduced faithfully.

Conv(C→128, k5, s3, p2) → ReLU → LRN → MaxPool(4, 2) → Dropout2d → FC 2048→512→128→out
(2048 = 128·4·4 at 28×28 input; computed for other sizes). LRN is written in plain ops so
the network exports cleanly; Dropout2d is inactive in eval mode, as at export.
"""

from __future__ import annotations

import torch
from torch import nn

from siamese_edge.errors import InvalidInputError
from siamese_edge.training.lrn import LocalResponseNorm

#: smallest input side: conv (k5, s3, p2) must leave at least the 4×4 max-pool window
MIN_SIZE = 10


class SeedNet(nn.Module):
    def __init__(self, channels: int, height: int, width: int, embedding_dim: int) -> None:
        super().__init__()
        if min(height, width) < MIN_SIZE:  # the stride-3 conv leaves the 4×4 pool nothing
            raise InvalidInputError(f"the seed backbone needs images of at least {MIN_SIZE}×"
                                    f"{MIN_SIZE} pixels, not {height}×{width}; use "
                                    f"--input-size or --backbone small_cnn")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=5, stride=3, padding=2),
            nn.ReLU(inplace=True),
            LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(4, stride=2),
            nn.Dropout2d(p=0.3),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, channels, height, width)).numel()
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 512), nn.ReLU(inplace=True),
            nn.Linear(512, 128), nn.ReLU(inplace=True),
            nn.Linear(128, embedding_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
