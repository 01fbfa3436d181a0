"""Where a threshold's errors fall: which identities are falsely rejected, which pairs of
identities are confused. numpy only, so it runs on the deployment runtime.

An EER or a TAR says how often a model errs; this says on whom. Identities that a model
never saw often fail unevenly: on Fashion-MNIST's unseen classes 6–9 (default model, EER
threshold) shirt–bag pairs are accepted 57 % of the time and sneaker–ankle boot pairs 31 %,
while shirt–sneaker pairs almost never are — a gallery of shirts and bags needs another
model or a stricter threshold, one of sneakers and shirts does not.

Pairs are the same as the evaluation's: every unordered pair ``i < j`` of the (sub)set, a
pair accepted when ``score >= threshold``. Scores are computed in row blocks, so memory stays
at a block of rows, not the full square of scores.

Entries are ranked by rate, then count. A rate over few pairs is noisy (two identities of
two images each make four impostor pairs), so each entry carries its counts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siamese_edge.runtime.search_index import exact_scores

BLOCK_ROWS = 512


@dataclass(frozen=True)
class IdentityRejects:
    identity: str
    genuine_pairs: int
    false_rejects: int
    frr: float


@dataclass(frozen=True)
class ConfusedPair:
    first: str
    second: str
    impostor_pairs: int
    false_accepts: int
    far: float


@dataclass(frozen=True)
class ErrorBreakdown:
    """The worst identities and identity pairs at ``threshold``, worst first (at most
    ``top`` of each; only those with at least one error)."""

    threshold: float
    basis: str  # how the threshold was chosen, e.g. "FAR 1e-3" or "EER"
    false_rejects: list[IdentityRejects]
    false_accepts: list[ConfusedPair]


def error_breakdown(embeddings: np.ndarray, labels: np.ndarray, threshold: float,
                    names: Sequence[str] | None = None, top: int = 5,
                    basis: str = "") -> ErrorBreakdown:
    """Count false rejects per identity and false accepts per identity pair at ``threshold``.

    Args:
        embeddings: ``(N, D)`` L2-normalised embeddings.
        labels: ``(N,)`` identity labels.
        names: a name per label value (``names[label]``); default ``str(label)``.
    """
    embeddings = np.asarray(embeddings, np.float32)
    # Scores are compared in float64, as the report's FAR and the verifier compare them:
    # NumPy 2 compares float32 scores with a Python float in float32, which rounds a
    # threshold just above a score onto it and counts a false accept the report does not.
    threshold = float(threshold)
    classes, index = np.unique(np.asarray(labels), return_inverse=True)
    n_classes = len(classes)
    rejects = np.zeros(n_classes, np.int64)
    accepted_pairs: list[np.ndarray] = []
    for start in range(0, len(index), BLOCK_ROWS):
        rows = slice(start, min(start + BLOCK_ROWS, len(index)))
        scores = exact_scores(embeddings[rows], embeddings.T)  # as the runtime scores
        i, j = np.nonzero(np.triu(np.ones_like(scores, bool), k=start + 1))
        li, lj = index[rows][i], index[j]
        s = scores[i, j].astype(np.float64)  # compared in float64: see ``threshold`` above
        same = li == lj
        rejects += np.bincount(li[same & (s < threshold)], minlength=n_classes)
        wrong = ~same & (s >= threshold)
        low, high = np.minimum(li[wrong], lj[wrong]), np.maximum(li[wrong], lj[wrong])
        accepted_pairs.append(low * n_classes + high)
    counts = np.bincount(index, minlength=n_classes)

    def name(k: int) -> str:
        label = classes[k]
        return str(names[int(label)]) if names is not None else str(label)

    genuine = counts * (counts - 1) // 2
    frr = np.divide(rejects, genuine, out=np.zeros(n_classes), where=genuine > 0)
    # worst first: highest rate, then most errors, then label order (lexsort: last key first)
    ranked = np.lexsort((np.arange(n_classes), -rejects, -frr))
    worst = ranked[rejects[ranked] > 0][:top]
    false_rejects = [IdentityRejects(name(k), int(genuine[k]), int(rejects[k]), float(frr[k]))
                     for k in worst]
    pair_ids, accepts = np.unique(np.concatenate(accepted_pairs), return_counts=True)
    firsts, seconds = pair_ids // n_classes, pair_ids % n_classes
    impostors = counts[firsts] * counts[seconds]
    far = accepts / impostors
    order = np.lexsort((pair_ids, -accepts, -far))[:top]
    false_accepts = [ConfusedPair(name(firsts[m]), name(seconds[m]), int(impostors[m]),
                                  int(accepts[m]), float(far[m])) for m in order]
    return ErrorBreakdown(float(threshold), basis, false_rejects, false_accepts)
