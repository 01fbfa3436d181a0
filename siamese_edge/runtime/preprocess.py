"""Turning images of any size into the model's input tensor.

The same functions serve training (through ``siamese_edge.data``) and the runtime, so a model
sees at deployment exactly the pixels it was trained on. The steps, all described by the
model's metadata (:class:`siamese_edge.model_info.Preprocessing`):

1. colour conversion to the model's channels (1 = gray, 3 = RGB);
2. resize to ``height x width`` (``INTER_AREA`` when shrinking, ``INTER_LINEAR`` otherwise,
   aspect ratio not kept);
3. ``x = (pixel / 255 - mean[c]) / std[c]`` as float32, laid out NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.imageio import to_rgb_or_gray


def fit_image(image: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """Convert one image to uint8 ``(height, width, channels)``.

    Args:
        image: uint8 ``(H, W)`` or ``(H, W, 1|3|4)``, colour in RGB(A) order.
        height, width: the model's input size.
        channels: 1 for gray, 3 for RGB.
    """
    import cv2

    image = to_rgb_or_gray(np.asarray(image))
    if channels == 1 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    elif channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels not in (1, 3):
        raise InvalidInputError(f"models with {channels} input channels are not supported")
    h, w = image.shape[:2]
    if (h, w) != (height, width):
        shrinking = h * w > height * width
        image = cv2.resize(image, (width, height),
                           interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        if image.ndim == 2:
            image = image[:, :, None]
    return np.ascontiguousarray(image)


def fit_images(images: Sequence[np.ndarray] | np.ndarray, height: int, width: int,
               channels: int) -> np.ndarray:
    """Stack images of any sizes into uint8 ``(N, height, width, channels)``."""
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.uint8 \
            and images.shape[1:] == (height, width, channels):
        return images
    out = np.empty((len(images), height, width, channels), np.uint8)
    for i, image in enumerate(images):
        out[i] = fit_image(image, height, width, channels)
    return out


def normalization_constants(mean: Sequence[float], std: Sequence[float]
                            ) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` with ``x = pixel * scale - shift``, shaped for NCHW broadcasting."""
    channels = len(mean)
    std_array = np.asarray(std, np.float32)
    scale = (1.0 / (255.0 * std_array)).reshape(1, channels, 1, 1)
    shift = (np.asarray(mean, np.float32) / std_array).reshape(1, channels, 1, 1)
    return scale, shift


def normalize(batch: np.ndarray, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None,
              constants: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """uint8 ``(N, H, W, C)`` → float32 ``(N, C, H, W)`` with ``(x/255 - mean) / std``.

    ``constants`` (from :func:`normalization_constants`) saves recomputing them per call.
    """
    if batch.dtype != np.uint8 or batch.ndim != 4:
        raise InvalidInputError(f"expected uint8 (N, H, W, C) images, got {batch.dtype} "
                                f"{batch.shape}")
    scale, shift = constants or normalization_constants(mean, std)
    out = batch.transpose(0, 3, 1, 2).astype(np.float32)
    out *= scale
    out -= shift
    return out
