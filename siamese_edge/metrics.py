"""Verification metrics on similarity scores (higher score = more alike). numpy only.

Scores come in two sets: *genuine* (pairs of the same identity) and *impostor* (different
identities). A decision accepts a pair when ``score >= threshold``.

- FAR(t) (false accept rate) = fraction of impostor scores ``>= t``;
- FRR(t) = fraction of genuine scores ``< t``; TAR = 1 - FRR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

    Among the ROC's operating points, takes the one minimising ``|FAR - FRR|`` and reports
    ``(FAR + FRR) / 2`` there, with a threshold halfway to the next lower score so that small
    numeric noise does not flip decisions at the boundary.
    """
    curve = roc_curve(genuine, impostor)
    frr = 1.0 - curve.tar
    i = int(np.argmin(np.abs(curve.far - frr)))
    eer = float((curve.far[i] + frr[i]) / 2.0)
    return eer, _threshold_between(curve.thresholds, i)


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


def pair_scores(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs cosine scores of L2-normalised embeddings, split into genuine and impostor.

    Uses every unordered pair ``i < j``; callers subsample large sets first.
    """
    embeddings = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels)
    scores = embeddings @ embeddings.T
    iu, ju = np.triu_indices(len(labels), k=1)
    same = labels[iu] == labels[ju]
    flat = scores[iu, ju]
    return flat[same], flat[~same]
