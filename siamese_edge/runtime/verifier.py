"""1:1 verification and 1:N identification with an open-set "unknown" answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from siamese_edge.errors import GalleryError, InvalidInputError, UnknownIdentityError
from siamese_edge.runtime.embedder import Embedder
from siamese_edge.runtime.gallery import UNKNOWN, Gallery, normalize_name
from siamese_edge.runtime.matching import Aggregation, Candidate, MaxScore


@dataclass(frozen=True)
class Decision:
    """The answer for one probe.

    Attributes:
        identity: the claimed identity (1:1) or the best match (1:N); ``None`` if no template.
        score: cosine similarity to ``identity``'s best template.
        accepted: ``score >= threshold`` (and, 1:N with a margin, best - second >= margin).
        candidates: 1:N only, the top-k identities, best first.
        margin: 1:N with a required margin: the gap between the best and the second-best
            identity (``None`` otherwise, or with a single identity).
        required_margin: the margin asked for, if any.
    """

    identity: str | None
    score: float
    accepted: bool
    threshold: float
    candidates: list[Candidate] = field(default_factory=list)
    margin: float | None = None
    required_margin: float | None = None

    @property
    def answer(self) -> str:
        """What a device shows: the identity if accepted, else ``unknown``."""
        return self.identity if self.accepted and self.identity else UNKNOWN

    def to_dict(self) -> dict:
        """The ``--json`` form. ``identity`` means what it means in ``verify --camera``'s
        events: 1:1, the claimed identity; 1:N, the accepted one or None, with the best
        match, accepted or not, under ``nearest`` (a script reading ``identity`` used to
        take the nearest stranger's name for an answer)."""
        identify = bool(self.candidates)  # 1:N always ranks at least one candidate
        doc = {"identity": self.identity if self.accepted or not identify else None,
               "answer": self.answer, "score": self.score, "accepted": self.accepted,
               "threshold": self.threshold}
        if identify:
            doc["nearest"] = self.identity
        doc.update({"candidates": [{"identity": c.identity, "score": c.score}
                                   for c in self.candidates],
                    "margin": self.margin, "required_margin": self.required_margin})
        return doc


class Verifier:
    """Composes an embedder, a gallery and a threshold into decisions.

    Args:
        embedder: an entered :class:`Embedder`.
        gallery: an open :class:`Gallery` made with the same model.
        threshold: accept when the score reaches it; default the model's own threshold.
        aggregation: how an identity's template scores combine (default :class:`MaxScore`).
        margin: 1:N open-set rejection: also require best - second-best identity >= margin.
    """

    def __init__(self, embedder: Embedder, gallery: Gallery,
                 threshold: float | None = None, *, aggregation: Aggregation | None = None,
                 margin: float | None = None) -> None:
        self.embedder = embedder
        self.gallery = gallery
        self.threshold = finite_number("threshold",
                                 embedder.info.threshold if threshold is None else threshold)
        self.aggregation = aggregation if aggregation is not None else MaxScore()
        self.margin = None if margin is None else finite_number("margin", margin)

    def verify(self, images: Sequence[np.ndarray], identity: str) -> list[Decision]:
        """1:1: is each image ``identity``?"""
        return self.verify_embeddings(self.embedder.embed(images), identity)

    def identify(self, images: Sequence[np.ndarray], k: int = 5) -> list[Decision]:
        """1:N: who is each image, or ``unknown``?"""
        return self.identify_embeddings(self.embedder.embed(images), k)

    def verify_embeddings(self, embeddings: np.ndarray, identity: str) -> list[Decision]:
        identity = normalize_name(identity)  # as enrolment stored it
        index = self.gallery.index()
        labels = [label for label, name in self.gallery.label_names().items()
                  if name == identity]
        if not labels or not np.any(index.labels == labels[0]):
            raise UnknownIdentityError(f"no identity named {identity!r} in "
                                       f"{self.gallery.path}" + (" (it has no templates)"
                                                                 if labels else ""))
        # Python floats (float64), as 1:N compares: NumPy 2 would compare a float32 score
        # with a Python float in float32, accepting scores just below the threshold.
        scores = self.aggregation.reduce(index.scores_of(embeddings, labels[0])).tolist()
        return [Decision(identity, s, s >= self.threshold, self.threshold) for s in scores]

    def identify_embeddings(self, embeddings: np.ndarray, k: int = 5) -> list[Decision]:
        index = self.gallery.index()
        if not len(index):
            raise GalleryError(f"{self.gallery.path}: the gallery is empty; enroll first")
        names = self.gallery.label_names()
        depth = max(1, k, 2 if self.margin is not None else 1)
        decisions = []
        for ranked in self.aggregation.rank(index, embeddings, depth):
            candidates = [Candidate(names[label], float(score)) for label, score in ranked]
            best = candidates[0]
            accepted = best.score >= self.threshold
            gap = None
            if self.margin is not None and len(candidates) > 1:
                gap = best.score - candidates[1].score
                accepted = accepted and gap >= self.margin
            decisions.append(Decision(best.identity, best.score, bool(accepted),
                                      self.threshold, candidates[:max(1, k)], gap,
                                      self.margin))
        return decisions


def finite_number(what: str, value: float) -> float:
    """``value`` as a float; nan (which rejects every probe) or ±inf is an error."""
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, not {value}")
    return value
