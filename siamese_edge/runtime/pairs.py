"""1:1 comparison of two images, no gallery: the Siamese question "same identity or not?".

For a questioned signature against a reference, or a verification protocol written as a list
of image pairs. Each distinct image is read and embedded once, in chunks, however many pairs
name it; a pair whose image cannot be read is reported and skipped, never guessed.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siamese_edge.data.pairs_csv import parses_as_label
from siamese_edge.errors import ImageReadError, InvalidInputError
from siamese_edge.runtime.embedder import Embedder
from siamese_edge.runtime.imageio import read_image
from siamese_edge.runtime.search_index import exact_scores
from siamese_edge.runtime.verifier import finite_number

#: distinct images read and embedded at a time (bounds memory on long pair lists)
CHUNK = 256


@dataclass(frozen=True)
class PairDecision:
    first: str
    second: str
    score: float  # cosine similarity of the two embeddings
    accepted: bool  # score >= threshold: the same identity
    threshold: float

    def to_dict(self) -> dict:
        return {"first": self.first, "second": self.second, "score": self.score,
                "accepted": self.accepted, "threshold": self.threshold}


@dataclass
class PairReport:
    threshold: float
    decisions: list[PairDecision] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    def to_dict(self) -> dict:
        return {"threshold": self.threshold,
                "pairs": [d.to_dict() for d in self.decisions],
                "failures": [{"file": f, "error": e} for f, e in self.failures]}


def read_pair_list(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Two image paths per line, separated by a tab or a comma (CSV quoting for paths with
    commas); blank lines and lines starting with ``#`` are skipped. Relative paths are
    relative to the list's folder, so a protocol travels with its images. A pairs CSV as
    ``train`` and ``evaluate`` read it (``img1,img2,label``, with or without its header) is
    read too; its label column is not needed here and is ignored.

    Raises:
        InvalidInputError: the file cannot be read, a line does not hold two paths, or there
            are no pairs.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # the BOM spreadsheets write
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InvalidInputError(f"--pairs {path}: cannot read it ({reason})") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\x00" in line:  # before csv, which refuses it with its own error before 3.11
            raise InvalidInputError(f"--pairs {path}, line {number}: a path holds a NUL byte")
        fields = next(csv.reader([line], delimiter="\t" if "\t" in line else ","))
        fields = [f.strip() for f in fields]
        if len(fields) == 3 and parses_as_label(fields[2]):
            fields = fields[:2]  # a labelled pairs CSV
        elif not pairs and (len(fields) == 3 or [f.lower() for f in fields] == ["img1", "img2"]):
            continue  # a header: as the pairs CSV reader, any first row without a label
        if len(fields) != 2 or not all(fields):
            raise InvalidInputError(f"--pairs {path}, line {number}: expected two image "
                                    f"paths separated by a tab or a comma, got {line!r}")
        pairs.append(tuple(str(path.parent / f) for f in fields))
    if not pairs:
        raise InvalidInputError(f"--pairs {path}: no pairs in it")
    return pairs


def compare_pairs(embedder: Embedder, pairs: Sequence[tuple[str, str]],
                  threshold: float | None = None, skip_unreadable: bool = True) -> PairReport:
    """Score every pair and decide it at ``threshold`` (default: the model's own).

    Args:
        embedder: an entered :class:`Embedder`.
        pairs: (first, second) image paths.
        threshold: accept a pair as the same identity when its score reaches it.
        skip_unreadable: report pairs with an unreadable image as failures (else raise
            :class:`ImageReadError` on the first one).
    """
    value = finite_number("threshold",
                          embedder.info.threshold if threshold is None else threshold)
    report = PairReport(value)
    distinct = list(dict.fromkeys(p for pair in pairs for p in pair))
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(distinct), CHUNK):
        images, names = [], []
        for name in distinct[start:start + CHUNK]:
            try:
                images.append(read_image(name))
                names.append(name)
            except ImageReadError as exc:
                if not skip_unreadable:
                    raise
                report.failures.append((name, str(exc)))
        if images:
            vectors.update(zip(names, embedder.embed(images)))
    for first, second in pairs:
        if first in vectors and second in vectors:
            # scored as the gallery scores (so `verify -i` against a one-template gallery
            # gives the same number) and compared in float64, as the verifier compares
            score = float(exact_scores(vectors[first][None], vectors[second][:, None])[0, 0])
            report.decisions.append(PairDecision(first, second, score, score >= value, value))
    if not report.decisions:
        raise InvalidInputError(f"no pair could be compared: every pair has an unreadable "
                                f"image ({len(report.failures)} unreadable, first "
                                f"{report.failures[0][1]})")
    return report
