"""The IDX file format of MNIST and its family (Fashion-MNIST, KMNIST, EMNIST), gzip or not.

Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import DatasetError

_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain, detected from its first bytes).

    Raises:
        DatasetError: missing file, bad magic, unknown type, or wrong length.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        # a damaged deflate stream raises zlib.error, not OSError
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic)")
    dtype = _TYPES.get(raw[2])
    if dtype is None:
        raise DatasetError(f"{path}: unknown IDX data type 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    # Python ints: np.prod wraps around int64 for a header of huge dimensions, and a wrapped
    # size can pass the length check that follows
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: IDX file has {len(raw)} bytes, its header says "
                           f"{expected} (truncated or corrupt)")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def load_idx_dataset(images_path: str | os.PathLike[str],
                     labels_path: str | os.PathLike[str]) -> LabelledImages:
    """IDX images ``(N, H, W)`` or ``(N, H, W, C)`` uint8 and labels ``(N,)``."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DatasetError(f"{images_path}: expected uint8 images (N, H, W[, C]), got "
                           f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
    if images.ndim == 3:
        images = images[:, :, :, None]
    if labels.dtype.kind == "f":
        # a label names an identity: 1.2 and 1.7 would both become class "1", and NaN has
        # no name at all
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if np.any(bad):
            raise DatasetError(f"{labels_path}: labels must be whole numbers; {int(bad.sum())} "
                               f"of {len(labels)} are not (first {float(labels[bad][0]):g})")
    classes = np.unique(labels)
    index = np.searchsorted(classes, labels)
    return LabelledImages(images, index.astype(np.int64), [str(int(c)) for c in classes])
