import numpy as np
import pytest

from siamese_edge.confidence import _curve, _metrics, _pairs, identity_bootstrap
from siamese_edge.metrics import equal_error_rate, pair_scores, roc_auc, threshold_at_far


def identities(n_ids=12, per_id=8, spread=0.6, seed=0, dim=8):
    """Near-unit embeddings around one centre per identity, in steps of 1/8: every score is
    exact in float32, however it is summed, and ties are common."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    labels = np.repeat(np.arange(n_ids), per_id)
    e = centres[labels] + rng.normal(0, spread, (len(labels), dim))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return (np.round(e * 8) / 8).astype(np.float32), labels


def test_one_draw_of_each_identity_reproduces_the_plain_metrics():
    e, labels = identities()
    pairs = _pairs(e, labels, np.random.default_rng(0), max_pairs=10**9)
    far, tar = _curve(pairs, np.ones(12, np.int64))
    auc, eer, tar_at = _metrics(far, tar, [1e-2], None)
    genuine, impostor = pair_scores(e, labels)
    assert auc == pytest.approx(roc_auc(genuine, impostor), abs=1e-12)
    assert eer == pytest.approx(equal_error_rate(genuine, impostor)[0], abs=1e-12)
    assert tar_at == pytest.approx(threshold_at_far(genuine, impostor, 1e-2)[2], abs=1e-12)


def test_a_resample_weighs_pairs_like_the_resampled_data_set():
    e, labels = identities(n_ids=5, per_id=6)
    counts = np.array([2, 0, 1, 3, 0])
    # the reference: copy each identity as often as it was drawn, each copy its own identity,
    # and leave out pairs between copies of one identity (they are neither kind)
    copies, copy_labels, origin = [], [], []
    for identity, m in enumerate(counts):
        for k in range(m):
            copies.append(e[labels == identity])
            copy_labels += [10 * identity + k] * 6
            origin += [identity] * 6
    x, y, o = np.concatenate(copies), np.array(copy_labels), np.array(origin)
    i, j = np.triu_indices(len(y), k=1)
    s = np.einsum("ij,ij->i", x[i], x[j])
    genuine = s[y[i] == y[j]]
    impostor = s[o[i] != o[j]]
    pairs = _pairs(e, labels, np.random.default_rng(0), max_pairs=10**9)
    auc, eer, tar_at = _metrics(*_curve(pairs, counts), [0.05], None)
    assert auc == pytest.approx(roc_auc(genuine, impostor), abs=1e-9)
    assert eer == pytest.approx(equal_error_rate(genuine, impostor)[0], abs=1e-9)
    assert tar_at == pytest.approx(threshold_at_far(genuine, impostor, 0.05)[2], abs=1e-9)


def test_the_rates_at_a_threshold_count_the_scores_at_or_above_it():
    e, labels = identities(seed=3)
    genuine, impostor = pair_scores(e, labels)
    threshold = float(np.median(genuine))
    ci = identity_bootstrap(e, labels, [], [], threshold=threshold, replicates=2, seed=0)
    assert ci.threshold == threshold
    # the intervals bracket the rates of the data itself only by chance, but their
    # resamples come from the same accepted set: check the set with one draw each
    pairs = _pairs(e, labels, np.random.default_rng(0), max_pairs=10**9)
    groups = int(np.sum(pairs.scores[pairs.group_ends - 1] >= threshold))
    far, tar = _curve(pairs, np.ones(12, np.int64))
    assert far[groups] == pytest.approx(np.mean(impostor >= threshold))
    assert 1 - tar[groups] == pytest.approx(np.mean(genuine < threshold))


def test_separated_identities_have_no_spread():
    e, labels = identities(spread=0.01)
    ci = identity_bootstrap(e, labels, [1e-2], ["1e-2"], replicates=50)
    assert ci.auc == pytest.approx([1.0, 1.0]) and ci.eer == pytest.approx([0.0, 0.0])
    assert ci.tar_at_far["1e-2"] == pytest.approx([1.0, 1.0])


def test_intervals_hold_the_estimate_and_narrow_with_more_identities():
    widths = []
    for n_ids in (8, 80):
        e, labels = identities(n_ids=n_ids, per_id=6, spread=0.9, seed=n_ids, dim=16)
        ci = identity_bootstrap(e, labels, [], [], replicates=300, seed=1)
        genuine, impostor = pair_scores(e, labels)
        assert ci.auc[0] <= roc_auc(genuine, impostor) <= ci.auc[1]
        assert ci.eer[0] <= equal_error_rate(genuine, impostor)[0] <= ci.eer[1]
        widths.append(ci.eer[1] - ci.eer[0])
    assert widths[1] < 0.6 * widths[0]


def test_identities_vary_more_than_pairs_do():
    # half the identities are tight, half loose: resampling identities must see that spread
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 10)
    spread = np.where(labels < 10, 0.2, 1.5)[:, None]
    e = rng.normal(size=(20, 16))[labels] + rng.normal(size=(200, 16)) * spread
    e = (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)
    ci = identity_bootstrap(e, labels, [], [], replicates=300)
    genuine, impostor = pair_scores(e, labels)
    # a bootstrap over pairs would give an EER interval of about +-0.01 for this many pairs
    assert ci.eer[1] - ci.eer[0] > 0.05
    assert ci.eer[0] <= equal_error_rate(genuine, impostor)[0] <= ci.eer[1]


def test_large_sets_are_sampled_by_kind_and_keep_their_scores():
    e, labels = identities(n_ids=6, per_id=100, spread=0.8, seed=5)
    pairs = _pairs(e, labels, np.random.default_rng(0), max_pairs=20_000)
    assert len(pairs.scores) <= 20_000
    assert 0.45 < pairs.genuine.mean() < 0.55  # half of each kind, not 1 in 6 genuine
    assert np.all(np.diff(pairs.scores) <= 0)
    far, tar = _curve(pairs, np.ones(6, np.int64))
    auc = _metrics(far, tar, [], None)[0]
    assert auc == pytest.approx(roc_auc(*pair_scores(e, labels)), abs=0.01)


def test_a_far_the_sample_cannot_measure_gets_no_interval():
    e, labels = identities()
    ci = identity_bootstrap(e, labels, [1e-1, 1e-4], ["1e-1", "1e-4"], replicates=20)
    assert ci.tar_at_far["1e-1"] is not None and ci.tar_at_far["1e-4"] is None
    assert any(note.startswith("TAR at FAR 1e-4: no interval") for note in ci.notes)
    assert not any("FAR 1e-1" in note for note in ci.notes)


def test_the_level_sets_the_percentiles():
    # a 50 % interval is the 25th to 75th percentile: an interval of width 0 (one percentile
    # for both ends) or as wide as the 95 % one would be another level
    e, labels = identities(n_ids=8, per_id=6, spread=0.6, seed=2)
    wide = identity_bootstrap(e, labels, [], [], replicates=200, level=0.95, seed=3)
    half = identity_bootstrap(e, labels, [], [], replicates=200, level=0.5, seed=3)
    for a, b in (wide.auc, half.auc), (wide.eer, half.eer):
        assert a[0] < b[0] < b[1] < a[1]


def test_two_identities_give_no_intervals_and_say_why():
    e, labels = identities(n_ids=2)
    ci = identity_bootstrap(e, labels, [1e-2], ["1e-2"], threshold=0.5)
    assert ci.replicates == 0 and ci.auc is None and ci.far_at_threshold is None
    assert "at least 3 identities" in ci.notes[0]


def test_few_identities_are_flagged_and_bad_settings_refused():
    e, labels = identities(n_ids=4)
    ci = identity_bootstrap(e, labels, [], [], replicates=100)
    assert any("only 4 identities" in note for note in ci.notes)
    with pytest.raises(ValueError):
        identity_bootstrap(e, labels, [], [], replicates=1)
    with pytest.raises(ValueError):
        identity_bootstrap(e, labels, [], [], level=1.0)


def test_a_list_of_every_pair_gives_the_identity_bootstrap_intervals():
    from siamese_edge.confidence import listed_pairs_bootstrap

    e, labels = identities(n_ids=6, per_id=5)
    i, j = np.triu_indices(len(labels), k=1)
    scores = np.einsum("ij,ij->i", e[i].astype(np.float64), e[j].astype(np.float64))
    same = labels[i] == labels[j]
    threshold = float(np.median(scores))
    listed = listed_pairs_bootstrap(scores, labels[i], labels[j], same, [1e-1], ["1e-1"],
                                    threshold, replicates=100, seed=3)
    plain = identity_bootstrap(e, labels, [1e-1], ["1e-1"], threshold, replicates=100, seed=3)
    for key in ("auc", "eer", "far_at_threshold", "frr_at_threshold"):
        assert getattr(listed, key) == pytest.approx(getattr(plain, key)), key
    assert listed.tar_at_far["1e-1"] == pytest.approx(plain.tar_at_far["1e-1"])
    assert listed.replicates == plain.replicates == 100
    assert "genuine pairs" in listed.notes[0]


def test_listed_pairs_weigh_each_pair_by_its_identities_draws():
    from siamese_edge.confidence import listed_pairs_bootstrap

    # identity 0's genuine pair is perfect, identity 1's is the worst score: a resample that
    # draws identity 1 often has a high EER, one without it an EER of 0
    scores = np.array([0.9, 0.1, 0.5, 0.4, 0.3, 0.2])
    first = np.array([0, 1, 0, 0, 1, 2])
    second = np.array([0, 1, 1, 2, 2, 3])
    genuine = first == second
    ci = listed_pairs_bootstrap(scores, first, second, genuine, [], [], replicates=400)
    assert ci.eer[0] == 0.0 and ci.eer[1] >= 0.5
    few = listed_pairs_bootstrap(scores[:2], first[:2], second[:2], genuine[:2], [], [])
    assert few.replicates == 0 and "at least 3 identities" in few.notes[0]


def test_impostor_pairs_are_sampled_in_full_when_one_identity_holds_most_images():
    from siamese_edge.confidence import _sample_pairs

    codes = np.concatenate([np.zeros(4000, np.int64), np.repeat(np.arange(1, 101), 10)])
    np.random.default_rng(0).shuffle(codes)
    i, j = _sample_pairs(codes, np.random.default_rng(1), 200_000)
    genuine = codes[i] == codes[j]
    assert np.count_nonzero(genuine) == np.count_nonzero(~genuine) == 100_000
    assert np.all(i != j)


def test_impostor_pairs_are_sampled_uniformly():
    from siamese_edge.confidence import _sample_pairs

    codes = np.array([0, 0, 0, 0, 0, 1, 1, 2])  # 17 impostor pairs: 10 + 5 + 2
    counts = {}
    rng = np.random.default_rng(0)
    for _ in range(400):
        i, j = _sample_pairs(codes, rng, 20)
        for a, b in zip(i, j):
            if codes[a] != codes[b]:
                key = (min(a, b), max(a, b))
                counts[key] = counts.get(key, 0) + 1
    seen = np.array(list(counts.values()))
    assert len(seen) == 17
    # 4,000 draws over 17 pairs: ~235 each (sd ~15). Drawing i uniformly and then j among
    # the other identities' images would give the pair of the two small identities (1, 2)
    # about twice the weight of a pair with the large one
    assert seen.min() > 170 and seen.max() < 300

