"""A model's self-description: metadata the runtime would misuse is refused on read."""

from __future__ import annotations

import json

import pytest

from siamese_edge.errors import ModelError
from siamese_edge.model_info import ModelInfo, Preprocessing

GOOD = ModelInfo(Preprocessing(16, 16, 1, (0.5,), (0.25,)), embedding_dim=8, threshold=0.5)


def test_round_trip_keeps_every_field():
    assert ModelInfo.from_json(GOOD.to_json()) == GOOD


@pytest.mark.parametrize("change, message", [
    (lambda d: d["preprocessing"].update(std=[0.0]), "std"),
    (lambda d: d["preprocessing"].update(mean=["nan"]), "mean"),
    (lambda d: d["preprocessing"].update(height=16.5), "integers"),
    (lambda d: d["preprocessing"].update(resize="center-crop"), "resize"),
    (lambda d: d["preprocessing"].update(layout="NHWC"), "layout"),
    (lambda d: d.update(threshold="nan"), "threshold"),
    (lambda d: d.update(threshold="inf"), "threshold"),
    (lambda d: d.update(metric="euclidean"), "metric"),
    (lambda d: d.update(embedding_dim=0), "embedding size"),
])
def test_metadata_the_runtime_cannot_honour_is_refused(change, message):
    document = json.loads(GOOD.to_json())
    change(document)
    with pytest.raises(ModelError, match=message):
        ModelInfo.from_json(json.dumps(document))
