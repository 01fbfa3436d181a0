"""The default backbone: a small CNN with batch norm and global average pooling.

Three stages of two 3×3 conv–BN–ReLU blocks (widths ``width``, 2·width, 4·width), 2×2 max
pooling between stages, global average pooling, then a linear projection. Global pooling
makes it work at any input size; ~0.3 M parameters at width 32.

``readout_features`` is the deployable alternative to the projection: the last feature maps
averaged over a 2×2 grid (16·width values; 512 at width 32), see ``embedding_net``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    def __init__(self, channels: int, height: int, width: int, embedding_dim: int,
                 base_width: int = 32) -> None:
        super().__init__()
        w1, w2, w3 = base_width, 2 * base_width, 4 * base_width
        layers: list[nn.Module] = [*_block(channels, w1), *_block(w1, w1)]
        if min(height, width) >= 8:
            layers.append(nn.MaxPool2d(2))
        layers += [*_block(w1, w2), *_block(w2, w2)]
        if min(height, width) >= 16:
            layers.append(nn.MaxPool2d(2))
        layers += [*_block(w2, w3), *_block(w3, w3)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.projection = nn.Linear(w3, embedding_dim)

    def _project(self, maps: torch.Tensor) -> torch.Tensor:
        return self.projection(torch.flatten(self.pool(maps), 1))

    @staticmethod
    def _grid(maps: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(maps, 2), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._project(self.features(x))

    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._grid(self.features(x))

    def projection_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and ``readout_features`` from one pass through the feature maps."""
        maps = self.features(x)
        return self._project(maps), self._grid(maps)
