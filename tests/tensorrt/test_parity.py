"""Decision parity: flips and TAR change at the threshold, checked against a plain loop."""

from __future__ import annotations

import numpy as np

from siamese_edge.runtime.embedder import l2_normalize
from siamese_edge.tensorrt.parity import DEFAULT_BOUNDS, compare_embeddings


def _data(seed=0, n=40, d=16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, (4, d))
    labels = [str(i % 4) for i in range(n)]
    emb = l2_normalize(centers[[i % 4 for i in range(n)]] + rng.normal(0, 0.6, (n, d)))
    return emb, labels


def test_identical_embeddings_pass_with_zero_flips():
    emb, labels = _data()
    report = compare_embeddings(emb, emb.copy(), 0.5, labels, "fp32")
    assert report.passed and report.flip_fraction == 0 and report.tar_change == 0
    assert report.pairs == 40 * 39 // 2


def test_flip_fraction_and_tar_match_a_plain_loop():
    emb, labels = _data()
    noisy = l2_normalize(emb + np.random.default_rng(1).normal(0, 0.05, emb.shape))
    threshold = 0.5
    report = compare_embeddings(emb, noisy, threshold, labels, "fp16")
    flips = genuine = tar_a = tar_b = pairs = 0
    for i in range(len(emb)):
        for j in range(i + 1, len(emb)):
            a, b = emb[i] @ emb[j] >= threshold, noisy[i] @ noisy[j] >= threshold
            pairs += 1
            flips += a != b
            if labels[i] == labels[j]:
                genuine += 1
                tar_a += a
                tar_b += b
    assert report.flip_fraction == flips / pairs
    assert np.isclose(report.tar_change, (tar_b - tar_a) / genuine)


def test_decisions_that_flip_beyond_the_bound_fail():
    emb, labels = _data()
    drifted = l2_normalize(emb + np.random.default_rng(2).normal(0, 0.5, emb.shape))
    report = compare_embeddings(emb, drifted, 0.5, labels, "int8")
    assert not report.passed
    assert any("flip" in f for f in report.failures)
    assert "FAILED" in report.summary()


def test_bounds_loosen_with_precision():
    assert DEFAULT_BOUNDS["fp32"].max_abs_diff < DEFAULT_BOUNDS["fp16"].max_abs_diff \
        < DEFAULT_BOUNDS["int8"].max_abs_diff
