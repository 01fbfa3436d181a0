"""Local response normalisation in plain tensor ops, exportable to every runtime.

``torch.nn.LocalResponseNorm`` exports to ONNX's LRN op, which TensorRT and some runtimes
handle differently for even window sizes (ONNX centres the window, torch pads
``size // 2`` before and ``(size - 1) // 2`` after). Written with pad + average pooling it
equals torch's definition exactly and exports as Pad/AveragePool/Pow/Div.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LocalResponseNorm(nn.Module):
    """``x / (k + alpha * mean_window(x^2)) ** beta`` over ``size`` neighbouring channels."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        squared = (x * x).reshape(n, 1, c, h * w)
        squared = F.pad(squared, (0, 0, self.size // 2, (self.size - 1) // 2))
        window = F.avg_pool2d(squared, (self.size, 1), stride=1).reshape(n, c, h, w)
        return x / (window * self.alpha + self.k).pow(self.beta)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
