"""An image folder: ``root/<identity>/*.png|jpg|…``, any size, gray or colour."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import DatasetError, ImageReadError
from siamese_edge.runtime.imageio import image_files, is_hidden, read_image
from siamese_edge.runtime.preprocess import fit_image


def fit_on_read(image: np.ndarray, height: int | None, width: int | None,
                channels: int | None) -> np.ndarray:
    """``image`` fitted to the data set's size as soon as it is read, when the size is
    known: memory then holds the data set at that size, not every decoded image at full
    resolution until the end (12 links to one 8192x8192 PNG took 2.6 GB). With the size
    unknown (the most common one is used) the image is kept as it is.

    Channels unknown (colour if any image is colour), the image keeps its own: a gray one
    is repeated to three channels later, after the resize here instead of before it, which
    gives the same pixels (OpenCV resizes each channel alike).
    """
    if height is None or width is None:
        return image
    return fit_image(image, height, width, channels or image.shape[2])


def load_image_folder(root: str | os.PathLike[str], height: int | None = None,
                      width: int | None = None, channels: int | None = None) -> LabelledImages:
    """Read every image under ``root/<identity>/`` at one size.

    Size and channels default to the data's own: the most common image size, and colour if
    any image is colour. Unreadable files are skipped and listed in ``warnings``.
    """
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p)) \
        if root.is_dir() else []
    if not folders:
        raise DatasetError(f"{root}: no identity subfolders (expected DIR/<identity>/*.png)")
    raw, labels, paths, names, warnings, warning_classes = [], [], [], [], [], []
    for folder in folders:
        files, broken = image_files(folder, recursive=True)
        for path in broken:
            warnings.append(f"{path}: a link to a file that is gone")
            warning_classes.append(folder.name)
        kept = 0
        for path in files:
            try:
                image = read_image(path)
            except ImageReadError as exc:
                warnings.append(str(exc))
                warning_classes.append(folder.name)
                continue
            raw.append(fit_on_read(image, height, width, channels))
            del image  # the full-resolution image goes now, not when the next one is read
            labels.append(len(names))
            paths.append(str(path))
            kept += 1
        if kept:
            names.append(folder.name)
    if not raw:
        raise DatasetError(f"{root}: no readable images")
    if height is None or width is None:
        (h, w), _ = Counter(image.shape[:2] for image in raw).most_common(1)[0]
        height, width = height or h, width or w
    if channels is None:
        channels = 3 if any(image.shape[2] == 3 for image in raw) else 1
    images = np.stack([fit_image(image, height, width, channels) for image in raw])
    return LabelledImages(images, np.asarray(labels, np.int64), names, paths,
                          warnings=warnings, warning_classes=warning_classes)
