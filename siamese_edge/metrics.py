"""Verification metrics on similarity scores (higher score = more alike). numpy only.

Scores come in two sets: *genuine* (pairs of the same identity) and *impostor* (different
identities). A decision accepts a pair when ``score >= threshold``.

- FAR(t) (false accept rate) = fraction of impostor scores ``>= t``;
- FRR(t) = fraction of genuine scores ``< t``; TAR = 1 - FRR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siamese_edge.runtime.search_index import exact_scores


@dataclass(frozen=True)
class RocCurve:
    """Operating points, thresholds decreasing. ``far[i]``/``tar[i]`` hold at ``thresholds[i]``."""

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray


def _as_scores(scores: np.ndarray, name: str) -> np.ndarray:
    scores = np.asarray(scores, np.float64).ravel()
    if scores.size == 0:
        raise ValueError(f"no {name} scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} scores contain NaN or inf")
    return scores


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> RocCurve:
    """Every distinct threshold's (FAR, TAR), from accepting nothing to accepting all."""
    genuine = _as_scores(genuine, "genuine")
    impostor = _as_scores(impostor, "impostor")
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    genuine_sorted = np.sort(genuine)
    impostor_sorted = np.sort(impostor)
    # count of scores >= t = n - (index of first score >= t)
    tar = (genuine.size - np.searchsorted(genuine_sorted, thresholds, side="left")) / genuine.size
    far = (impostor.size - np.searchsorted(impostor_sorted, thresholds, side="left")) / impostor.size
    thresholds = np.concatenate([[np.inf], thresholds])
    return RocCurve(thresholds, np.concatenate([[0.0], far]), np.concatenate([[0.0], tar]))


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a genuine score beats an impostor one (ties count half)."""
    genuine = _as_scores(genuine, "genuine")
    impostor = _as_scores(impostor, "impostor")
    impostor_sorted = np.sort(impostor)
    below = np.searchsorted(impostor_sorted, genuine, side="left")
    ties = np.searchsorted(impostor_sorted, genuine, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (genuine.size * impostor.size))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """The error rate where FAR and FRR meet, and the threshold that reaches it.

    FAR rises and FRR falls from one operating point of the ROC to the next; the EER is
    where the straight line between the two points that straddle ``FAR = FRR`` crosses it
    (:func:`crossing_rate`). The threshold is that of the nearer of the two points (the
    lower-FAR one when they are as near), halfway to the next lower score so that small
    numeric noise does not flip decisions at the boundary.
    """
    curve = roc_curve(genuine, impostor)
    eer, i = crossing_rate(curve.far, 1.0 - curve.tar)
    return eer, _threshold_between(curve.thresholds, i)


def crossing_rate(far: np.ndarray, frr: np.ndarray) -> tuple[float, int]:
    """Where FAR meets FRR on a ROC given from accepting nothing (FAR 0, FRR 1) to accepting
    everything, and the index of the operating point nearest to it.

    Between the last point with ``FAR < FRR`` and the first with ``FAR >= FRR`` the rates
    are interpolated linearly: taking the nearest point's ``(FAR + FRR) / 2`` instead made
    the EER depend on which of two equally near points ``argmin`` met first (scores ``[0.4,
    0.4]`` against ``[0, 1]`` gave 0.75, the mirrored scores 0.25; the crossing is 0.5).
    """
    gap = far - frr
    k = int(np.argmax(gap >= 0))  # the first point at or past the crossing
    if gap[k] == 0 or k == 0:
        return float(far[k]), k
    step = gap[k] - gap[k - 1]
    weight = -gap[k - 1] / step  # 0 at point k - 1, 1 at point k
    eer = float(far[k - 1] + weight * (far[k] - far[k - 1]))
    return eer, (k if gap[k] < -gap[k - 1] else k - 1)


def threshold_at_far(genuine: np.ndarray, impostor: np.ndarray,
                     target_far: float) -> tuple[float, float, float]:
    """The lowest threshold whose FAR stays ``<= target_far``.

    Returns:
        ``(threshold, far, tar)`` at that threshold.
    """
    curve = roc_curve(genuine, impostor)
    ok = np.nonzero(curve.far <= target_far)[0]
    i = int(ok[-1])  # thresholds decrease, so the last admissible point accepts the most
    return _threshold_between(curve.thresholds, i), float(curve.far[i]), float(curve.tar[i])


def _threshold_between(thresholds: np.ndarray, i: int) -> float:
    """A threshold accepting exactly the scores >= thresholds[i], away from the scores."""
    t = thresholds[i]
    if not np.isfinite(t):  # accept nothing: just above the highest score
        if len(thresholds) == 1:
            return 1.0
        top = float(thresholds[1])
        above = top + 1e-6
        # 1e-6 vanishes next to a large score; the next float up still rejects it
        return above if above > top else float(np.nextafter(top, np.inf))
    if i + 1 < len(thresholds):
        below = float(thresholds[i + 1])
        middle = float((t + below) / 2.0)
        # Between adjacent floats the midpoint rounds onto one of them; onto ``below`` it
        # would accept the score the FAR was computed to reject. The next float up from
        # ``below`` is then ``t`` itself, which still accepts every score >= t.
        return middle if below < middle <= t else float(np.nextafter(below, np.inf))
    return float(t - 1e-6)


def pair_scores(embeddings: np.ndarray, labels: np.ndarray,
                block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs cosine scores of L2-normalised embeddings, split into genuine and impostor.

    Uses every unordered pair ``i < j``; callers subsample large sets first. Scores are
    computed as the runtime computes them (``exact_scores``: float64 products rounded to
    float32), so a threshold calibrated on them decides every pair as ``verify`` does; a
    plain float32 product differs from it by a few ulps, enough for a threshold placed
    between two close scores to accept an impostor the calibration counted as rejected.
    """
    embeddings = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    genuine, impostor = [], []
    for start in range(0, len(labels), block):
        stop = min(start + block, len(labels))
        scores = exact_scores(embeddings[start:stop], embeddings[start + 1:].T)
        # row r (image start + r) pairs with the images after it: columns >= r
        r, c = np.nonzero(np.triu(np.ones(scores.shape, bool), k=0))
        same = labels[start + r] == labels[start + 1 + c]
        flat = scores[r, c]
        genuine.append(flat[same])
        impostor.append(flat[~same])
    if not genuine:
        return np.empty(0, np.float32), np.empty(0, np.float32)
    return np.concatenate(genuine), np.concatenate(impostor)
