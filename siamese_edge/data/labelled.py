"""A labelled image set: the one in-memory form every data source is read into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from siamese_edge.errors import DatasetError


@dataclass
class LabelledImages:
    """Images with identity labels.

    Attributes:
        images: uint8 ``(N, H, W, C)``, C = 1 (gray) or 3 (RGB).
        labels: int64 ``(N,)``, indices into ``class_names``.
        class_names: identity names.
        paths: the source file of each image, when read from files.
        pairs: explicit pairs ``(M, 3)``: index i, index j, same (1) / different (0), when
            the data came as a pairs CSV.
        warnings: files that could not be read (skipped), one line each.
        warning_classes: the class (folder) of each warning, where the source knows it, so
            that selecting classes keeps only the warnings about them.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    paths: list[str] | None = None
    pairs: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    warning_classes: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DatasetError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} "
                               f"{self.images.shape}")
        if self.images.shape[3] not in (1, 3):
            raise DatasetError(f"images must have 1 (gray) or 3 (RGB) channels, not "
                               f"{self.images.shape[3]}")
        if len(self.images) != len(self.labels):
            raise DatasetError("one label per image expected")
        self.labels = np.asarray(self.labels, np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels)."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, indices: np.ndarray) -> LabelledImages:
        """The images at ``indices`` (explicit pairs are kept where both ends are)."""
        indices = np.asarray(indices, np.int64)
        pairs = None
        if self.pairs is not None:
            position = np.full(len(self), -1, np.int64)
            position[indices] = np.arange(len(indices))
            mapped = np.stack([position[self.pairs[:, 0]], position[self.pairs[:, 1]],
                               self.pairs[:, 2]], axis=1)
            pairs = mapped[(mapped[:, 0] >= 0) & (mapped[:, 1] >= 0)]
        return LabelledImages(self.images[indices], self.labels[indices], self.class_names,
                              [self.paths[i] for i in indices] if self.paths else None, pairs,
                              list(self.warnings), list(self.warning_classes))

    def select_classes(self, wanted: Sequence[str | int]) -> LabelledImages:
        """Only the images of the given classes: names, or positions when no name is a number.

        Names that are numbers (IDX label values, folders named 1, 2, ...) are only ever
        matched as names, so ``0`` cannot silently pick the class at position 0 when the
        labels run 1..10.
        """
        numeric_names = any(_is_integer(name) for name in self.class_names)
        ids: dict[int, str] = {}
        for item in wanted:
            key = str(item)
            if key in self.class_names:
                index = self.class_names.index(key)
            elif (_is_integer(key) and not numeric_names
                  and 0 <= int(key) < len(self.class_names)):
                index = int(key)
            else:
                raise DatasetError(f"no class {item!r} in the data (classes: "
                                   f"{', '.join(self.class_names[:20])})")
            if index in ids:
                raise DatasetError(f"class {item!r} is the same class as {ids[index]!r}")
            ids[index] = key
        selected = self.subset(np.nonzero(np.isin(self.labels, sorted(ids)))[0])
        if self.warning_classes:  # files of other classes were never part of the selection
            names = {self.class_names[i] for i in ids}
            kept = [(w, c) for w, c in zip(self.warnings, self.warning_classes)
                    if c is None or c in names]
            selected.warnings = [w for w, _ in kept]
            selected.warning_classes = [c for _, c in kept]
        return selected


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()
