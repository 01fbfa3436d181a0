"""The evaluation plots: histogram edges cover every score."""

from __future__ import annotations

import numpy as np
import pytest

from siamese_edge.plots import save_evaluation_plots, score_bins

ABOVE_ONE = float(np.nextafter(np.float32(1), np.float32(2)))  # identical float32 embeddings


@pytest.mark.parametrize("genuine,impostor", [
    ([0.9, ABOVE_ONE], [0.1, 0.5]),      # one score above 1.0 was left out
    ([ABOVE_ONE, ABOVE_ONE], [ABOVE_ONE]),  # every score above 1.0: decreasing edges
    ([0.3, 0.3], [0.3]),
])
def test_bins_increase_and_hold_every_score(genuine, impostor):
    genuine = np.array(genuine, np.float32)
    impostor = np.array(impostor, np.float32)
    bins = score_bins(genuine, impostor)
    assert np.all(np.diff(bins) > 0) and bins[-1] >= 1.0
    for scores in (genuine, impostor):
        assert np.histogram(scores, bins)[0].sum() == len(scores)


@pytest.mark.filterwarnings("error::UserWarning")
def test_plots_of_scores_above_one_are_written(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    genuine = np.array([ABOVE_ONE, ABOVE_ONE], np.float32)
    impostor = np.array([ABOVE_ONE], np.float32)
    paths = save_evaluation_plots(tmp_path, genuine, impostor, 0.5)
    assert all((tmp_path / name).stat().st_size > 0 for name in ("roc.png", "scores.png"))
    assert len(paths) == 2
