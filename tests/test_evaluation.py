import numpy as np
import pytest

from siamese_edge.evaluation import evaluate_embeddings, n_way_one_shot, rank1_accuracy


def clustered(n_classes=4, per_class=30, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(16, dtype=np.float32)[:n_classes]
    labels = np.repeat(np.arange(n_classes), per_class)
    e = centres[labels] + rng.normal(0, spread, (len(labels), 16)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True), labels


def test_separated_clusters_score_perfectly():
    e, labels = clustered()
    report, genuine, impostor = evaluate_embeddings(e, labels, fars=(1e-2,), target_far=1e-2)
    assert report.auc == 1.0 and report.eer == 0.0
    assert report.rank1 == 1.0 and report.n_way_one_shot == 1.0 and report.n_way == 4
    assert report.tar_at_far["1e-2"] == 1.0
    assert report.genuine_pairs == 4 * 30 * 29 // 2 == genuine.size


def test_random_embeddings_are_at_chance():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(400, 32)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = rng.integers(0, 4, 400)
    report, _, _ = evaluate_embeddings(e, labels, fars=(1e-2,), target_far=1e-2)
    assert abs(report.auc - 0.5) < 0.05 and abs(report.eer - 0.5) < 0.06
    assert abs(report.n_way_one_shot - 0.25) < 0.05


def test_far_without_enough_impostors_is_flagged():
    e, labels = clustered(n_classes=2, per_class=5)
    report, _, _ = evaluate_embeddings(e, labels, fars=(1e-2, 1e-4), target_far=1e-4)
    assert report.tar_at_far["1e-4"] is None and "not meaningful" in report.far_notes["1e-4"]
    assert report.threshold_at_target is None


def test_rank1_and_n_way_detect_confusion():
    e, labels = clustered()
    swapped = labels.copy()
    swapped[labels == 0], swapped[labels == 1] = 1, 0  # ground truth now wrong for 2 of 4
    rng = np.random.default_rng(0)
    assert rank1_accuracy(e, labels, rng) == 1.0
    assert n_way_one_shot(e, swapped, 4, 500, rng) == 1.0  # relabelling is not confusion
    merged = np.where(labels == 1, 0, labels)  # two clusters share a label
    assert n_way_one_shot(e, merged, 3, 500, rng) < 1.0


def test_single_identity_is_refused():
    with pytest.raises(ValueError):
        evaluate_embeddings(*clustered(n_classes=1))


def test_bootstrap_intervals_cover_the_measurable_fars_at_the_operating_threshold():
    e, labels = clustered(n_classes=6, per_class=20, spread=0.4)
    report, _, _ = evaluate_embeddings(e, labels, fars=(1e-1, 1e-4), target_far=1e-2,
                                       bootstrap=50)
    ci = report.confidence
    assert set(ci.tar_at_far) == {"1e-1", "1e-2"}  # 1e-4 is not measurable here
    assert ci.threshold == report.threshold_at_target and ci.replicates == 50
    assert ci.auc[0] <= report.auc <= ci.auc[1]
    assert evaluate_embeddings(e, labels)[0].confidence is None


def test_a_target_far_near_a_reported_one_keeps_its_own_entry():
    e, labels = clustered(n_classes=16, per_class=25, spread=0.9)
    impostors = evaluate_embeddings(e, labels, fars=(1e-2,), target_far=1e-2)[0].impostor_pairs
    assert 10 / 1.4e-4 <= impostors < 10 / 1e-4  # 1.4e-4 measurable here, 1e-4 not
    report, _, _ = evaluate_embeddings(e, labels, fars=(1e-4,), target_far=1.4e-4)
    assert report.tar_at_far["1e-4"] is None and report.tar_at_far["0.00014"] is not None
    assert report.threshold_at_target is not None


def test_listed_pairs_score_exactly_the_list_not_every_pair_of_its_identities():
    from siamese_edge.evaluation import evaluate_listed_pairs
    from siamese_edge.metrics import equal_error_rate, roc_auc

    e, labels = clustered(n_classes=3, per_class=4, spread=0.3, seed=2)
    rng = np.random.default_rng(0)
    pairs = np.array([(i, j, int(labels[i] == labels[j]))
                      for i, j in rng.integers(0, len(e), (40, 2)) if i != j])
    report, genuine, impostor = evaluate_listed_pairs(e, pairs, labels, fars=(1e-1,),
                                                      target_far=1e-1)
    expected = np.array([float(e[i].astype(np.float64) @ e[j]) for i, j, _ in pairs])
    same = pairs[:, 2] == 1
    np.testing.assert_allclose(genuine, expected[same], atol=1e-7)
    np.testing.assert_allclose(impostor, expected[~same], atol=1e-7)
    assert report.genuine_pairs == same.sum() and report.impostor_pairs == (~same).sum()
    assert report.auc == roc_auc(expected[same], expected[~same])
    assert report.eer == equal_error_rate(expected[same], expected[~same])[0]
    assert report.rank1 is None and report.n_way_one_shot is None and report.errors is None
    assert report.extras["protocol"] == "listed pairs"
    # all-pairs evaluation of the same images counts other pairs
    assert evaluate_embeddings(e, labels)[0].impostor_pairs != report.impostor_pairs


def test_listed_pairs_need_both_kinds():
    from siamese_edge.evaluation import evaluate_listed_pairs

    e, labels = clustered(n_classes=2, per_class=3)
    with pytest.raises(ValueError, match="0 impostor"):
        evaluate_listed_pairs(e, np.array([[0, 1, 1], [3, 4, 1]]), labels)
    with pytest.raises(ValueError, match="no pairs"):
        evaluate_listed_pairs(e, np.zeros((0, 3), np.int64), labels)


def test_non_finite_embeddings_outside_the_pairs_subset_are_refused(monkeypatch):
    from siamese_edge import evaluation

    e, labels = clustered(n_classes=4, per_class=30)
    e[[70, 100]] = np.nan
    e[110, 3] = np.inf
    # pairs from the first 60 images only, as when a large set is subsampled: rank-1 and
    # N-way still use every image, and argmax picked the NaN scores
    monkeypatch.setattr(evaluation, "_stratified_subset",
                        lambda labels, limit, rng: np.arange(60))
    with pytest.raises(ValueError, match="3 of 120 images gave non-finite"):
        evaluate_embeddings(e, labels, trials=50)


def test_listed_pairs_refuse_non_finite_embeddings():
    from siamese_edge.evaluation import evaluate_listed_pairs

    e, labels = clustered(n_classes=2, per_class=3)
    e[4] = np.inf
    with pytest.raises(ValueError, match="1 of 6 images gave non-finite"):
        evaluate_listed_pairs(e, np.array([[0, 1, 1], [0, 3, 0], [4, 5, 1]]), labels)


@pytest.mark.parametrize("counts, limit", [([1000] * 10, 5000), ([9000] + [5] * 200, 5000),
                                           ([7, 3, 1], 5), ([2] * 3000, 5000)])
def test_the_pairs_subset_keeps_each_identitys_share(counts, limit):
    from siamese_edge.evaluation import _stratified_subset

    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(0).shuffle(labels)
    subset = _stratified_subset(labels, limit, np.random.default_rng(1))
    assert len(subset) == len(np.unique(subset)) == limit
    kept = np.bincount(labels[subset], minlength=len(counts))
    share = np.array(counts) * limit / sum(counts)
    least = np.minimum(counts, 2)
    if least.sum() <= limit:  # every identity keeps two images (or its one)
        assert np.all(kept >= least)
        assert np.all(np.abs(kept - share) < np.maximum(2, 1.0 + 1e-9))
    else:  # as many identities as two images each allow
        assert np.count_nonzero(kept) == limit // 2 and set(kept) <= {0, 2}


def test_ten_equal_identities_keep_five_hundred_images_each():
    from siamese_edge.evaluation import _stratified_subset

    labels = np.repeat(np.arange(10), 1000)
    subset = _stratified_subset(labels, 5000, np.random.default_rng(0))
    assert np.bincount(labels[subset]).tolist() == [500] * 10


def test_pair_scores_are_the_scores_verify_computes():
    from siamese_edge.evaluation import evaluate_listed_pairs
    from siamese_edge.runtime.search_index import exact_scores

    rng = np.random.default_rng(0)
    e = rng.normal(size=(300, 96)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = rng.integers(0, 6, 300)
    _, genuine, impostor = evaluate_embeddings(e, labels, trials=10)
    runtime = exact_scores(e, e.T)
    i, j = np.triu_indices(300, k=1)
    same = labels[i] == labels[j]
    assert np.array_equal(genuine, runtime[i, j][same])
    assert np.array_equal(impostor, runtime[i, j][~same])
    pairs = np.array([[0, 1, 1], [2, 3, 0], [4, 5, 0]])
    _, g, imp = evaluate_listed_pairs(e, pairs, labels)
    assert g.dtype == np.float32 and g[0] == runtime[0, 1] and imp.tolist() == [
        runtime[2, 3], runtime[4, 5]]


@pytest.mark.parametrize("big", [0, 2])
def test_rank1_of_a_collapsed_model_is_chance_whichever_label_is_largest(big):
    # every embedding equal: each probe's three scores tie; argmax alone gave the lowest
    # label the credit (0.98 when it was the large identity, 0.01 when it was not)
    labels = np.array([big] * 100 + [1] * 2 + [2 - big] * 2)
    e = np.full((len(labels), 4), 0.5, np.float32)
    assert rank1_accuracy(e, labels, np.random.default_rng(0)) == pytest.approx(1 / 3)


def test_an_identity_with_one_image_is_a_distractor_not_the_end_of_rank1_and_n_way():
    e, labels = clustered(n_classes=5, per_class=4)
    e = np.concatenate([e, e[:1]])  # a sixth identity with one image, a copy of class 0's
    labels = np.concatenate([labels, [labels.max() + 1]])
    rng = np.random.default_rng(0)
    rank1 = rank1_accuracy(e, labels, rng)
    assert rank1 is not None and rank1 < 1.0  # the copy can take class 0's probes
    assert n_way_one_shot(e, labels, 6, 200, rng) is not None
    assert n_way_one_shot(e[:1], labels[:1], 2, 10, rng) is None  # nobody to query with


def test_the_operating_threshold_may_be_zero():
    e, labels = clustered(n_classes=4, per_class=30)
    report = evaluate_embeddings(e, labels, trials=10)[0]
    report.threshold_at_target = 0.0
    assert report.operating_threshold() == 0.0
    report.threshold_at_target = None
    assert report.operating_threshold() == report.eer_threshold


def test_rank1_ties_between_identical_templates_are_split_whatever_their_position():
    # float32 products round one column differently by its place in the matrix (up to
    # 1e-6): identical templates no longer tied, and the lowest label took the credit
    def reference(e, labels, rng, draws):
        classes = np.unique(labels)
        members = [np.nonzero(labels == c)[0] for c in classes]
        total = []
        for _ in range(draws):
            templates = np.array([rng.choice(m) for m in members])
            probes = np.setdiff1d(np.arange(len(labels)), templates)
            # as verify scores: float64 products rounded to float32
            scores = (e[probes].astype(np.float64) @ e[templates].T.astype(np.float64)
                      ).astype(np.float32)
            best = scores.max(axis=1, keepdims=True)
            own = scores[np.arange(len(probes)), np.searchsorted(classes, labels[probes])]
            total.append(np.mean((own == best[:, 0]) / (scores == best).sum(axis=1)))
        return float(np.mean(total))

    rng = np.random.default_rng(0)
    for dim, k in ((64, 6), (128, 16), (512, 32)):
        v = rng.normal(size=dim).astype(np.float32)
        e = np.tile(v / np.linalg.norm(v), (2 * k, 1))  # every identity has the same photo
        for i in range(k):  # and one of its own
            p = rng.normal(size=dim).astype(np.float32)
            e[2 * i + 1] = p / np.linalg.norm(p)
        labels = np.repeat(np.arange(k), 2)
        assert rank1_accuracy(e, labels, np.random.default_rng(1), draws=50) == \
            pytest.approx(reference(e, labels, np.random.default_rng(1), 50), abs=1e-12)
