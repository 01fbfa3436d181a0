"""The in-memory cosine matcher the camera loop can use."""

from __future__ import annotations

import numpy as np
import pytest

from siamese_edge.camera.matcher import CosineMatrixMatcher, Match
from siamese_edge.errors import InvalidInputError


def test_an_empty_gallery_answers_unknown_for_every_region():
    matcher = CosineMatrixMatcher([], np.empty((0, 4), np.float32), threshold=0.5)
    assert matcher.match(np.eye(4, dtype=np.float32)[:2]) == [Match(None, 0.0, False)] * 2


def test_best_template_per_identity_and_unknown_below_the_threshold():
    templates = np.eye(3, dtype=np.float32)
    matcher = CosineMatrixMatcher(["b", "a", "b"], templates, threshold=0.9)
    probes = np.array([[0, 0, 1], [0, 1, 0], [0.6, 0.8, 0]], np.float32)
    assert matcher.match(probes) == [Match("b", 1.0, True), Match("a", 1.0, True),
                                     Match(None, pytest.approx(0.8), False)]


def test_names_and_templates_must_pair_up():
    with pytest.raises(InvalidInputError, match="2 names for 3 templates"):
        CosineMatrixMatcher(["a", "b"], np.eye(3, dtype=np.float32), threshold=0.5)


@pytest.mark.parametrize("identity", ["a", None])
def test_a_threshold_just_above_a_float32_score_rejects_it_in_both_modes(identity):
    x = np.float32(0.7)
    threshold = float(x) + float(np.spacing(x)) / 4  # rounds onto x in float32
    assert np.float32(threshold) == x
    matcher = CosineMatrixMatcher(["a"], np.array([[1, 0]], np.float32), threshold,
                                  identity=identity)
    (match,) = matcher.match(np.array([[x, 0]], np.float32))
    assert match.score == float(x) and match.score < threshold and not match.accepted
    assert match.identity == identity  # 1:1 names the claim; 1:N answers unknown
    # ... and a score equal to the threshold is accepted, as verify accepts it (>=)
    matcher = CosineMatrixMatcher(["a"], np.array([[1, 0]], np.float32), float(x),
                                  identity=identity)
    (match,) = matcher.match(np.array([[x, 0]], np.float32))
    assert match.score == float(x) and match.accepted and match.identity == "a"
