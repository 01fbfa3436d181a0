"""The twin (or triplet) network: one module applied to every input, weights shared."""

from __future__ import annotations

import torch
from torch import nn


class SiameseNet(nn.Module):
    """Runs all inputs through the same ``embedding_net`` in one concatenated batch.

    One batch (rather than one call per input) keeps batch-norm statistics shared between
    the branches, so the twin branches are the same function in training as in deployment.
    """

    def __init__(self, embedding_net: nn.Module) -> None:
        super().__init__()
        self.embedding_net = embedding_net

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sizes = [len(x) for x in inputs]
        return tuple(torch.split(self.embedding_net(torch.cat(inputs)), sizes))
