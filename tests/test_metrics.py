import itertools

import numpy as np
import pytest

from siamese_edge.metrics import equal_error_rate, pair_scores, roc_auc, threshold_at_far


def reference_auc(genuine, impostor):
    wins = sum(1.0 if g > i else 0.5 if g == i else 0.0
               for g, i in itertools.product(genuine, impostor))
    return wins / (len(genuine) * len(impostor))


def rates(genuine, impostor, t):
    far = sum(s >= t for s in impostor) / len(impostor)
    frr = sum(s < t for s in genuine) / len(genuine)
    return far, frr


def test_perfectly_separated_scores():
    genuine, impostor = [0.9, 0.8, 0.95], [0.1, 0.2, 0.3, 0.0]
    assert roc_auc(genuine, impostor) == 1.0
    eer, t = equal_error_rate(genuine, impostor)
    assert eer == 0.0 and rates(genuine, impostor, t) == (0.0, 0.0)


def test_reversed_scores():
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 0.0
    assert equal_error_rate([0.1, 0.2], [0.8, 0.9])[0] == 1.0


def reference_eer(genuine, impostor):
    """Where the straight segments between the operating points (accept nothing, then each
    score as threshold, highest first) cross FAR = FRR."""
    points = [(0.0, 1.0)] + [rates(genuine, impostor, t) for t in
                             sorted(set(genuine) | set(impostor), reverse=True)]
    for (far0, frr0), (far1, frr1) in zip(points, points[1:]):
        if far1 - frr1 >= 0 > far0 - frr0:
            w = (frr0 - far0) / ((far1 - frr1) - (far0 - frr0))
            return far0 + w * (far1 - far0)
    raise AssertionError("no crossing")


@pytest.mark.parametrize("seed", range(5))
def test_against_reference_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    genuine = np.round(rng.normal(0.6, 0.2, 40), 2)  # rounding makes ties
    impostor = np.round(rng.normal(0.3, 0.2, 60), 2)
    assert roc_auc(genuine, impostor) == pytest.approx(reference_auc(genuine, impostor))
    eer, t = equal_error_rate(genuine, impostor)
    assert eer == pytest.approx(reference_eer(genuine, impostor))
    # the threshold is the operating point nearest the crossing: no score has a smaller gap
    far, frr = rates(genuine, impostor, t)
    gaps = [abs(np.subtract(*rates(genuine, impostor, s))) for s in
            np.concatenate([genuine, impostor])]
    assert abs(far - frr) <= min(gaps) + 1e-12
    assert min(far, frr) - 1e-12 <= eer <= max(far, frr) + 1e-12


@pytest.mark.parametrize("genuine, impostor", [([0.4, 0.4], [0.0, 1.0]), ([1.0, 0.0], [0.5])])
def test_eer_does_not_depend_on_which_of_two_equally_near_points_comes_first(genuine,
                                                                             impostor):
    # the nearest point's (FAR + FRR) / 2 gave 0.75 here and 0.25 for the mirror image
    eer, threshold = equal_error_rate(genuine, impostor)
    assert eer == 0.5
    # the threshold is one of the two equally near points: the first, the lower-FAR one
    assert threshold == {(0.4, 0.0): 0.7, (1.0, 0.5): 0.75}[(genuine[0], impostor[0])]
    assert equal_error_rate(-np.array(impostor), -np.array(genuine))[0] == eer


@pytest.mark.parametrize("seed", range(3))
def test_eer_is_symmetric_under_mirroring_the_scores(seed):
    # negating every score and swapping the roles swaps FAR and FRR at every point
    rng = np.random.default_rng(seed)
    genuine = np.round(rng.normal(0.6, 0.2, 30), 1)
    impostor = np.round(rng.normal(0.4, 0.2, 50), 1)
    assert equal_error_rate(-impostor, -genuine)[0] == pytest.approx(
        equal_error_rate(genuine, impostor)[0], abs=1e-12)


def test_threshold_at_far_is_the_lowest_admissible():
    rng = np.random.default_rng(3)
    genuine, impostor = rng.normal(1, 1, 500), rng.normal(0, 1, 1000)
    t, far, tar = threshold_at_far(genuine, impostor, 0.01)
    assert far <= 0.01 and rates(genuine, impostor, t)[0] == far
    assert tar == pytest.approx(1 - rates(genuine, impostor, t)[1])
    lower = np.max(impostor[impostor < t])  # accepting one more impostor breaks the target
    assert rates(genuine, impostor, lower)[0] > 0.01


def test_pair_scores_split_by_label():
    e = np.eye(3, dtype=np.float32)[[0, 0, 1]]
    genuine, impostor = pair_scores(e, np.array([5, 5, 7]))
    assert genuine.tolist() == [1.0] and impostor.tolist() == [0.0, 0.0]


def test_nan_scores_are_refused():
    with pytest.raises(ValueError):
        roc_auc([np.nan], [0.1])


@pytest.mark.parametrize("low", [0.5, 0.7, -0.25, 1e10])
def test_thresholds_between_adjacent_scores_keep_their_promise(low):
    # genuine one float above the impostor: the midpoint rounds onto one of them
    high = float(np.nextafter(low, np.inf))
    genuine, impostor = np.array([high]), np.array([low])
    t, far, tar = threshold_at_far(genuine, impostor, 0.0)
    assert rates(genuine, impostor, t) == (far, 1.0 - tar) == (0.0, 0.0)
    eer, t_eer = equal_error_rate(genuine, impostor)
    assert eer == 0.0 and rates(genuine, impostor, t_eer) == (0.0, 0.0)


@pytest.mark.parametrize("top", [0.9, 1e10, 3e300])
def test_accepting_nothing_rejects_even_a_large_top_score(top):
    # 1e-6 above a score of 1e10 is the score itself: the threshold accepted it
    genuine, impostor = np.array([top / 4]), np.array([top])
    t, far, tar = threshold_at_far(genuine, impostor, 0.0)
    assert rates(genuine, impostor, t) == (far, 1.0 - tar) == (0.0, 1.0)
