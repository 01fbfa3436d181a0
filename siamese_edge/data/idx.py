"""The IDX file format of MNIST and its family (Fashion-MNIST, KMNIST, EMNIST), gzip or not.

Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import DatasetError

_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


#: bytes read per call while filling the array: bounds the transient copies of a gzip read
_CHUNK = 1024 * 1024
#: deflate's largest possible expansion (Mark Adler's figure for zlib): a gzip file of n
#: bytes cannot hold more than this many times n bytes of data
_MAX_DEFLATE_RATIO = 1032


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain, detected from its first bytes).

    The file is streamed: the header is read and checked first, then exactly the number of
    bytes it declares, so a bad file is refused before its data is inflated, and memory
    holds the data once (not the file, then the data, then a converted copy).

    Raises:
        DatasetError: missing file, bad magic, unknown type, wrong length, or data too large
            for memory.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DatasetError(f"{path}: cannot read ({reason})") from None
    with handle:
        compressed = False
        try:
            # read (not peek: a pipe may hand over one byte at a time) and put back, since
            # a pipe cannot seek
            first = handle.read(2)
            compressed = first == _GZIP_MAGIC
            status = os.fstat(handle.fileno())
            handle = io.BufferedReader(_Prefixed(first, handle))
            # a regular file's size bounds its data; a pipe's is unknown until it ends
            size = status.st_size if stat.S_ISREG(status.st_mode) else None
            if compressed:
                limit = None if size is None else size * _MAX_DEFLATE_RATIO
                with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                    return _read_idx_stream(stream, path, limit, exact=False)
            return _read_idx_stream(handle, path, size, exact=True)
        # a damaged deflate stream raises zlib.error, not OSError
        except (OSError, EOFError, zlib.error) as exc:
            if compressed:
                raise DatasetError(f"{path}: corrupt gzip data ({exc})") from None
            reason = getattr(exc, "strerror", None) or str(exc)
            raise DatasetError(f"{path}: cannot read ({reason})") from None


class _Prefixed(io.RawIOBase):
    """``prefix`` and then the rest of ``stream``: bytes read to look at, put back."""

    def __init__(self, prefix: bytes, stream) -> None:
        self._prefix, self._stream = prefix, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _read_idx_stream(stream, path: Path, limit: int | None, exact: bool) -> np.ndarray:
    """Parse an IDX stream. ``limit``: the most bytes it can hold (exactly that many when
    ``exact``: a plain file's size; None: unknown), checked before any memory is set aside
    for the data."""
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic)")
    dtype = _TYPES.get(head[2])
    if dtype is None:
        raise DatasetError(f"{path}: unknown IDX data type 0x{head[2]:02x}")
    ndim = head[3]
    dims = stream.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header")
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    # Python ints: np.prod wraps around int64 for a header of huge dimensions, and a wrapped
    # size can pass the length check that follows
    count = math.prod(shape) * dtype.itemsize
    expected = header + count
    if limit is not None and ((expected != limit) if exact else (expected > limit)):
        # no more data can be there than the file (or, gzip, its largest expansion) holds:
        # refused before an array of the declared size is set aside
        have = f"{limit} bytes" if exact else f"at most {limit} bytes uncompressed"
        raise DatasetError(f"{path}: IDX file has {have}, its header says {expected} "
                           f"(truncated or corrupt)")
    try:
        data = np.empty(count, np.uint8)
    except (MemoryError, ValueError):
        raise DatasetError(f"{path}: its header declares {count} bytes of data, more than "
                           f"this machine can hold in memory") from None
    view = memoryview(data)
    filled = 0
    while filled < count:  # readinto may return less than asked: a gzip member's end
        got = stream.readinto(view[filled:filled + _CHUNK])
        if not got:
            raise DatasetError(f"{path}: IDX data ends after {header + filled} bytes, its "
                               f"header says {expected} (truncated or corrupt)")
        filled += got
    if stream.read(1):
        # data past the declared size (a header that understates it, or a gzip bomb behind
        # a small header): refused after one byte, not inflated to its end
        raise DatasetError(f"{path}: IDX file has more than the {expected} bytes its header "
                           f"says (truncated or corrupt)")
    array = data.view(dtype).reshape(shape)
    if not dtype.isnative:
        # big-endian multi-byte types: swapped in place, no second copy of the data
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


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
