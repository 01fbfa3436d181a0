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


def test_miner_and_margin_defaults_follow_the_readout_and_loss():
    default = TrainConfig(data="d", out="o")  # features readout: batch-hard, small margin
    assert (default.miner, default.loss_margin) == ("batch-hard", 0.02)
    deployed_projection = TrainConfig(data="d", out="o", readout="projection")
    assert (deployed_projection.miner, deployed_projection.loss_margin) == ("semi-hard", 0.2)
    assert TrainConfig(data="d", out="o", backbone="seed").miner == "semi-hard"
    assert TrainConfig(data="d", out="o", miner="batch-all").loss_margin == 0.2
    assert TrainConfig(data="d", out="o", loss="contrastive").loss_margin == 1.0
    assert TrainConfig(data="d", out="o", loss="contrastive", margin=0.5).loss_margin == 0.5
    assert default.to_dict()["margin"] == 0.02  # the run records the number it used


def test_runs_saved_with_an_unresolved_margin_keep_the_old_defaults():
    doc = TrainConfig(data="d", out="o", miner="batch-hard").to_dict()
    doc["margin"] = None  # how runs before resolved margins saved a default margin
    assert TrainConfig.from_dict(doc).loss_margin == 0.2
    assert TrainConfig.from_dict({**doc, "loss": "contrastive"}).loss_margin == 1.0


def test_readout_default_and_older_runs():
    assert TrainConfig(data="d", out="o").readout == "features"
    assert TrainConfig(data="d", out="o", backbone="seed").readout == "projection"
    doc = TrainConfig(data="d", out="o").to_dict()
    assert TrainConfig.from_dict(doc).readout == "features"
    del doc["readout"]  # a run saved before the readout existed deployed its projection
    assert TrainConfig.from_dict(doc).readout == "projection"


def test_hog_weight_default_follows_the_readout_and_older_runs_keep_none():
    assert TrainConfig(data="d", out="o").deployed_hog_weight == 0.3
    assert TrainConfig(data="d", out="o", readout="projection").deployed_hog_weight == 0.0
    assert TrainConfig(data="d", out="o", hog_weight=0).deployed_hog_weight == 0.0
    doc = TrainConfig(data="d", out="o").to_dict()
    assert doc["hog_weight"] == 0.3 and TrainConfig.from_dict(doc).deployed_hog_weight == 0.3
    del doc["hog_weight"]  # a run saved before the descriptor existed deployed without it
    assert TrainConfig.from_dict(doc).deployed_hog_weight == 0.0


@pytest.mark.parametrize("overrides", [
    {"loss": "arcface"}, {"readout": "logits"}, {"backbone": "seed", "readout": "features"}, {"epochs": 0}, {"val_fraction": 0.95}, {"mean": [0.5]},
    {"mean": [0.5, 0.5], "std": [0.2, 0.2]}, {"mean": [0.5], "std": [0.0]},
    {"hog_weight": -0.1}, {"hog_weight": 11},
    {"lr": 0}, {"lr": -1}, {"lr": float("nan")}, {"weight_decay": -1e-4},
    {"weight_decay": float("inf")}, {"margin": 0}, {"margin": -1},
    {"loss": "contrastive", "margin": -1}, {"margin": float("nan")}, {"classes": []},
    {"k_per_identity": 1}, {"mean": [float("nan")], "std": [0.2]},
    {"mean": [0.5], "std": [float("inf")]},
    # numpy refused a negative seed and torch a huge one, after the data had loaded; 100000
    # threads crashed OpenBLAS; a 30000-pixel side tried to allocate ~180 GB
    {"seed": -1}, {"seed": 2**64}, {"threads": 0}, {"threads": 100000},
    {"height": 30000, "width": 28}, {"height": 28, "width": 0},
])
def test_invalid_values(overrides):
    with pytest.raises(InvalidInputError):
        TrainConfig(data="d", out="o", **overrides)


