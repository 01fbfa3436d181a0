"""Reading images from disk into the uint8 HWC arrays the rest of the package speaks.

Convention everywhere in siamese-edge: an image is a ``uint8`` array of shape ``(H, W)`` or
``(H, W, C)`` with C = 1 (gray) or 3 (**RGB** order). OpenCV's BGR never leaves this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siamese_edge.errors import ImageReadError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".tif",
                            ".tiff", ".webp"})

# Refuse images larger than this many pixels (decompression bombs); OpenCV reads the variable
# once, at import, so it is set before the first import of cv2.
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))


def is_image_path(path: Path) -> bool:
    """True if the file name has a suffix of an image format OpenCV decodes."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def is_hidden(path: Path) -> bool:
    """A name starting with ``.`` (macOS ``._x.png`` metadata, ``.ipynb_checkpoints``) or
    ``__MACOSX`` (a zip archive's metadata): never an image or an identity."""
    return path.name.startswith(".") or path.name == "__MACOSX"


def image_files(folder: Path, recursive: bool = False) -> tuple[list[Path], list[Path]]:
    """The image files in ``folder`` (and below it when ``recursive``), sorted, without
    hidden entries (:func:`is_hidden`); and the links among them whose target is gone,
    for the caller to report rather than drop without a word."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    files, broken = [], []
    for path in entries:
        if not is_image_path(path) or any(is_hidden(Path(part)) for part in
                                           path.relative_to(folder).parts):
            continue
        if path.is_file():
            files.append(path)
        elif path.is_symlink() and not path.exists():
            broken.append(path)
    return sorted(files), sorted(broken)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8, gray ``(H, W, 1)`` or colour ``(H, W, 3)`` RGB.

    Args:
        path: an image file in any format OpenCV decodes.

    Returns:
        The image, alpha dropped, 16-bit images scaled to 8 bits.

    Raises:
        ImageReadError: the file is missing, empty, not an image, truncated or too large.
    """
    import cv2

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory, not an image") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:  # a NUL byte in the name: no file can have it
        raise ImageReadError(f"{str(path)!r}: not a file name (it holds a NUL byte)") from None
    if not data:
        raise ImageReadError(f"{path}: empty file")
    try:
        # ANYDEPTH keeps 16-bit and float data, ANYCOLOR keeps gray as one channel; unlike
        # IMREAD_UNCHANGED both apply the EXIF orientation, so a phone photo stored sideways
        # is read upright (alpha, which UNCHANGED kept, was dropped below anyway)
        image = cv2.imdecode(np.frombuffer(data, np.uint8),
                             cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not a readable image (corrupt, truncated, unsupported "
                             f"or over {MAX_IMAGE_PIXELS} pixels)")
    try:
        return to_rgb_or_gray(image, bgr=True)
    except ImageReadError as exc:  # say which file: a batch names many
        raise ImageReadError(f"{path}: {exc}") from None


def _float_to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] is scaled to 0..255 and [0, 255] kept: clipping everything to [0, 1], as
    before, turned a 0..255 float image white."""
    if not np.all(np.isfinite(image)):
        raise ImageReadError("float image holds NaN or inf")
    low, high = float(image.min()), float(image.max())
    if low < 0.0 or high > 255.0:
        raise ImageReadError(f"float image with values in [{low:g}, {high:g}]; expected "
                             f"[0, 1] or [0, 255]")
    scale = 255.0 if high <= 1.0 else 1.0
    return (image.astype(np.float64) * scale + 0.5).astype(np.uint8)


def to_rgb_or_gray(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Normalise an array to uint8 ``(H, W, 1)`` or ``(H, W, 3)`` RGB.

    Args:
        image: ``(H, W)``, ``(H, W, 1|3|4)``; uint8, uint16 (scaled down), or float in
            [0, 1] (scaled up) or [0, 255] (kept): float TIFFs come in both.
        bgr: the colour channels are in OpenCV's BGR(A) order.

    Raises:
        ImageReadError: another dtype or shape, an empty image, or float values that are
            not finite or outside [0, 255].
    """
    import cv2

    if image.ndim in (2, 3) and 0 in image.shape:  # cvtColor and resize raise on these
        raise ImageReadError(f"empty image of shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise ImageReadError(f"unsupported image dtype {image.dtype}")
        image = _float_to_uint8(image)
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageReadError(f"unsupported image shape {image.shape}")
    if image.shape[2] == 1:
        return image
    if image.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB
        return cv2.cvtColor(image, code)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a uint8 gray or RGB image (format from the suffix)."""
    import cv2

    image = to_rgb_or_gray(image)
    out = image[:, :, 0] if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), out):
        raise ImageReadError(f"{path}: cannot write image")
