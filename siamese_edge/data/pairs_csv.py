"""A pairs CSV, ``img1,img2,label``: the format of the article this project started from.

Convention here: ``label`` 1 means the two images show the same identity (a genuine pair),
0 an impostor pair. Files written the other way (1 = dissimilar, as the article's loss formula
implies) are read with ``label_means="dissimilar"``. Paths are relative to the CSV's folder.

The CSV names no identities; for samplers that need them, identities are derived as the
connected components of the genuine pairs (union-find): images linked by "same" pairs share
a label. Images only ever in impostor pairs become identities of their own.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np

from siamese_edge.data.folder import fit_on_read
from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import DatasetError, ImageReadError
from siamese_edge.runtime.imageio import read_image
from siamese_edge.runtime.preprocess import fit_image


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def identities_from_pairs(count: int, pairs: np.ndarray) -> np.ndarray:
    """Label each of ``count`` items by its connected component over genuine pairs."""
    parent = list(range(count))
    for i, j, same in pairs:
        if same:
            a, b = _find(parent, int(i)), _find(parent, int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = [_find(parent, i) for i in range(count)]
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def parses_as_label(text: str) -> bool:
    """The rule a pairs file's label follows, ``int()``: a test of its characters took a
    data row labelled "+1" for a header and dropped its pair. ``compare --pairs`` uses it
    too, so both readers tell a header from a pair alike."""
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


def _is_header(row: list[str]) -> bool:
    """A first row whose label does not parse as an integer, by the rule the rows use."""
    return not parses_as_label(row[2 if len(row) >= 3 else -1])


def load_pairs_csv(path: str | os.PathLike[str], height: int | None = None,
                   width: int | None = None, channels: int | None = None,
                   label_means: str = "similar") -> LabelledImages:
    """Read a pairs CSV into a LabelledImages with ``pairs`` set."""
    if label_means not in ("similar", "dissimilar"):
        raise DatasetError(f"label_means must be 'similar' or 'dissimilar', not {label_means!r}")
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read CSV ({exc})") from None
    for number, text in enumerate(lines, 1):
        if "\x00" in text:  # before csv, which refuses it with its own error before 3.11
            raise DatasetError(f"{path}: line {number}: a path holds a NUL byte")
    rows = list(csv.reader(lines))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if rows and _is_header(rows[0]):
        rows = rows[1:]
    if not rows:
        raise DatasetError(f"{path}: no pairs")
    index: dict[str, int] = {}
    pairs = []
    for line, row in enumerate(rows, 1):
        if len(row) < 3:
            raise DatasetError(f"{path}: row {line} needs img1,img2,label")
        try:
            value = int(row[2].strip())
        except ValueError:
            raise DatasetError(f"{path}: row {line}: label {row[2]!r} is not 0 or 1") from None
        if value not in (0, 1):
            raise DatasetError(f"{path}: row {line}: label {value} is not 0 or 1")
        same = value if label_means == "similar" else 1 - value
        ends = []
        for name in row[:2]:
            file = str((path.parent / name.strip()).resolve())
            ends.append(index.setdefault(file, len(index)))
        pairs.append((ends[0], ends[1], same))
    files = list(index)
    raw, warnings, readable = [], [], np.zeros(len(files), bool)
    for k, file in enumerate(files):
        try:
            image = read_image(file)
        except ImageReadError as exc:
            warnings.append(str(exc))
            continue
        # fitted as it is read when the size is known: one full-resolution image at a time
        raw.append(fit_on_read(image, height, width, channels))
        del image
        readable[k] = True
    if not raw:
        raise DatasetError(f"{path}: none of the images could be read")
    pair_array = np.asarray(pairs, np.int64)
    # drop pairs touching unreadable images, renumber the readable ones
    keep = readable[pair_array[:, 0]] & readable[pair_array[:, 1]]
    renumber = np.cumsum(readable) - 1
    pair_array = pair_array[keep]
    pair_array[:, :2] = renumber[pair_array[:, :2]]
    files = [f for f, ok in zip(files, readable) if ok]
    if height is None or width is None:  # like an image folder: the most common size
        (h, w), _ = Counter(r.shape[:2] for r in raw).most_common(1)[0]
        height, width = height or h, width or w
    channels = channels or (3 if any(r.shape[2] == 3 for r in raw) else 1)
    images = np.stack([fit_image(r, height, width, channels) for r in raw])
    labels = identities_from_pairs(len(files), pair_array)
    names = [f"group-{i}" for i in range(int(labels.max()) + 1)]
    return LabelledImages(images, labels, names, files, pair_array, warnings)
