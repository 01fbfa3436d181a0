"""Losses and miners against plain per-sample reference loops."""

import math

import pytest
import torch

from siamese_edge.training.losses import ContrastiveLoss, TripletLoss
from siamese_edge.training.miners import (BatchAllMiner, BatchHardMiner, SemiHardMiner,
                                         pairwise_distances, violating_fraction)


def dist(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def reference_contrastive(e1, e2, same, margin):
    total = 0.0
    for a, b, s in zip(e1.tolist(), e2.tolist(), same.tolist()):
        d = dist(a, b)
        total += s * d * d / 2 + (1 - s) * max(0.0, margin - d) ** 2 / 2
    return total / len(same)


def article_contrastive(e1, e2, y, margin):
    """The article's printed formula: Y = 1 for a DISSIMILAR pair."""
    total = 0.0
    for a, b, yy in zip(e1.tolist(), e2.tolist(), y.tolist()):
        d = dist(a, b)
        total += (1 - yy) * d * d / 2 + yy * max(0.0, margin - d) ** 2 / 2
    return total / len(y)


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
def test_contrastive_matches_reference_and_article_with_flipped_label(margin):
    g = torch.Generator().manual_seed(0)
    e1, e2 = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g) * 0.3
    same = (torch.rand(16, generator=g) > 0.5).float()
    loss = float(ContrastiveLoss(margin)(e1, e2, same))
    assert loss == pytest.approx(reference_contrastive(e1, e2, same, margin), rel=1e-5)
    assert loss == pytest.approx(article_contrastive(e1, e2, 1 - same, margin), rel=1e-5)
    # using the article's Y directly as our label gives a different (wrong) loss
    assert loss != pytest.approx(float(ContrastiveLoss(margin)(e1, e2, 1 - same)), rel=1e-3)


def test_contrastive_pulls_genuine_and_pushes_impostors():
    a = torch.zeros(2, 3, requires_grad=True)
    b = torch.tensor([[0.1, 0.0, 0.0], [0.1, 0.0, 0.0]])
    ContrastiveLoss(1.0)(a, b, torch.tensor([1.0, 0.0])).backward()
    assert a.grad[0, 0] < 0 < a.grad[1, 0]  # genuine moves toward b, impostor away


@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_triplet_matches_reference(margin):
    g = torch.Generator().manual_seed(1)
    a, p, n = (torch.randn(20, 4, generator=g) for _ in range(3))
    ref = [max(0.0, dist(x, y) - dist(x, z) + margin)
           for x, y, z in zip(a.tolist(), p.tolist(), n.tolist())]
    assert float(TripletLoss(margin)(a, p, n)) == pytest.approx(sum(ref) / len(ref), rel=1e-5)
    active = [r for r in ref if r > 0]
    assert float(TripletLoss(margin, "mean_active")(a, p, n)) == pytest.approx(
        sum(active) / len(active), rel=1e-5)


def brute_force_triplets(e, labels):
    d = torch.cdist(e, e)
    n = len(labels)
    for a in range(n):
        for p in range(n):
            if p != a and labels[p] == labels[a]:
                for q in range(n):
                    if labels[q] != labels[a]:
                        yield a, p, q, d


