"""A fixed histogram of oriented gradients (HOG-like), appended to the deployed embedding.

The learned readout only knows what tells apart the identities it was trained on. On
identities it never saw, the details that separate them (the height of an ankle boot
against a sneaker) are in its features — a linear probe on them separates those two classes
at 93 % — but they weigh little in the cosine score. Edge orientations per image cell carry
such shape details for any small image, so the deployed embedding appends this parameter-free
descriptor, scaled by ``hog_weight``, to the learned one (see ``embedding_net``).

Per input: oriented derivatives of the channel-mean image (Sobel, ``orientations`` signed
directions; each is a linear filter, so one convolution), clipped at zero, averaged over a
``cells`` × ``cells`` grid, square-rooted (the Hellinger / RootSIFT normalisation) and
L2-normalised. Edges are padded by repeating the border (slices and concatenation, which
every ONNX runtime and TensorRT supports). Nothing is trained, so any brightness scale of
the input cancels in the normalisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from siamese_edge.errors import InvalidInputError

ORIENTATIONS = 8
CELLS = 4
#: histogram norms below this are not scaled up to unit length. A flat image has no edges,
#: but float rounding in the filters leaves a norm of ~1e-3 on it, which normalising turned
#: into a full-weight random direction (and ONNX Runtime's rounding into another one); one
#: grey level of contrast already gives ~0.25
MIN_NORM = 1e-2
#: the least height and width the descriptor is trained on. Across a single row or column the
#: derivative is float rounding, which the square root magnifies and ONNX Runtime rounds
#: otherwise: export's parity check (tolerance 1e-4) always failed at 1x1 (differences up to
#: 5e-3) and failed for some images at 1xN and Nx1 (up to 2e-3); from 2x2 up the largest
#: difference seen over thousands of images was 2e-5
MIN_SIZE = 2


def check_input_size(height: int, width: int) -> None:
    """Refuse images too small for the descriptor (see ``MIN_SIZE``): a model trained on them
    could never be exported."""
    if min(height, width) < MIN_SIZE:
        raise InvalidInputError(f"images of {height}x{width} pixels are too small for the "
                                f"gradient histogram (--hog-weight), which needs at least "
                                f"{MIN_SIZE}x{MIN_SIZE}: below that it measures float "
                                f"rounding, and export's parity check fails; use --input-size "
                                f"{max(height, MIN_SIZE)}x{max(width, MIN_SIZE)} or larger, "
                                f"or --hog-weight 0")


def _edge_pad(x: torch.Tensor) -> torch.Tensor:
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)


class OrientedGradientHistogram(nn.Module):
    """``(N, channels, H, W)`` → unit-length ``(N, orientations · cells²)``."""

    def __init__(self, channels: int, orientations: int = ORIENTATIONS, cells: int = CELLS,
                 eps: float = MIN_NORM) -> None:
        super().__init__()
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        sobel_y = sobel_x.t()
        angles = [2.0 * math.pi * k / orientations for k in range(orientations)]
        kernels = torch.stack([math.cos(a) * sobel_x + math.sin(a) * sobel_y for a in angles])
        weight = kernels[:, None].expand(orientations, channels, 3, 3) / channels
        # not in the state dict: it is fixed by the arguments, and runs saved without it load
        self.register_buffer("weight", weight.contiguous(), persistent=False)
        self.cells = cells
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = F.relu(F.conv2d(_edge_pad(x), self.weight))
        cells = torch.flatten(F.adaptive_avg_pool2d(energy, self.cells), 1).sqrt()
        return cells / cells.norm(dim=1, keepdim=True).clamp_min(self.eps)
