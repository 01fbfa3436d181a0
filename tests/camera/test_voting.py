from __future__ import annotations

import pytest

from siamese_edge.camera.voting import KOfNVoter
from siamese_edge.errors import InvalidInputError


def reference(history: list[set[str]], k: int, n: int) -> set[str]:
    window = history[-n:]
    names = set().union(*window) if window else set()
    return {name for name in names if sum(name in frame for frame in window) >= k}


@pytest.mark.parametrize("k,n", [(1, 1), (2, 3), (3, 5), (5, 5)])
def test_matches_a_plain_sliding_window(k, n):
    import random

    rng = random.Random(k * 10 + n)
    voter = KOfNVoter(k, n)
    history: list[set[str]] = []
    for _ in range(200):
        frame = {name for name in ("ann", "bob") if rng.random() < 0.6}
        history.append(frame)
        assert voter.update(frame) == reference(history, k, n)


def test_one_noisy_frame_does_not_accept():
    voter = KOfNVoter(3, 5)
    decisions = [voter.update(frame) for frame in
                 [{"ann"}, {"ann"}, {"eve"}, {"ann"}, set(), {"ann"}, set(), set(), set()]]
    assert all("eve" not in d for d in decisions)
    assert decisions[:3] == [set(), set(), set()]
    assert decisions[3] == {"ann"}  # third "ann" among the last five
    assert decisions[-1] == set()    # only one "ann" left in the window
    assert voter.votes("ann") == 1


@pytest.mark.parametrize("text", ["3", "a/b", "0/3", "4/3", "3/5/7", ""])
def test_bad_vote_is_a_one_line_error(text):
    with pytest.raises(InvalidInputError) as info:
        KOfNVoter.parse(text)
    assert "\n" not in str(info.value)


def test_parse():
    voter = KOfNVoter.parse(" 3/5 ")
    assert (voter.k, voter.n) == (3, 5)


@pytest.mark.parametrize("text", ["²/3", "3/⁵"])
def test_digit_like_characters_int_cannot_read_are_refused(text):
    with pytest.raises(InvalidInputError, match="expected k/n"):
        KOfNVoter.parse(text)
