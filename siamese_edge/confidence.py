"""Confidence intervals of verification metrics, by resampling identities.

Pairs of images are not independent: every pair of one identity shares that identity's
looks, so a bootstrap over pairs gives intervals far too narrow. The unit to resample is
the identity (the "subsets bootstrap" of Bolle, Ratha and Pankanti, 2004): each replicate
draws the identities with replacement, an identity drawn ``m`` times counts its genuine
pairs ``m`` times and its impostor pairs with an identity drawn ``m'`` times ``m·m'``
times. Pairs between two draws of one identity are not impostors and are left out.

Each replicate's ROC is computed exactly from weights on one sort of the scores. Large sets
are subsampled to at most ``max_pairs`` pairs (genuine and impostor separately, uniformly),
which changes the intervals' precision, not what they estimate. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from siamese_edge.metrics import crossing_rate
from siamese_edge.runtime.search_index import exact_row_scores

#: fewer identities than this give no intervals: every usable resample of two is the data
MIN_IDENTITIES = 3
#: at this many identities or fewer the intervals are too coarse to read much into
FEW_IDENTITIES = 10
#: a FAR gets an interval only when the sampled impostor pairs hold this many false accepts
MIN_FALSE_ACCEPTS = 10


@dataclass
class ConfidenceIntervals:
    """Percentile intervals; each value is ``[low, high]``, or None when not measurable."""

    level: float
    replicates: int  # replicates that had both genuine and impostor pairs
    unit: str
    auc: list[float] | None
    eer: list[float] | None
    tar_at_far: dict[str, list[float] | None]
    #: FAR and FRR at the operating threshold (``threshold``), as a deployment would see them
    threshold: float | None = None
    far_at_threshold: list[float] | None = None
    frr_at_threshold: list[float] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Pairs:
    """Scores sorted from highest, with each pair's identity indices and kind."""

    scores: np.ndarray
    first: np.ndarray
    second: np.ndarray
    genuine: np.ndarray  # bool
    group_ends: np.ndarray  # index after the last pair of each distinct score


