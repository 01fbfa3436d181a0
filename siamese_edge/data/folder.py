"""An image folder: ``root/<identity>/*.png|jpg|…``, any size, gray or colour."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import DatasetError, ImageReadError
from siamese_edge.runtime.imageio import is_image_path, read_image
from siamese_edge.runtime.preprocess import fit_image


def load_image_folder(root: str | os.PathLike[str], height: int | None = None,
                      width: int | None = None, channels: int | None = None) -> LabelledImages:
    """Read every image under ``root/<identity>/`` at one size.

    Size and channels default to the data's own: the most common image size, and colour if
    any image is colour. Unreadable files are skipped and listed in ``warnings``.
    """
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise DatasetError(f"{root}: no identity subfolders (expected DIR/<identity>/*.png)")
    raw, labels, paths, names, warnings, warning_classes = [], [], [], [], [], []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))
        kept = 0
        for path in files:
            try:
                raw.append(read_image(path))
            except ImageReadError as exc:
                warnings.append(str(exc))
                warning_classes.append(folder.name)
                continue
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
