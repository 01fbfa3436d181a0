"""Scoring queries against gallery templates: cosine similarity, per-identity aggregation, top-k.

All embeddings are L2-normalised, so cosine similarity is a dot product. An identity's score
aggregates its templates' scores; the aggregation is an object passed in:

- :class:`MaxScore` (default): the best template. Ranked exactly from template-level top-k
  (the first k distinct identities among the best templates are the k best identities).
- :class:`MeanOfTopK`: the mean of the identity's ``k`` best templates (all, if fewer); more
  robust to one lucky template, costs a full score row per query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.gallery import GalleryMatrix
from siamese_edge.runtime.search_index import SearchIndex, exact_scores


@dataclass(frozen=True)
class Candidate:
    identity: str
    score: float


class Aggregation:
    """How an identity's template scores become one score. Subclasses fill :meth:`reduce`
    and may override :meth:`rank` with something faster."""

    name = "aggregation"

    def reduce(self, scores: np.ndarray) -> np.ndarray:
        """``(Q, t)`` scores of one identity's templates -> ``(Q,)``."""
        raise NotImplementedError

    def rank(self, index: SearchIndex, queries: np.ndarray,
             k: int) -> list[list[tuple[int, float]]]:
        """The ``k`` best ``(label, score)`` per query, best first. Generic: every score."""
        labels = index.labels
        if not len(labels):
            return [[] for _ in range(len(queries))]
        order = np.argsort(labels, kind="stable")
        starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
        bounds = np.r_[starts, len(order)]
        keys = labels[order][starts]
        all_scores = index.scores(queries)[:, order]
        per_label = np.stack([self.reduce(all_scores[:, a:b])
                              for a, b in zip(bounds[:-1], bounds[1:])], axis=1)
        return [_best(row, keys, k) for row in per_label]


class MaxScore(Aggregation):
    """An identity scores its best template."""

    name = "max"

    def reduce(self, scores: np.ndarray) -> np.ndarray:
        return scores.max(axis=1)

    def rank(self, index: SearchIndex, queries: np.ndarray,
             k: int) -> list[list[tuple[int, float]]]:
        n = len(index)
        wanted = min(k, len(np.unique(index.labels))) if n else 0
        if wanted == 0:
            return [[] for _ in range(len(queries))]
        depth = min(n, 4 * k + 4)
        while True:
            hits = index.search(queries, depth)
            ranked = [_first_distinct(hits.labels[j], hits.scores[j], wanted)
                      for j in range(len(queries))]
            if depth >= n or all(len(r) == wanted for r in ranked):
                return ranked
            # Enough templates to surely hold `wanted` identities: (wanted-1) × the largest
            # identity's template count, plus one.
            largest = int(np.bincount(np.unique(index.labels, return_inverse=True)[1]).max())
            depth = min(n, max(4 * depth, (wanted - 1) * largest + 1))


class MeanOfTopK(Aggregation):
    """An identity scores the mean of its ``k`` best templates (all of them if fewer)."""

    name = "mean-top-k"

    def __init__(self, k: int = 3) -> None:
        if k < 1:
            raise InvalidInputError("mean-top-k needs k >= 1")
        self.k = int(k)

    def reduce(self, scores: np.ndarray) -> np.ndarray:
        if scores.shape[1] > self.k:
            scores = -np.partition(-scores, self.k - 1, axis=1)[:, :self.k]
        return scores.mean(axis=1)


def aggregation_from_name(name: str, k: int = 3) -> Aggregation:
    """``max`` or ``mean-top-k`` (with ``k`` templates): the CLI's spelling."""
    if name == "max":
        return MaxScore()
    if name in ("mean-top-k", "mean"):
        return MeanOfTopK(k)
    raise InvalidInputError(f"unknown aggregation {name!r}: use max or mean-top-k")


def _first_distinct(labels: np.ndarray, scores: np.ndarray,
                    wanted: int) -> list[tuple[int, float]]:
    seen: dict[int, float] = {}
    for label, score in zip(labels.tolist(), scores.tolist()):
        if label >= 0 and label not in seen:
            seen[label] = score
            if len(seen) == wanted:
                break
    return list(seen.items())


def _best(row: np.ndarray, keys: np.ndarray, k: int) -> list[tuple[int, float]]:
    order = np.lexsort((keys, -row))[:k]
    return [(int(keys[i]), float(row[i])) for i in order]


def identity_scores(queries: np.ndarray, gallery: GalleryMatrix,
                    aggregation: Aggregation | None = None) -> np.ndarray:
    """``(Q, I)`` scores: per query, each identity's aggregated template scores."""
    queries = np.asarray(queries, np.float32)
    if len(gallery.names) == 0:
        return np.empty((len(queries), 0), np.float32)
    similarities = exact_scores(queries, gallery.embeddings.T)  # (Q, T), as the index scores
    if aggregation is None or isinstance(aggregation, MaxScore):
        # Templates of one identity are contiguous: reduce each run of columns.
        return np.maximum.reduceat(similarities, gallery.starts, axis=1)
    bounds = np.r_[gallery.starts, len(gallery.owner)]
    return np.stack([aggregation.reduce(similarities[:, a:b])
                     for a, b in zip(bounds[:-1], bounds[1:])], axis=1).astype(np.float32)


def top_k(scores: np.ndarray, names: list[str], k: int) -> list[list[Candidate]]:
    """The ``k`` best identities per query row, best first."""
    k = max(0, min(int(k), scores.shape[1]))
    if k == 0:
        return [[] for _ in range(len(scores))]
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    out = []
    for row, idx in zip(scores, part):
        order = idx[np.argsort(-row[idx], kind="stable")]
        out.append([Candidate(names[j], float(row[j])) for j in order])
    return out
