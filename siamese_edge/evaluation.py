"""Verification-grade evaluation of embeddings: ROC, EER, TAR@FAR, rank-1, N-way 1-shot.

numpy only, so it runs on the deployment runtime. All scores are cosine similarities of
L2-normalised embeddings; a pair is accepted when ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from siamese_edge.confidence import ConfidenceIntervals, identity_bootstrap, \
    listed_pairs_bootstrap
from siamese_edge.error_breakdown import ErrorBreakdown, error_breakdown
from siamese_edge.metrics import equal_error_rate, pair_scores, roc_auc, threshold_at_far

DEFAULT_FARS = (1e-2, 1e-3, 1e-4)
#: a FAR is reported only when at least this many impostor pairs back it (10 false accepts)
MIN_FALSE_ACCEPTS = 10
MAX_IMAGES_FOR_PAIRS = 5000


@dataclass
class EvaluationReport:
    """All numbers of one evaluation; ``to_dict()`` is the ``--json`` output."""

    num_images: int
    num_identities: int
    genuine_pairs: int
    impostor_pairs: int
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[str, float | None]
    far_notes: dict[str, str]
    target_far: float
    threshold_at_target: float | None
    tar_at_target: float | None
    rank1: float | None
    n_way: int
    n_way_one_shot: float | None
    #: the worst identities and identity pairs at the target-FAR threshold (the EER
    #: threshold when the target FAR is not measurable)
    errors: ErrorBreakdown | None = None
    #: intervals from resampling identities (``bootstrap`` replicates; None when 0)
    confidence: ConfidenceIntervals | None = None
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def far_key(far: float) -> str:
    """``1e-3`` style for round FARs; any other FAR keeps its digits, so keys never collide."""
    key = f"{far:.0e}".replace("e-0", "e-")
    return key if float(key) == far else f"{far:g}"


def evaluate_embeddings(embeddings: np.ndarray, labels: np.ndarray,
                        fars: tuple[float, ...] = DEFAULT_FARS, target_far: float = 1e-3,
                        n_way: int = 5, trials: int = 2000, seed: int = 0,
                        names: Sequence[str] | None = None, bootstrap: int = 0,
                        level: float = 0.95,
                        ) -> tuple[EvaluationReport, np.ndarray, np.ndarray]:
    """Evaluate embeddings of labelled images.

    Pairs: every unordered pair of (at most 5,000, stratified) images. Rank-1: one random
    template per identity enrolled, every other image a probe, averaged over 5 draws.
    N-way 1-shot: ``trials`` episodes of N identities with one support image each.
    ``names``: a name per label value, for the error breakdown. ``bootstrap``: replicates of
    the bootstrap over identities giving ``level`` confidence intervals (0: none).

    Returns:
        the report, and the genuine and impostor scores (for plots).
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    embeddings = _finite_embeddings(embeddings)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("evaluation needs images of at least two identities")
    subset = _stratified_subset(labels, MAX_IMAGES_FOR_PAIRS, rng)
    genuine, impostor = pair_scores(embeddings[subset], labels[subset])
    if genuine.size == 0:
        raise ValueError("evaluation needs at least two images of one identity")
    n = min(n_way, len(classes))
    report = _pair_report(genuine, impostor, fars, target_far, len(labels), len(classes),
                          rank1=rank1_accuracy(embeddings, labels, rng), n_way=n,
                          n_way_one_shot=n_way_one_shot(embeddings, labels, n, trials, rng))
    operating = _operating_threshold(report)
    report.errors = error_breakdown(
        embeddings[subset], labels[subset], operating, names,
        basis="EER" if report.threshold_at_target is None else f"FAR {target_far:g}")
    if bootstrap:
        measured = _measured_fars(report, fars, target_far)
        report.confidence = identity_bootstrap(
            embeddings[subset], labels[subset], measured, [far_key(f) for f in measured],
            operating, replicates=bootstrap, level=level, seed=seed)
    return report, genuine, impostor


def _finite_embeddings(embeddings: np.ndarray) -> np.ndarray:
    """``embeddings`` as float32, refused when any holds NaN or inf.

    Checked on every image up front: the scores' own check sees only the pairs of the
    (at most 5,000-image) subset, while rank-1 and N-way use every image, and argmax picks
    a NaN score, so a few broken embeddings changed those numbers without a word.
    """
    embeddings = np.asarray(embeddings, np.float32)
    bad = int(np.count_nonzero(~np.isfinite(embeddings).all(axis=-1))) \
        if embeddings.size else 0
    if bad:
        raise ValueError(f"{bad} of {len(embeddings)} images gave non-finite (NaN or inf) "
                         f"embeddings: the model's output for them cannot be scored")
    return embeddings


def _operating_threshold(report: EvaluationReport) -> float:
    """The threshold at the target FAR when it is measurable, else the EER's."""
    t_target = report.threshold_at_target
    return report.eer_threshold if t_target is None else t_target


def _measured_fars(report: EvaluationReport, fars: tuple[float, ...],
                   target_far: float) -> list[float]:
    """The FARs the report could measure, highest first."""
    return [far for far in sorted(set(fars) | {target_far}, reverse=True)
            if report.tar_at_far[far_key(far)] is not None]


