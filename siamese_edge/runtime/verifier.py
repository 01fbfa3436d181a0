"""1:1 verification and 1:N identification with an open-set "unknown" answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from siamese_edge.errors import GalleryError, UnknownIdentityError
from siamese_edge.runtime.embedder import Embedder
from siamese_edge.runtime.gallery import Gallery
from siamese_edge.runtime.matching import Candidate, identity_scores, top_k

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decision:
    """The answer for one probe.

    Attributes:
        identity: the claimed identity (1:1) or the best match (1:N); ``None`` if no template.
        score: cosine similarity to ``identity``'s best template.
        accepted: ``score >= threshold``.
        candidates: 1:N only, the top-k identities, best first.
    """

    identity: str | None
    score: float
    accepted: bool
    threshold: float
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def answer(self) -> str:
        """What a device shows: the identity if accepted, else ``unknown``."""
        return self.identity if self.accepted and self.identity else UNKNOWN

    def to_dict(self) -> dict:
        return {"identity": self.identity, "answer": self.answer, "score": self.score,
                "accepted": self.accepted, "threshold": self.threshold,
                "candidates": [{"identity": c.identity, "score": c.score}
                               for c in self.candidates]}


class Verifier:
    """Composes an embedder, a gallery and a threshold into decisions.

    Args:
        embedder: an entered :class:`Embedder`.
        gallery: an open :class:`Gallery` made with the same model.
        threshold: accept when the score reaches it; default the model's own threshold.
    """

    def __init__(self, embedder: Embedder, gallery: Gallery,
                 threshold: float | None = None) -> None:
        self.embedder = embedder
        self.gallery = gallery
        self.threshold = float(embedder.info.threshold if threshold is None else threshold)

    def verify(self, images: Sequence[np.ndarray], identity: str) -> list[Decision]:
        """1:1: is each image ``identity``?"""
        return self.verify_embeddings(self.embedder.embed(images), identity)

    def identify(self, images: Sequence[np.ndarray], k: int = 5) -> list[Decision]:
        """1:N: who is each image, or ``unknown``?"""
        return self.identify_embeddings(self.embedder.embed(images), k)

    def verify_embeddings(self, embeddings: np.ndarray, identity: str) -> list[Decision]:
        matrix = self.gallery.matrix()
        if identity not in matrix.names:
            raise UnknownIdentityError(f"no identity named {identity!r} in "
                                       f"{self.gallery.path}")
        column = matrix.names.index(identity)
        scores = identity_scores(embeddings, matrix)[:, column]
        return [Decision(identity, float(s), bool(s >= self.threshold), self.threshold)
                for s in scores]

    def identify_embeddings(self, embeddings: np.ndarray, k: int = 5) -> list[Decision]:
        matrix = self.gallery.matrix()
        if not matrix.names:
            raise GalleryError(f"{self.gallery.path}: the gallery is empty; enroll first")
        ranked = top_k(identity_scores(embeddings, matrix), matrix.names, max(1, k))
        return [Decision(c[0].identity, c[0].score, c[0].score >= self.threshold,
                         self.threshold, c) for c in ranked]
