"""The one shared-weight network: a backbone followed by L2 normalisation."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingNet(nn.Module):
    """``forward(x)`` → unit-length embeddings; this is what export writes to ONNX."""

    def __init__(self, backbone: nn.Module, eps: float = 1e-12) -> None:
        super().__init__()
        self.backbone = backbone
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.backbone(x)
        return embeddings / embeddings.norm(dim=1, keepdim=True).clamp_min(self.eps)