@pytest.mark.parametrize("options", [
    dict(lr=1e39), dict(lr=1e38, schedule="constant"), dict(weight_decay=1e39),
    dict(margin=1e39), dict(mean=[1e39], std=[1.0]), dict(mean=[0.5], std=[1e39]),
    dict(mean=[0.5], std=[1e-45]),
])
def test_values_torch_cannot_hold_in_float32_are_refused(options):
    with pytest.raises(InvalidInputError, match="float32|up to"):
        TrainConfig(data="d", out="o", **options)


def test_the_largest_accepted_lr_fails_with_a_clear_error_not_a_traceback(tmp_path):
    from model_factory import write_random_people

    from siamese_edge.training.config import MAX_LR
    from siamese_edge.training.trainer import TrainingDivergedError, train

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    for schedule in ("constant", "onecycle"):
        config = TrainConfig(data=str(people), out=str(tmp_path / schedule), lr=MAX_LR,
                             schedule=schedule, epochs=1, steps_per_epoch=3, batch_size=8,
                             k_per_identity=2, threads=1)
        with pytest.raises(TrainingDivergedError):  # AdamW's RuntimeError before
            train(config)


@pytest.mark.parametrize("batch_size", [2, 3])
def test_contrastive_batches_without_a_genuine_pair_are_refused(batch_size):
    with pytest.raises(InvalidInputError, match="contrastive batches need batch_size >= 4"):
        TrainConfig(data="d", out="o", loss="contrastive", batch_size=batch_size)
    assert TrainConfig(data="d", out="o", loss="contrastive", batch_size=4).batch_size == 4


def test_cli_contrastive_batch_of_one_pair_is_one_line(tmp_path):
    from click.testing import CliRunner
    from model_factory import write_random_people

    from siamese_edge.cli import cli

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(tmp_path / "r"),
                                      "--loss", "contrastive", "--batch-size", "3"])
    # a bad option value is a usage error (exit 2), named as the option, not the field
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Error: contrastive batches need --batch-size >= 4" in result.output
    assert not (tmp_path / "r" / "last.pt").exists()
    for args, message in ((["--seed", "-1"], "--seed must be in [0, 4294967295]"),
                          (["--mean", "0.5"], "give both --mean and --std"),
                          (["--batch-size", "6"], "--batch-size >= 2 * --k-per-identity"),
                          (["--mean", "5", "--std", "1"], "--mean values must be in [0, 1]")):
        result = CliRunner().invoke(cli, ["train", str(people), "--out",
                                          str(tmp_path / "r"), *args])
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("args, option", [
    (["--loss", "contrastive", "--miner", "batch-all"], "--miner"),
    (["--loss", "contrastive", "--k-per-identity", "3"], "--k-per-identity"),
    (["--no-augment", "--hflip"], "--hflip"),
    (["--no-augment", "--instance-fraction", "0.2"], "--instance-fraction"),
    (["--pairs-label-means", "dissimilar"], "--pairs-label-means"),
])
def test_options_that_would_do_nothing_are_usage_errors(tmp_path, args, option):
    # each gave byte-identical runs to the same command without it, yet config.json said
    # it was used (and --resume then insisted on it)
    from click.testing import CliRunner
    from model_factory import write_random_people

    from siamese_edge.cli import cli

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(tmp_path / "r"),
                                      *args])
    assert result.exit_code == 2 and f"{option} does nothing here" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("mean", [[5.0], [-0.1], [127.5]])
def test_a_mean_outside_0_1_is_refused_for_new_runs_only(mean):
    # earlier versions took --mean 127.5 (pixels in 0-255): such runs must still load
    config = TrainConfig(data="d", out="o", mean=mean, std=[1.0])
    with pytest.raises(InvalidInputError, match=r"mean values must be in \[0, 1\]"):
        config.check_new_run()
    assert TrainConfig.from_dict(config.to_dict()).mean == mean
