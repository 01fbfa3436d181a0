import numpy as np
import pytest

from siamese_edge import error_breakdown as eb
from siamese_edge.error_breakdown import error_breakdown
from siamese_edge.evaluation import evaluate_embeddings


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def naive(embeddings, labels, threshold):
    """Every pair by loops: false rejects per label, false accepts per label pair."""
    rejects, accepts = {}, {}
    n = len(labels)
    for i in range(n):
        for j in range(i + 1, n):
            s = float(embeddings[i] @ embeddings[j])
            a, b = sorted((labels[i], labels[j]))
            if a == b and s < threshold:
                rejects[a] = rejects.get(a, 0) + 1
            elif a != b and s >= threshold:
                accepts[(a, b)] = accepts.get((a, b), 0) + 1
    return rejects, accepts


@pytest.mark.parametrize("block", [7, 512])
def test_counts_match_every_pair_counted_by_hand(monkeypatch, block):
    monkeypatch.setattr(eb, "BLOCK_ROWS", block)  # blocks that cut identities apart
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 60)
    e = unit(np.eye(8)[labels] + rng.normal(0, 0.6, (60, 8)))
    rejects, accepts = naive(e, labels, 0.5)
    out = error_breakdown(e, labels, 0.5, top=100)
    assert {int(r.identity): r.false_rejects for r in out.false_rejects} == rejects
    assert {(int(p.first), int(p.second)): p.false_accepts for p in out.false_accepts} == accepts
    counts = np.bincount(labels)
    for r in out.false_rejects:
        k = int(r.identity)
        assert r.genuine_pairs == counts[k] * (counts[k] - 1) // 2
        assert r.frr == pytest.approx(r.false_rejects / r.genuine_pairs)
    for p in out.false_accepts:
        assert p.impostor_pairs == counts[int(p.first)] * counts[int(p.second)]
    assert [r.frr for r in out.false_rejects] == sorted(r.frr for r in out.false_rejects)[::-1]
    assert [p.far for p in out.false_accepts] == sorted(p.far for p in out.false_accepts)[::-1]


def test_names_the_confused_pair_and_the_scattered_identity():
    rng = np.random.default_rng(1)
    shared = np.eye(6)[0]
    labels = np.repeat([0, 1, 2, 3], 20)
    centres = np.stack([shared, shared + 0.05 * np.eye(6)[1], np.eye(6)[2], np.eye(6)[3]])
    spread = np.array([0.02, 0.02, 0.02, 0.5])[labels][:, None]  # identity 3 is scattered
    e = unit(centres[labels] + spread * rng.normal(size=(80, 6)))
    out = error_breakdown(e, labels, 0.9, names=["shirt", "bag", "boot", "sneaker"], top=2)
    assert out.threshold == 0.9
    assert (out.false_accepts[0].first, out.false_accepts[0].second) == ("shirt", "bag")
    assert out.false_accepts[0].far == 1.0
    assert out.false_rejects[0].identity == "sneaker"
    assert all(r.identity != "boot" for r in out.false_rejects)  # no errors, not listed
    assert len(out.false_accepts) <= 2 and len(out.false_rejects) <= 2


def test_a_threshold_without_errors_lists_nothing():
    labels = np.repeat([0, 1, 2], 5)
    e = unit(np.eye(3)[labels])
    out = error_breakdown(e, labels, 0.5)
    assert out.false_rejects == [] and out.false_accepts == []


def test_the_evaluation_reports_errors_at_its_operating_threshold():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 40)
    e = unit(np.eye(16)[labels] + rng.normal(0, 0.4, (160, 16)))
    report, _, _ = evaluate_embeddings(e, labels, fars=(1e-2,), target_far=1e-2,
                                       names=["a", "b", "c", "d"])
    assert report.errors.basis == "FAR 0.01"
    assert report.errors.threshold == report.threshold_at_target
    few_images = np.r_[0:6, 40:46]  # 36 impostor pairs: FAR 1e-4 is not measurable
    few, _, _ = evaluate_embeddings(e[few_images], labels[few_images], target_far=1e-4)
    assert few.errors.basis == "EER" and few.errors.threshold == few.eer_threshold
    assert {r.identity for r in report.errors.false_rejects} <= {"a", "b", "c", "d"}
    assert report.to_dict()["errors"]["basis"] == "FAR 0.01"


def test_scores_are_compared_with_the_threshold_in_float64():
    # a genuine and an impostor pair both score exactly x; the threshold lies a quarter of a
    # float32 step above x, where float32 would round it back onto x and accept both
    x = np.float32(0.7)
    t = float(x) + float(np.spacing(x)) / 4
    assert np.float32(t) == x and float(x) < t
    e = np.array([[1, 0], [x, 0], [x, 0]], np.float32)
    out = error_breakdown(e, np.array([0, 0, 1]), t, top=10)
    rejects, accepts = naive(e, [0, 0, 1], t)  # the report's rule: float64 scores >= t
    assert {int(r.identity): r.false_rejects for r in out.false_rejects} == rejects == {0: 1}
    assert {(int(p.first), int(p.second)): p.false_accepts
            for p in out.false_accepts} == accepts == {}
