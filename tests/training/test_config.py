import json

import pytest

from siamese_edge.errors import InvalidInputError
from siamese_edge.training.config import TrainConfig


def test_round_trip_through_json():
    config = TrainConfig(data="d", out="o", classes=[0, "1"], mean=[0.5], std=[0.25],
                         height=20, width=24, channels=1)
    doc = json.loads(json.dumps(config.to_dict()))
    assert TrainConfig.from_dict(doc) == config
    assert doc["classes"] == ["0", "1"]
    # keys written by newer versions are ignored, not an error
    assert TrainConfig.from_dict({**doc, "future_option": 1}) == config


def test_margin_defaults_follow_the_loss():
    assert TrainConfig(data="d", out="o").loss_margin == 0.2
    assert TrainConfig(data="d", out="o", loss="contrastive").loss_margin == 1.0
    assert TrainConfig(data="d", out="o", loss="contrastive", margin=0.5).loss_margin == 0.5


@pytest.mark.parametrize("overrides", [
    {"loss": "arcface"}, {"epochs": 0}, {"val_fraction": 0.95}, {"mean": [0.5]},
    {"mean": [0.5, 0.5], "std": [0.2, 0.2]}, {"mean": [0.5], "std": [0.0]},
])
def test_invalid_values(overrides):
    with pytest.raises(InvalidInputError):
        TrainConfig(data="d", out="o", **overrides)
