import numpy as np
import pytest

from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.matching import MaxScore, MeanOfTopK
from siamese_edge.runtime.search_index import FaissFlatIndex, SearchIndex


def unit(rng, n, d=16):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_top(vectors, ids, queries, k):
    scores = queries @ vectors.T
    return [ids[np.lexsort((ids, -row))][:k].tolist() for row in scores]


@pytest.mark.parametrize("n,batch,chunk", [(1, 1, 4), (7, 3, 4), (5000, 1, 512),
                                           (5000, 9, 256), (300, 64, 8192)])
def test_search_equals_brute_force(n, batch, chunk):
    rng = np.random.default_rng(n + batch)
    vectors, queries = unit(rng, n), unit(rng, batch)
    index = SearchIndex(16, chunk=chunk)
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    index.add(vectors, ids, ids % 7)
    for k in (1, 5, n + 3):
        hits = index.search(queries, k)
        expected = reference_top(vectors, ids, queries, k)
        got = [row[row >= 0].tolist() for row in hits.ids]
        if k <= 5:
            assert got == expected
        else:  # a full ranking: near-ties may swap by one float32 rounding
            reference = np.sort(queries @ vectors.T, axis=1)[:, ::-1][:, :k]
            np.testing.assert_allclose(hits.scores[:, :n], reference, atol=1e-6)
            assert [sorted(g) for g in got] == [sorted(e) for e in expected]
        assert np.all(np.diff(hits.scores[:, :min(k, n)], axis=1) <= 0)
        assert (hits.ids[:, n:] == -1).all()


def test_incremental_add_remove_matches_rebuild():
    rng = np.random.default_rng(1)
    index = SearchIndex(16, chunk=64)
    kept = {}
    next_id = 0
    for step in range(30):
        n = int(rng.integers(1, 40))
        vectors = unit(rng, n)
        ids = np.arange(next_id, next_id + n)
        next_id += n
        index.add(vectors, ids, ids % 5)
        kept.update(zip(ids.tolist(), vectors))
        gone = rng.choice(list(kept), size=min(len(kept), int(rng.integers(0, 20))),
                          replace=False)
        assert index.remove(gone) == len(gone)
        for i in gone.tolist():
            del kept[i]
        assert index.remove(gone) == 0
    ids = np.array(sorted(kept))
    vectors = np.stack([kept[i] for i in ids])
    queries = unit(rng, 4)
    assert sorted(index.ids.tolist()) == ids.tolist() and len(index) == len(ids)
    hits = index.search(queries, 10)
    assert [row.tolist() for row in hits.ids] == reference_top(vectors, ids, queries, 10)
    assert index.remove_label(0) == int(np.sum(ids % 5 == 0))


def test_bad_vectors_and_queries_are_refused():
    index = SearchIndex(4)
    with pytest.raises(InvalidInputError):
        index.add(np.full((1, 4), np.nan, np.float32), [1], [1])
    with pytest.raises(InvalidInputError):
        index.add(np.ones((1, 3), np.float32), [1], [1])
    index.add(np.eye(4, dtype=np.float32), [1, 2, 3, 4], [1, 1, 2, 2])
    with pytest.raises(InvalidInputError):
        index.add(np.eye(4, dtype=np.float32)[:1], [1], [1])
    with pytest.raises(InvalidInputError):
        index.search(np.array([[np.inf, 0, 0, 0]], np.float32), 1)


@pytest.mark.parametrize("aggregation", [MaxScore(), MeanOfTopK(2), MeanOfTopK(5)])
def test_identity_ranking_matches_plain_loops(aggregation):
    rng = np.random.default_rng(3)
    n = 400
    vectors = unit(rng, n)
    labels = rng.integers(0, 30, n)
    index = SearchIndex(16, chunk=50)
    index.add(vectors, np.arange(n), labels)
    queries = unit(rng, 6)
    for q, ranked in zip(queries, aggregation.rank(index, queries, 4)):
        per_label = {}
        for label in np.unique(labels):
            scores = sorted((vectors[labels == label] @ q).tolist(), reverse=True)
            m = 1 if isinstance(aggregation, MaxScore) else aggregation.k
            per_label[int(label)] = float(np.mean(scores[:m]))
        expected = sorted(per_label, key=lambda lab: (-per_label[lab], lab))[:4]
        assert [label for label, _ in ranked] == expected
        for label, score in ranked:
            assert score == pytest.approx(per_label[label], abs=1e-5)


def test_max_ranking_digs_deeper_when_one_identity_crowds_the_top():
    rng = np.random.default_rng(4)
    crowd = unit(rng, 1, 16) + 0.01 * rng.standard_normal((50, 16)).astype(np.float32)
    others = unit(rng, 3, 16)
    index = SearchIndex(16)
    index.add(np.vstack([crowd / np.linalg.norm(crowd, axis=1, keepdims=True), others]),
              np.arange(53), [0] * 50 + [1, 2, 3])
    ranked = MaxScore().rank(index, crowd[:1], 3)[0]
    assert len(ranked) == 3 and ranked[0][0] == 0
    # in a batch where only one query is crowded, every query still gets k identities
    batch = np.vstack([crowd[:1], others[:1]])
    assert [len(r) for r in MaxScore().rank(index, batch, 3)] == [3, 3]


def test_faiss_index_answers_like_the_exact_one():
    pytest.importorskip("faiss", reason="faiss-cpu not installed")
    rng = np.random.default_rng(5)
    vectors, queries = unit(rng, 500), unit(rng, 3)
    exact, other = SearchIndex(16), FaissFlatIndex(16)
    for index in (exact, other):
        index.add(vectors, np.arange(500), np.arange(500) // 3)
        index.remove([0, 7])
    assert np.array_equal(exact.search(queries, 5).ids, other.search(queries, 5).ids)


@pytest.mark.parametrize("k", [0, -1])
def test_no_or_a_negative_k_returns_empty_hits(k):
    index = SearchIndex(2)
    index.add(np.eye(2, dtype=np.float32), ids=[1, 2], labels=[1, 2])
    hits = index.search(np.ones((3, 2), np.float32), k)
    assert hits.scores.shape == hits.ids.shape == hits.labels.shape == (3, 0)