def evaluate_listed_pairs(embeddings: np.ndarray, pairs: np.ndarray, labels: np.ndarray,
                          fars: tuple[float, ...] = DEFAULT_FARS, target_far: float = 1e-3,
                          bootstrap: int = 0, level: float = 0.95, seed: int = 0,
                          ) -> tuple[EvaluationReport, np.ndarray, np.ndarray]:
    """Evaluate exactly the listed pairs: a verification protocol (a pairs CSV, as LFW's
    pairs list), not every pair among the identities the list implies.

    ``pairs``: ``(M, 3)`` rows of image index i, image index j, same (1) / different (0).
    ``labels``: each image's identity as the list implies it (components of the genuine
    pairs); ``bootstrap`` replicates resample those identities for ``level`` intervals.
    Rank-1, N-way 1-shot and the error breakdown need named identities, which a pairs list
    does not give: they are left out, and ``extras`` says so.
    """
    pairs = np.asarray(pairs, np.int64)
    labels = np.asarray(labels)
    embeddings = _finite_embeddings(embeddings)
    if pairs.ndim != 2 or pairs.shape[1] != 3 or not len(pairs):
        raise ValueError("no pairs to evaluate")
    # float64 dot products, one per listed pair
    scores = np.einsum("ij,ij->i", embeddings[pairs[:, 0]].astype(np.float64),
                       embeddings[pairs[:, 1]].astype(np.float64))
    same = pairs[:, 2] == 1
    genuine, impostor = scores[same], scores[~same]
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError(f"the pairs list needs genuine and impostor pairs; it has "
                         f"{genuine.size} genuine and {impostor.size} impostor")
    report = _pair_report(genuine, impostor, fars, target_far, len(embeddings),
                          len(np.unique(labels)), rank1=None, n_way=0, n_way_one_shot=None)
    report.extras["protocol"] = "listed pairs"
    report.extras["not_measured"] = ("rank-1, N-way 1-shot and error breakdown: a pairs list "
                                     "names no identities")
    if bootstrap:
        measured = _measured_fars(report, fars, target_far)
        report.confidence = listed_pairs_bootstrap(
            scores, labels[pairs[:, 0]], labels[pairs[:, 1]], same, measured,
            [far_key(f) for f in measured], _operating_threshold(report),
            replicates=bootstrap, level=level, seed=seed)
    return report, genuine, impostor


def _pair_report(genuine: np.ndarray, impostor: np.ndarray, fars: tuple[float, ...],
                 target_far: float, num_images: int, num_identities: int,
                 **identification) -> EvaluationReport:
    """The verification numbers of genuine and impostor scores: AUC, EER, TAR at each FAR
    that enough impostor pairs can measure, and the threshold reaching ``target_far``."""
    eer, eer_t = equal_error_rate(genuine, impostor)
    tars: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for far in sorted(set(fars) | {target_far}, reverse=True):
        needed = int(np.ceil(MIN_FALSE_ACCEPTS / far))
        if impostor.size < needed:
            tars[far_key(far)] = None
            notes[far_key(far)] = (f"needs >= {needed} impostor pairs, have {impostor.size}: "
                                   f"not meaningful")
        else:
            tars[far_key(far)] = threshold_at_far(genuine, impostor, far)[2]
    t_target = tar_target = None
    if tars.get(far_key(target_far)) is not None:
        t_target, _, tar_target = threshold_at_far(genuine, impostor, target_far)
    return EvaluationReport(
        num_images=num_images, num_identities=num_identities, genuine_pairs=int(genuine.size),
        impostor_pairs=int(impostor.size), auc=roc_auc(genuine, impostor), eer=eer,
        eer_threshold=eer_t, tar_at_far=tars, far_notes=notes, target_far=target_far,
        threshold_at_target=t_target, tar_at_target=tar_target, **identification)


def _stratified_subset(labels: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(labels) <= limit:
        return np.arange(len(labels))
    keep = rng.permutation(len(labels))[:limit]
    return np.sort(keep)


def rank1_accuracy(embeddings: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                   draws: int = 5) -> float | None:
    """Closed-set identification with one enrolled template per identity."""
    classes = np.unique(labels)
    members = [np.nonzero(labels == c)[0] for c in classes]
    if min(len(m) for m in members) < 2:
        return None
    accuracies = []
    for _ in range(draws):
        templates = np.array([rng.choice(m) for m in members])
        probes = np.setdiff1d(np.arange(len(labels)), templates)
        scores = embeddings[probes] @ embeddings[templates].T
        accuracies.append(float(np.mean(classes[np.argmax(scores, axis=1)] == labels[probes])))
    return float(np.mean(accuracies))


def n_way_one_shot(embeddings: np.ndarray, labels: np.ndarray, n: int, trials: int,
                   rng: np.random.Generator) -> float | None:
    """Accuracy of picking the right identity among ``n``, each shown once."""
    classes = np.unique(labels)
    members = {c: np.nonzero(labels == c)[0] for c in classes}
    eligible = [c for c in classes if len(members[c]) >= 2]
    if len(eligible) < n or n < 2:
        return None
    correct = 0
    for _ in range(trials):
        chosen = rng.choice(eligible, n, replace=False)
        truth = rng.integers(n)
        supports = []
        for j, c in enumerate(chosen):
            if j == truth:
                support, query = rng.choice(members[c], 2, replace=False)
            else:
                support = rng.choice(members[c])
            supports.append(support)
        scores = embeddings[supports] @ embeddings[query]
        correct += int(np.argmax(scores) == truth)
    return correct / trials
