"""Augmentation for small gray or colour images, on a batch of float tensors in [0, 1].

One random affine warp per image (shift, small rotation, small scale) through a single
``grid_sample`` call, then brightness/contrast jitter; horizontal flips only when asked
(they change the meaning of signatures, text and many products).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Augmenter:
    shift: float = 0.1  # fraction of the image size
    rotation_deg: float = 10.0
    scale: float = 0.1
    brightness: float = 0.15
    contrast: float = 0.15
    hflip: bool = False

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.rand(n, generator=generator) * (high - low) + low

        angle = uniform(-self.rotation_deg, self.rotation_deg) * math.pi / 180
        scale = uniform(1 - self.scale, 1 + self.scale)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        flip = torch.ones(n)
        if self.hflip:
            flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        # affine_grid works in coordinates scaled to [-1, 1] on each axis; on a non-square
        # image a plain rotation matrix there is a shear in pixels, so the off-diagonal
        # terms carry the aspect ratio (a rotation in pixels, whatever H and W are)
        height, width = x.shape[-2], x.shape[-1]
        theta = torch.stack([
            torch.stack([cos * flip, -sin * (height / width),
                         uniform(-2 * self.shift, 2 * self.shift)], 1),
            torch.stack([sin * flip * (width / height), cos,
                         uniform(-2 * self.shift, 2 * self.shift)], 1),
        ], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        contrast = uniform(1 - self.contrast, 1 + self.contrast).view(n, 1, 1, 1)
        brightness = uniform(-self.brightness, self.brightness).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * contrast + mean + brightness).clamp(0, 1)
