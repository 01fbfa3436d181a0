import numpy as np

from siamese_edge.runtime.gallery import GalleryMatrix
from siamese_edge.runtime.matching import identity_scores, top_k


def test_identity_scores_and_top_k_match_brute_force():
    rng = np.random.default_rng(0)
    owner = np.sort(rng.integers(0, 6, 40))
    owner = np.unique(owner, return_inverse=True)[1]
    names = [f"id{i}" for i in range(owner.max() + 1)]
    emb = rng.normal(size=(40, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    starts = np.array([np.argmax(owner == i) for i in range(len(names))])
    matrix = GalleryMatrix(emb, owner, names, starts)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    scores = identity_scores(queries, matrix)
    for q in range(7):
        for i in range(len(names)):
            expected = max(float(queries[q] @ emb[t]) for t in range(40) if owner[t] == i)
            assert abs(scores[q, i] - expected) < 1e-5
    for q, ranked in enumerate(top_k(scores, names, 3)):
        best = np.argsort(-scores[q])[:3]
        assert [c.identity for c in ranked] == [names[j] for j in best]
    assert len(top_k(scores, names, 100)[0]) == len(names)
