"""Scoring queries against gallery templates: cosine similarity, per-identity aggregation, top-k.

All embeddings are L2-normalised, so cosine similarity is a dot product. An identity's score
is the best score over its templates (``max`` aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siamese_edge.runtime.gallery import GalleryMatrix


@dataclass(frozen=True)
class Candidate:
    identity: str
    score: float


def identity_scores(queries: np.ndarray, gallery: GalleryMatrix) -> np.ndarray:
    """``(Q, I)`` scores: for each query, the best cosine over each identity's templates."""
    queries = np.asarray(queries, np.float32)
    if len(gallery.names) == 0:
        return np.empty((len(queries), 0), np.float32)
    similarities = queries @ gallery.embeddings.T  # (Q, T)
    # Templates of one identity are contiguous: reduce each run of columns.
    return np.maximum.reduceat(similarities, gallery.starts, axis=1)


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