def _sample_pairs(codes: np.ndarray, rng: np.random.Generator,
                  max_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i != j``: all of them when few enough, else a uniform sample of each kind."""
    n = len(codes)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        return i, j
    half = max_pairs // 2
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_identity = counts * (counts - 1) / 2.0
    genuine = []
    if per_identity.sum() > 0:
        chosen = rng.choice(len(counts), size=half, p=per_identity / per_identity.sum())
        a = rng.integers(0, counts[chosen])
        b = rng.integers(0, counts[chosen] - 1)
        b = b + (b >= a)  # a different member of the same identity
        genuine = [order[starts[chosen] + a], order[starts[chosen] + b]]
    # impostors drawn directly, uniformly over pairs of different identities: image i with
    # weight its impostor partners, then j among them. Drawing any (i, j) and dropping the
    # genuine ones left fewer than ``half`` when one identity holds most images (72,036 of
    # 100,000), and TAR at FAR 1e-4 lost its interval
    others = n - counts[codes]
    if others.sum() == 0:  # one identity: no impostor pair
        i = j = np.empty(0, np.int64)
    else:
        i = rng.choice(n, size=half, p=others / others.sum())
        pick = rng.integers(0, others[i])
        own = codes[i]
        # position among the images sorted by identity, skipping i's own identity's block
        j = order[pick + (pick >= starts[own]) * counts[own]]
    if genuine:
        i, j = np.concatenate([genuine[0], i]), np.concatenate([genuine[1], j])
    return i, j


def _pairs(embeddings: np.ndarray, codes: np.ndarray, rng: np.random.Generator,
           max_pairs: int, block: int = 1 << 14) -> _Pairs:
    i, j = _sample_pairs(codes, rng, max_pairs)
    scores = np.empty(len(i), np.float32)
    for start in range(0, len(i), block):
        a, b = i[start:start + block], j[start:start + block]
        # as the runtime scores, in blocks small enough that the float64 copies stay
        # ~100 MB at 512 dimensions
        scores[start:start + block] = exact_row_scores(embeddings[a], embeddings[b])
    first, second = codes[i], codes[j]
    return _sorted_pairs(scores, first, second, first == second)


def _curve(pairs: _Pairs, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """FAR and TAR at each distinct score (highest first), from (0, 0); None if degenerate."""
    weight_first = counts[pairs.first]
    weights = np.where(pairs.genuine, weight_first,
                       weight_first * counts[pairs.second]).astype(np.float64)
    genuine = np.cumsum(np.where(pairs.genuine, weights, 0.0))[pairs.group_ends - 1]
    impostor = np.cumsum(np.where(pairs.genuine, 0.0, weights))[pairs.group_ends - 1]
    if genuine[-1] <= 0 or impostor[-1] <= 0:
        return None
    far = np.concatenate([[0.0], impostor / impostor[-1]])
    tar = np.concatenate([[0.0], genuine / genuine[-1]])
    return far, tar


def _metrics(far: np.ndarray, tar: np.ndarray, fars: Sequence[float],
             at_threshold: int | None) -> list[float]:
    """AUC, EER, TAR at each FAR, then FAR and FRR after ``at_threshold`` accepted groups."""
    auc = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))
    frr = 1.0 - tar
    values = [auc, crossing_rate(far, frr)[0]]
    for target in fars:
        values.append(float(tar[np.searchsorted(far, target, side="right") - 1]))
    if at_threshold is not None:
        values += [float(far[at_threshold]), float(frr[at_threshold])]
    return values


def _check(replicates: int, level: float) -> None:
    if replicates < 2:
        raise ValueError("the bootstrap needs at least 2 replicates")
    if not 0.0 < level < 1.0:
        raise ValueError("the confidence level must be between 0 and 1")


def _too_few(identities: int, far_keys: Sequence[str], unit: str,
             level: float) -> ConfidenceIntervals:
    return ConfidenceIntervals(level, 0, unit, None, None, dict.fromkeys(far_keys),
                               notes=[f"resampling needs at least {MIN_IDENTITIES} "
                                      f"identities, have {identities}"])


def _sorted_pairs(scores: np.ndarray, first: np.ndarray, second: np.ndarray,
                  genuine: np.ndarray) -> _Pairs:
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    change = np.nonzero(np.diff(scores))[0] + 1
    ends = np.concatenate([change, [len(scores)]])
    return _Pairs(scores, first[order], second[order], genuine[order], ends)


def identity_bootstrap(embeddings: np.ndarray, labels: np.ndarray, fars: Sequence[float],
                       far_keys: Sequence[str], threshold: float | None = None,
                       replicates: int = 200, level: float = 0.95, seed: int = 0,
                       max_pairs: int = 200_000) -> ConfidenceIntervals:
    """Percentile intervals of AUC, EER, TAR at each FAR and the error rates at ``threshold``.

    ``fars`` are reported under ``far_keys`` (the report's keys); a FAR that the sampled
    impostor pairs cannot measure gets None. 200 replicates of 200,000 pairs take ~1.5 s.
    """
    _check(replicates, level)
    rng = np.random.default_rng(seed)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    identities = int(codes.max()) + 1
    if identities < MIN_IDENTITIES:
        return _too_few(identities, far_keys, "identity", level)
    pairs = _pairs(np.asarray(embeddings, np.float32), codes, rng, max_pairs)
    return _resample(pairs, identities, fars, far_keys, threshold, replicates, level, rng,
                     "identity")


def listed_pairs_bootstrap(scores: np.ndarray, first: np.ndarray, second: np.ndarray,
                           genuine: np.ndarray, fars: Sequence[float],
                           far_keys: Sequence[str], threshold: float | None = None,
                           replicates: int = 200, level: float = 0.95,
                           seed: int = 0) -> ConfidenceIntervals:
    """The same intervals for a protocol's listed pairs (a pairs CSV).

    ``first`` / ``second``: each pair's images' identities, which a pairs list implies as
    the connected components of its genuine pairs; ``genuine``: the list's label. Those
    identities are resampled, each listed pair weighted as in :func:`identity_bootstrap`.
    """
    _check(replicates, level)
    rng = np.random.default_rng(seed)
    _, codes = np.unique(np.concatenate([first, second]), return_inverse=True)
    identities = int(codes.max()) + 1
    if identities < MIN_IDENTITIES:
        return _too_few(identities, far_keys, "identity", level)
    pairs = _sorted_pairs(np.asarray(scores, np.float64), codes[:len(first)],
                          codes[len(first):], np.asarray(genuine, bool))
    result = _resample(pairs, identities, fars, far_keys, threshold, replicates, level, rng,
                       "identity")
    result.notes.insert(0, "identities as the list implies them: images joined by its "
                           "genuine pairs")
    return result


def _resample(pairs: _Pairs, identities: int, fars: Sequence[float], far_keys: Sequence[str],
              threshold: float | None, replicates: int, level: float,
              rng: np.random.Generator, unit: str) -> ConfidenceIntervals:
    impostors = int(np.count_nonzero(~pairs.genuine))
    if len(fars) != len(far_keys):  # zip(strict=True) is Python 3.10+; the runtime runs on 3.8
        raise ValueError("one key per FAR")
    measurable = [(far, key) for far, key in zip(fars, far_keys)
                  if impostors * far >= MIN_FALSE_ACCEPTS]
    accepted = None
    if threshold is not None:  # distinct-score groups with score >= threshold
        accepted = int(np.searchsorted(-pairs.scores[pairs.group_ends - 1], -threshold,
                                       side="right"))
    rows = []
    for _ in range(replicates):
        counts = rng.multinomial(identities, np.full(identities, 1.0 / identities))
        curve = _curve(pairs, counts)
        if curve is not None:
            rows.append(_metrics(*curve, [far for far, _ in measurable], accepted))
    if len(rows) < 2:
        raise ValueError("too few identities for a bootstrap over identities "
                         "(turn it off with --bootstrap 0)")
    values = np.asarray(rows)
    tail = (1.0 - level) / 2.0 * 100.0
    bounds = np.percentile(values, [tail, 100.0 - tail], axis=0).T

    def interval(column: int) -> list[float]:
        return [float(bounds[column, 0]), float(bounds[column, 1])]

    notes = []
    if identities <= FEW_IDENTITIES:
        notes.append(f"only {identities} identities: the intervals are coarse")
    if len(rows) < replicates:
        notes.append(f"{replicates - len(rows)} of {replicates} resamples had no genuine "
                     f"or no impostor pair and were skipped")
    for far, key in zip(fars, far_keys):
        if impostors * far < MIN_FALSE_ACCEPTS:
            notes.append(f"TAR at FAR {key}: no interval; the {impostors} impostor pairs "
                         f"resampled hold fewer than {MIN_FALSE_ACCEPTS} false accepts at it")
    tar_at_far: dict[str, list[float] | None] = dict.fromkeys(far_keys)
    for n, (_, key) in enumerate(measurable):
        tar_at_far[key] = interval(2 + n)
    result = ConfidenceIntervals(
        level=level, replicates=len(rows), unit=unit, auc=interval(0), eer=interval(1),
        tar_at_far=tar_at_far, notes=notes)
    if accepted is not None:
        result.threshold = float(threshold)
        result.far_at_threshold = interval(2 + len(measurable))
        result.frr_at_threshold = interval(3 + len(measurable))
    return result
