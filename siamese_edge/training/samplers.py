"""Batch construction: balanced genuine/impostor pairs, and P identities × K samples."""

from __future__ import annotations

import numpy as np

from siamese_edge.errors import DatasetError, InvalidInputError


class BalancedPairSampler:
    """Pairs, half genuine and half impostor, drawn from labels (or explicit pairs).

    The article's pairs were drawn at random, so with ten classes ~90 % were impostors and
    training barely moved; balancing fixes that.
    """

    def __init__(self, labels: np.ndarray, rng: np.random.Generator,
                 pairs: np.ndarray | None = None) -> None:
        self.rng = rng
        self.labels = np.asarray(labels)
        self.pairs = pairs
        if pairs is not None:
            self.genuine = pairs[pairs[:, 2] == 1][:, :2]
            self.impostor = pairs[pairs[:, 2] == 0][:, :2]
            if len(self.genuine) == 0 or len(self.impostor) == 0:
                raise DatasetError("the pairs need both genuine (same) and impostor pairs")
        else:
            classes, counts = np.unique(self.labels, return_counts=True)
            self.members = {c: np.nonzero(self.labels == c)[0] for c in classes}
            self.pair_classes = classes[counts >= 2]
            if len(self.pair_classes) == 0 or len(classes) < 2:
                raise DatasetError("balanced pairs need two identities and one with two images")
            self.classes = classes

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``count`` pairs: (first indices, second indices, same ∈ {0, 1})."""
        if count < 2:  # one pair is an impostor pair: no genuine pair to learn from
            raise InvalidInputError(f"balanced pairs need at least 2 per batch, not {count}")
        n_genuine = count // 2
        n_impostor = count - n_genuine
        if self.pairs is not None:
            g = self.genuine[self.rng.integers(len(self.genuine), size=n_genuine)]
            i = self.impostor[self.rng.integers(len(self.impostor), size=n_impostor)]
            first = np.concatenate([g[:, 0], i[:, 0]])
            second = np.concatenate([g[:, 1], i[:, 1]])
        else:
            first, second = [], []
            for c in self.rng.choice(self.pair_classes, n_genuine):
                a, b = self.rng.choice(self.members[c], 2, replace=False)
                first.append(a)
                second.append(b)
            for _ in range(n_impostor):
                c1, c2 = self.rng.choice(self.classes, 2, replace=False)
                first.append(self.rng.choice(self.members[c1]))
                second.append(self.rng.choice(self.members[c2]))
            first, second = np.asarray(first), np.asarray(second)
        same = np.concatenate([np.ones(n_genuine), np.zeros(n_impostor)]).astype(np.float32)
        return first.astype(np.int64), second.astype(np.int64), same


class PKSampler:
    """Batches of ``p`` identities × ``k`` images each (with replacement for small classes)."""

    def __init__(self, labels: np.ndarray, p: int, k: int, rng: np.random.Generator) -> None:
        # with one image per identity no pair is positive, with one identity none negative:
        # every miner finds no triplet and training runs on, silently, at loss 0
        if k < 2 or p < 2:
            raise InvalidInputError(f"P×K batches need p >= 2 identities and k >= 2 images "
                                    f"each, not p={p}, k={k}")
        self.labels = np.asarray(labels)
        self.rng = rng
        classes = np.unique(self.labels)
        self.members = {c: np.nonzero(self.labels == c)[0] for c in classes}
        self.classes = np.array([c for c in classes if len(self.members[c]) >= 2])
        if len(self.classes) < 2:
            raise DatasetError("P×K batches need at least two identities with two images each")
        self.p = min(p, len(self.classes))
        self.k = k

    def sample(self) -> np.ndarray:
        """Indices of one batch, grouped by identity."""
        batch = []
        for c in self.rng.choice(self.classes, self.p, replace=False):
            members = self.members[c]
            if len(members) >= self.k:
                batch.append(self.rng.choice(members, self.k, replace=False))
            else:  # every member once, then repeats: a 2-image class always gives a pair
                extra = self.rng.choice(members, self.k - len(members), replace=True)
                batch.append(np.concatenate([self.rng.permutation(members), extra]))
        return np.concatenate(batch).astype(np.int64)
