"""One entry point for every data source ``train`` and ``evaluate`` accept."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import DatasetError


def load_dataset(path: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None,
                 height: int | None = None, width: int | None = None,
                 channels: int | None = None, classes: Sequence[str | int] | None = None,
                 label_means: str = "similar") -> LabelledImages:
    """Read DATA as a :class:`LabelledImages`.

    Args:
        path: an image folder (``DATA/<identity>/*``), a pairs ``.csv``, or an IDX images
            file (then ``labels`` is its IDX labels file).
        height, width, channels: resize/convert to this (default: the data's own).
        classes: keep only these classes (names or ids).
        label_means: for a pairs CSV, what label 1 means ("similar" or "dissimilar").
    """
    from siamese_edge.runtime.preprocess import fit_images

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    if labels is not None and (path.is_dir() or path.suffix.lower() == ".csv"):
        # a folder's labels are its subfolders, a CSV's its third column: --labels would be
        # silently ignored, and the user believes it applies
        raise DatasetError(f"{path}: --labels goes with an IDX images file; "
                           f"{'a folder' if path.is_dir() else 'a pairs CSV'} carries its own")
    if path.is_dir():
        from siamese_edge.data.folder import load_image_folder

        data = load_image_folder(path, height, width, channels)
    elif path.suffix.lower() == ".csv":
        from siamese_edge.data.pairs_csv import load_pairs_csv

        data = load_pairs_csv(path, height, width, channels, label_means)
    else:
        from siamese_edge.data.idx import load_idx_dataset

        from siamese_edge.runtime.imageio import is_image_path

        if is_image_path(path):  # one image is not a data set: say what is
            raise DatasetError(f"{path}: one image; give a folder of identity folders "
                               f"(DATA/<identity>/*.png), a pairs CSV or an IDX images file")
        if labels is None:
            raise DatasetError(f"{path}: an IDX images file needs its labels file (--labels)")
        data = load_idx_dataset(path, labels)
        h, w, c = data.shape
        if (height or h, width or w, channels or c) != (h, w, c):
            data.images = fit_images(list(data.images), height or h, width or w, channels or c)
    if classes:
        data = data.select_classes(classes)
    if len(data) == 0:
        raise DatasetError(f"{path}: no images left after selecting classes")
    return data
