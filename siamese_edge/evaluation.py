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
from siamese_edge.runtime.search_index import exact_row_scores, exact_scores

DEFAULT_FARS = (1e-2, 1e-3, 1e-4)
#: a FAR is reported only when at least this many impostor pairs back it (10 false accepts)
MIN_FALSE_ACCEPTS = 10
MAX_IMAGES_FOR_PAIRS = 5000
#: rank-1 draws of one template per identity, averaged: which image is the template moves
#: one draw's accuracy a lot (0.805–0.841 over seeds for the shipped model with 5 draws,
#: 0.819–0.829 with 50)
RANK1_DRAWS = 20
PROBE_BLOCK = 4096
#: float32 scores this close to a probe's best are scored again exactly before ties count
NEAR_TIE = 1e-5


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

    def operating_threshold(self) -> float:
        """The threshold at the target FAR when it is measurable, else the EER's."""
        return self.eer_threshold if self.threshold_at_target is None \
            else self.threshold_at_target


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
    template per identity enrolled, every other image a probe, averaged over 20 draws.
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
    operating = report.operating_threshold()
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
    # one score per listed pair, as the runtime (``compare --pairs``, ``verify``) scores it.
    # Unrounded float64, a threshold could fall between two scores that the runtime rounds
    # to one value, and accept an impostor it counted out
    scores = exact_row_scores(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])
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
            [far_key(f) for f in measured], report.operating_threshold(),
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
    """At most ``limit`` image indices (sorted), each identity's share as in ``labels``.

    Every identity keeps at least two images (one if it has one), so none loses its genuine
    pairs; a plain random draw dropped small identities entirely (8 of 201 in a set of one
    large and 200 five-image identities). Shares are rounded by largest remainder; when the
    identities outnumber what two images each allows, a random set of them keeps two each.
    """
    n = len(labels)
    if n <= limit:
        return np.arange(n)
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = _quotas(counts, limit, rng)
    # a random order within each identity, then its first ``quota`` images
    order = np.lexsort((rng.random(n), codes))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[codes[order]]
    return np.sort(order[rank < quota[codes[order]]])


def _quotas(counts: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Images to keep per identity: ``limit`` in all, proportional, at least ``min(2, count)``."""
    least = np.minimum(counts, 2)
    if least.sum() >= limit:  # too many identities for two images each
        quota = np.zeros_like(counts)
        left = limit
        for k in rng.permutation(len(counts)):
            quota[k] = min(least[k], left)
            left -= quota[k]
            if not left:
                break
        return quota
    share = counts * (limit / counts.sum())
    quota = np.maximum(np.floor(share).astype(np.int64), least)
    tiebreak = rng.random(len(counts))
    while quota.sum() > limit:  # raised to the least: take back where most over the share
        over = np.nonzero(quota > least)[0]
        over = over[np.lexsort((tiebreak[over], -(quota[over] - share[over])))]
        quota[over[:quota.sum() - limit]] -= 1
    short = limit - quota.sum()
    if short:  # the largest remainders get one more (never past their count: share < count)
        open_ = np.nonzero((quota < counts) & (quota == np.floor(share)))[0]
        open_ = open_[np.lexsort((tiebreak[open_], -(share[open_] - quota[open_])))]
        quota[open_[:short]] += 1
    return quota


def rank1_accuracy(embeddings: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                   draws: int = RANK1_DRAWS) -> float | None:
    """Closed-set identification with one enrolled template per identity.

    Every identity is enrolled; the probes are the other images, so an identity with one
    image is a template only (a distractor). A probe whose best scores tie between ``k``
    templates, the right one among them, counts ``1/k``: ``argmax`` alone credited the tie to
    the lowest label (a collapsed model scored 0.98 on one large identity and two small ones).
    None when no identity has a second image to probe with.
    """
    classes = np.unique(labels)
    members = [np.nonzero(labels == c)[0] for c in classes]
    if max(len(m) for m in members) < 2:
        return None
    accuracies = []
    truth_column = np.searchsorted(classes, labels)  # each image's identity's template
    for _ in range(draws):
        templates = np.array([rng.choice(m) for m in members])
        probes = np.setdiff1d(np.arange(len(labels)), templates)
        credit = 0.0
        gallery = np.ascontiguousarray(embeddings[templates].T)
        for start in range(0, len(probes), PROBE_BLOCK):  # bounded memory on large sets
            block = probes[start:start + PROBE_BLOCK]
            # float32 to rank (fast on thousands of identities); rows whose best is within
            # float32 noise of another column again exactly, so that equal scores tie:
            # float32 rounds one column differently by its position (up to 1e-6)
            scores = embeddings[block] @ gallery
            best = scores.max(axis=1)
            near = np.count_nonzero(scores >= best[:, None] - NEAR_TIE, axis=1) > 1
            if near.any():
                rows = np.nonzero(near)[0]
                scores[rows] = exact_scores(embeddings[block[rows]], gallery)
                best[rows] = scores[rows].max(axis=1)
            own = scores[np.arange(len(block)), truth_column[block]]
            tied = np.count_nonzero(scores == best[:, None], axis=1)
            credit += float(np.sum((own == best) / tied))
        accuracies.append(credit / len(probes))
    return float(np.mean(accuracies))


def n_way_one_shot(embeddings: np.ndarray, labels: np.ndarray, n: int, trials: int,
                   rng: np.random.Generator) -> float | None:
    """Accuracy of picking the right identity among ``n``, each shown once.

    The right identity needs a second image to query with; the ``n - 1`` others may be any
    identity, so identities with one image serve as distractors rather than ending the
    measurement. None when no identity has two images or fewer than ``n`` identities exist.
    """
    classes = np.unique(labels)
    members = {c: np.nonzero(labels == c)[0] for c in classes}
    eligible = [c for c in classes if len(members[c]) >= 2]
    if not eligible or len(classes) < n or n < 2:
        return None
    correct = 0
    for _ in range(trials):
        true_class = eligible[rng.integers(len(eligible))]
        others = rng.choice([c for c in classes if c != true_class], n - 1, replace=False)
        truth = rng.integers(n)
        chosen = list(others)  # a list: np.insert would cut a longer name to others' dtype
        chosen.insert(truth, true_class)
        support, query = rng.choice(members[true_class], 2, replace=False)
        supports = [support if j == truth else rng.choice(members[c])
                    for j, c in enumerate(chosen)]
        scores = exact_scores(embeddings[supports], embeddings[query][:, None])[:, 0]
        correct += int(np.argmax(scores) == truth)
    return correct / trials
