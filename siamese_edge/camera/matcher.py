"""The matching protocol the camera loop speaks, and an in-memory cosine implementation.

The loop needs only ``match(embeddings) -> list[Match]``, one Match per row. The runtime's
gallery/Verifier can be adapted to it without the camera code knowing its internals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

from siamese_edge.errors import InvalidInputError


@dataclass(frozen=True)
class Match:
    """The answer for one region.

    Attributes:
        identity: the best (1:N) or the claimed (1:1) identity; None when unknown (1:N with
            nothing at or above the threshold, or an empty gallery).
        score: cosine similarity to that identity (the best one for an unknown in 1:N).
        accepted: ``score >= threshold`` for that identity, before temporal voting.
    """

    identity: Optional[str]
    score: float
    accepted: bool


class FrameMatcher(Protocol):
    """Anything that scores L2-normalised embeddings ``(N, D)`` against enrolled identities."""

    def match(self, embeddings: np.ndarray) -> list[Match]: ...


class CosineMatrixMatcher:
    """A :class:`FrameMatcher` over an in-memory matrix of enrolled templates.

    Args:
        names: identity of each template row (repeats allowed: several templates each).
        templates: ``(T, D)`` L2-normalised embeddings.
        threshold: accept when cosine >= threshold.
        identity: 1:1 mode, the claimed identity; None for 1:N against everyone.

    An identity's score is its best template's cosine (as the runtime's gallery does).
    """

    def __init__(self, names: Sequence[str], templates: np.ndarray, threshold: float,
                 identity: str | None = None) -> None:
        templates = np.asarray(templates, np.float32)
        if templates.ndim != 2:  # reshape(0, -1) of an empty gallery raises: only flat rows
            templates = templates.reshape(len(names), -1)
        if len(templates) != len(names):
            raise InvalidInputError(f"{len(names)} names for {len(templates)} templates")
        self.identities = sorted(set(names))
        if identity is not None and identity not in self.identities:
            raise InvalidInputError(f"identity {identity!r} is not enrolled")
        self.names = list(names)
        self.templates = templates
        self.threshold = float(threshold)
        self.identity = identity
        owner = np.array([self.identities.index(n) for n in self.names], np.int64)
        self._masks = np.stack([owner == i for i in range(len(self.identities))]) \
            if self.identities else np.zeros((0, len(self.names)), bool)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N, I)`` best cosine per identity (columns in ``self.identities`` order)."""
        sims = np.asarray(embeddings, np.float32) @ self.templates.T  # (N, T)
        out = np.full((len(sims), len(self.identities)), -np.inf, np.float32)
        for i, mask in enumerate(self._masks):
            out[:, i] = sims[:, mask].max(axis=1)
        return out

    def match(self, embeddings: np.ndarray) -> list[Match]:
        if not self.identities:
            return [Match(None, 0.0, False) for _ in range(len(embeddings))]
        scores = self.scores(embeddings)
        if self.identity is not None:
            column = scores[:, self.identities.index(self.identity)]
            # float64, as in 1:N and the runtime's verifier: NumPy 2 compares an np.float32
            # score with a Python float in float32, rounding a threshold onto the score
            return [Match(self.identity, float(s), float(s) >= self.threshold) for s in column]
        best = scores.argmax(axis=1)
        out = []
        for row, j in zip(scores, best):
            score = float(row[j])
            accepted = score >= self.threshold
            out.append(Match(self.identities[j] if accepted else None, score, accepted))
        return out


class VerifierMatcher:
    """The runtime's :class:`~siamese_edge.runtime.verifier.Verifier` as a frame matcher:
    1:1 against ``identity`` when given, else 1:N with an unknown below the threshold."""

    def __init__(self, verifier, identity: Optional[str] = None) -> None:
        self.verifier = verifier
        self.identity = identity

    def match(self, embeddings: np.ndarray) -> list[Match]:
        if len(embeddings) == 0:
            return []
        if self.identity is not None:
            decisions = self.verifier.verify_embeddings(embeddings, self.identity)
        else:
            decisions = self.verifier.identify_embeddings(embeddings, 1)
        return [Match(d.identity if self.identity is not None or d.accepted else None,
                      d.score, d.accepted) for d in decisions]