def test_batch_hard_miner_matches_brute_force():
    g = torch.Generator().manual_seed(2)
    e = torch.randn(12, 3, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    a, p, n = BatchHardMiner()(e, labels)
    d = torch.cdist(e, e)
    assert a.tolist() == list(range(12))
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        positives = [j for j in range(12) if j != ai and labels[j] == labels[ai]]
        negatives = [j for j in range(12) if labels[j] != labels[ai]]
        assert d[ai, pi] == pytest.approx(max(float(d[ai, j]) for j in positives), abs=1e-5)
        assert d[ai, ni] == pytest.approx(min(float(d[ai, j]) for j in negatives), abs=1e-5)


def test_semi_hard_and_batch_all_miners_match_brute_force():
    g = torch.Generator().manual_seed(3)
    e = torch.randn(9, 2, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    valid = {(a, p, q) for a, p, q, _ in brute_force_triplets(e, labels)}
    a, p, n = BatchAllMiner()(e, labels)
    assert set(zip(a.tolist(), p.tolist(), n.tolist())) == valid
    margin = 0.5
    a, p, n = SemiHardMiner(margin)(e, labels)
    d = torch.cdist(e, e)
    for ai, pi, ni in zip(a.tolist(), p.tolist(), n.tolist()):
        candidates = [q for (x, y, q) in valid if (x, y) == (ai, pi)
                      and d[ai, pi] < d[ai, q] < d[ai, pi] + margin]
        assert ni in candidates
        assert d[ai, ni] == pytest.approx(min(float(d[ai, q]) for q in candidates), abs=1e-5)
    # pairs with no semi-hard negative are dropped, the others kept
    expected_pairs = {(x, y) for (x, y, q) in valid if d[x, y] < d[x, q] < d[x, y] + margin}
    assert set(zip(a.tolist(), p.tolist())) == expected_pairs


def test_pairwise_distances_are_exact_symmetric_and_zero_on_the_diagonal():
    # above 25 rows torch.cdist switches to |a|²+|b|²−2a·b, ~5e-4 off where d = 0
    g = torch.Generator().manual_seed(4)
    e = torch.nn.functional.normalize(torch.randn(40, 16, generator=g), dim=1)
    e[1] = e[0]  # an image drawn twice into a P×K batch
    e.requires_grad_(True)
    d = pairwise_distances(e)
    rows = e.tolist()
    reference = torch.tensor([[dist(x, y) for y in rows] for x in rows])
    assert torch.allclose(d, reference, atol=1e-6)
    assert torch.equal(d, d.T)
    assert torch.all(d.diagonal() == 0) and d[0, 1] == 0
    d.sum().backward()
    assert torch.isfinite(e.grad).all()


def test_semi_hard_miner_sees_a_near_duplicate_negative_of_a_duplicate_pair():
    g = torch.Generator().manual_seed(1)
    e = torch.nn.functional.normalize(torch.randn(32, 16, generator=g), dim=1)
    labels = torch.arange(32) // 4
    e[0] = e[1]  # anchor 0 and positive 1: the same image, d(a, p) = 0
    e[4] = torch.nn.functional.normalize(e[1] + 1e-4 * torch.randn(16, generator=g), dim=0)
    assert 0 < dist(e[0].tolist(), e[4].tolist()) < 0.2  # semi-hard for the pair (0, 1)
    a, p, n = SemiHardMiner(0.2)(e, labels)
    mined = {(x, y): z for x, y, z in zip(a.tolist(), p.tolist(), n.tolist())}
    assert mined.get((0, 1)) == 4


def test_violating_fraction_counts_all_valid_triplets_against_a_loop():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3])  # identity 3 has no positive
    e = torch.nn.functional.normalize(torch.randn(9, 5), dim=1)
    d = torch.cdist(e.double(), e.double())
    hits = total = 0
    for a in range(9):
        for p in range(9):
            for n in range(9):
                if p != a and labels[p] == labels[a] and labels[n] != labels[a]:
                    total += 1
                    hits += bool(d[a, p] - d[a, n] + 0.3 > 0)
    assert violating_fraction(e, labels, 0.3) == pytest.approx(hits / total)
    collapsed = torch.ones(9, 5) / 5 ** 0.5  # every distance 0: every triplet violates
    assert violating_fraction(collapsed, labels, 0.3) == 1.0
    apart = torch.eye(9)[labels]  # identities at distance sqrt(2), duplicates at 0
    assert violating_fraction(apart, labels, 0.3) == 0.0
    assert violating_fraction(e, torch.zeros(9, dtype=torch.long), 0.3) == 0.0  # no triplet
