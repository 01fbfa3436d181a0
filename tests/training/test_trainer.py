"""Short real training runs on a Fashion-MNIST subset."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from siamese_edge.errors import DatasetError, InvalidInputError, ModelError
from siamese_edge.runtime.preprocess import normalize
from siamese_edge.training.checkpoint import load_run
from siamese_edge.training.config import TrainConfig
from siamese_edge.training.miners import violating_fraction
from siamese_edge.training.trainer import (Trainer, TrainingDivergedError,
                                            collapse_message, is_collapsed, train)


def config(fashion_mnist_dir, out, **overrides):
    base = dict(data=str(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz"),
                labels=str(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz"), out=str(out),
                classes=["0", "1", "7", "9"], epochs=2, steps_per_epoch=12, batch_size=32,
                embedding_dim=16, threads=2)
    base.update(overrides)
    return TrainConfig(**base)


def test_run_writes_everything_and_is_deterministic(fashion_mnist_dir, tmp_path):
    events = []
    result = train(config(fashion_mnist_dir, tmp_path / "a"), events.append)
    for name in ("checkpoint.pt", "last.pt", "config.json", "log.jsonl", "run.json"):
        assert (tmp_path / "a" / name).is_file(), name
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert state["format"] == 1 and state["config"]["embedding_dim"] == 16
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    # the rate the epoch's last step used: one-cycle ends near zero (it logged the rate of a
    # step after the end, 7.96e-5)
    assert log[-1]["lr"] < 1e-6 < log[0]["lr"]
    assert log[-1]["val_auc"] > 0.75  # four easy classes: well above chance after 24 steps
    assert sum(e["event"] == "step" for e in events) == 24
    assert 0 < result.info["threshold"] < 1
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info == state["run"] == json.loads(json.dumps(result.info))
    assert info["threshold_source"].startswith("EER on validation data of t10k-images")
    assert info["class_names"] == ["0", "1", "7", "9"] and info["num_train_images"] == 3600
    assert set(info["preprocessing"]) == {"height", "width", "channels", "mean", "std"}
    assert 0.1 < info["preprocessing"]["mean"][0] < 0.6
    assert info["batch"]["images"] == 16  # four classes × K = 4, not --batch-size 32
    for key in ("val_eer", "val_auc", "trained_at", "torch_version", "seconds"):
        assert key in info, key
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == state["config"]
    again = train(config(fashion_mnist_dir, tmp_path / "b"))
    for key, value in state["state_dict"].items():
        other = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["state_dict"]
        torch.testing.assert_close(value, other[key], rtol=0, atol=0)
    assert again.info["val_eer"] == result.info["val_eer"]


def _first_triplet_batch(fashion_mnist_dir, out, **overrides):
    trainer = Trainer(config(fashion_mnist_dir, out, **overrides))
    trainer._load()
    trainer._build()
    indices, labels = trainer._triplet_batch()
    return indices, labels.numpy(), trainer


def test_instance_fraction_adds_k_views_of_single_images(fashion_mnist_dir, tmp_path):
    indices, labels, trainer = _first_triplet_batch(fashion_mnist_dir, tmp_path,
                                                    instance_fraction=0.5)
    real = labels >= 0
    assert real.sum() == 4 * 4  # P×K: the four classes × K = 4
    assert (labels[real] == trainer.train.labels[indices[real]]).all()
    pseudo = np.unique(labels[~real])
    assert len(pseudo) == round(0.5 * 32 / 4)
    for identity in pseudo:  # K copies of one image each, augmented independently later
        group = indices[labels == identity]
        assert len(group) == 4 and len(set(group.tolist())) == 1
    # run.json's batch shape is the batch really drawn: P capped at the four classes
    assert trainer.batch_shape() == {"identities": 4, "per_identity": 4,
                                     "instance_identities": len(pseudo),
                                     "images": len(indices)}
    plain_indices, plain_labels, plain = _first_triplet_batch(fashion_mnist_dir, tmp_path / "b")
    assert (plain_labels >= 0).all() and len(plain_indices) == 16
    assert plain.batch_shape()["images"] == 16 < plain.config.batch_size


def test_a_collapsed_embedding_is_flagged_and_a_working_one_is_not(fashion_mnist_dir,
                                                                     tmp_path):
    events = []
    trainer = Trainer(config(fashion_mnist_dir, tmp_path, miner="semi-hard",
                             readout="projection"), events.append)
    result = trainer.run()
    assert not result.info["collapsed"] and not [e for e in events if e["event"] == "warning"]
    assert result.info["val_impostor_mean"] < result.info["val_genuine_mean"] < 1
    with torch.no_grad():  # every image to (almost) the same direction
        projection = trainer.model.backbone.projection
        projection.weight.mul_(1e-4)
        projection.bias.fill_(1.0)
    scores = trainer.validate()
    assert scores["val_impostor_mean"] > 0.99
    assert trainer._run_info(scores, {"epoch": 1}, 0.0)["collapsed"]
    assert "collapsed" in collapse_message(scores, trainer.config)
    # semi-hard keeps only active triplets; the share of all triplets shows the collapse
    working = result.log[-1]
    assert working["active_fraction"] > 0.95 and working["violating_fraction"] < 0.5
    indices, labels = trainer._triplet_batch()
    with torch.no_grad():
        collapsed = trainer.model.training_embedding(trainer._inputs(indices, False))
    assert violating_fraction(collapsed, labels, trainer.config.loss_margin) > 0.95


def test_collapse_is_a_vanishing_score_gap_not_high_scores():
    # batch-hard's features readout: every score high, the identities still apart
    assert not is_collapsed({"val_genuine_mean": 0.99, "val_impostor_mean": 0.955})
    assert is_collapsed({"val_genuine_mean": 0.9999, "val_impostor_mean": 0.9991})
    assert is_collapsed({"val_genuine_mean": 0.30, "val_impostor_mean": 0.31})
    assert not is_collapsed({"val_genuine_mean": math.nan, "val_impostor_mean": 0.2})


@pytest.mark.parametrize("readout, val_split, key", [
    ("features", "sample", "val_eer_training"),
    ("features", "identity", "val_eer"),
    ("projection", "sample", "val_eer"),
])
def test_the_best_epoch_is_picked_on_the_fitting_validation_eer(fashion_mnist_dir, tmp_path,
                                                                readout, val_split, key):
    classes = ["0", "1", "2", "3", "7", "9"] if val_split == "identity" else ["0", "1", "7", "9"]
    result = train(config(fashion_mnist_dir, tmp_path, readout=readout, val_split=val_split,
                          val_fraction=0.34 if val_split == "identity" else 0.1,
                          classes=classes, epochs=3, steps_per_epoch=6))
    assert result.info["best_epoch_by"] == key
    assert all(key in r for r in result.log)
    assert ("val_eer_training" in result.log[0]) == (key == "val_eer_training")
    values = [r[key] for r in result.log]
    assert result.info["best_epoch"] == 1 + int(np.argmin(values))


def test_contrastive_loss_decreases(fashion_mnist_dir, tmp_path):
    result = train(config(fashion_mnist_dir, tmp_path, loss="contrastive"))
    first, last = (record["loss"] for record in (result.log[0], result.log[-1]))
    assert last < 0.8 * first, (first, last)
    assert result.info["val_auc"] > 0.7
    assert "violating_fraction" not in result.log[0]  # a triplet measure


def test_contrastive_batch_size_counts_images(fashion_mnist_dir, tmp_path):
    trainer = Trainer(config(fashion_mnist_dir, tmp_path, loss="contrastive", batch_size=32))
    trainer._load()
    trainer._build()
    sample, seen = trainer.sampler.sample, []
    trainer.sampler.sample = lambda count: seen.append(count) or sample(count)
    embed, sizes = trainer.model.training_embedding, []
    trainer.model.training_embedding = lambda x: sizes.append(len(x)) or embed(x)
    trainer._step()
    assert seen == [16] and sizes == [32]  # 16 pairs, both images of each in one batch
    assert trainer.batch_shape() == {"pairs": 16, "images": 32}


def test_resume_continues_exactly(fashion_mnist_dir, tmp_path):
    reference = train(config(fashion_mnist_dir, tmp_path / "full"))

    def stop_in_second_epoch(event):
        if event["event"] == "step" and event["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(fashion_mnist_dir, tmp_path / "cut"), stop_in_second_epoch)
    resumed = train(config(fashion_mnist_dir, tmp_path / "cut"), resume=True)
    assert [r["loss"] for r in resumed.log] == pytest.approx([r["loss"] for r in reference.log])
    assert resumed.info["val_eer"] == pytest.approx(reference.info["val_eer"])


def test_resume_keeps_early_stopping_and_a_finished_run_trains_no_more(fashion_mnist_dir,
                                                                       tmp_path):
    options = dict(epochs=8, steps_per_epoch=3, batch_size=16, patience=1, lr=0.03,
                   schedule="constant")
    reference = train(config(fashion_mnist_dir, tmp_path / "full", **options))
    stop = len(reference.log)
    assert 2 <= stop < 8, "this setting must stop early for the test to mean anything"

    def stop_in_last_epoch(event):
        if event["event"] == "step" and event["epoch"] == stop:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config(fashion_mnist_dir, tmp_path / "cut", **options), stop_in_last_epoch)
    resumed = train(config(fashion_mnist_dir, tmp_path / "cut", **options), resume=True)
    assert [r["epoch"] for r in resumed.log] == [r["epoch"] for r in reference.log]
    steps = []
    again = train(config(fashion_mnist_dir, tmp_path / "full", **options), steps.append,
                  resume=True)
    assert not [e for e in steps if e["event"] == "step"] and again.log == reference.log
    assert again.info["best_epoch"] == reference.info["best_epoch"]


def test_an_existing_run_is_kept_unless_overwrite_is_asked(fashion_mnist_dir, tmp_path):
    out = tmp_path / "r"
    train(config(fashion_mnist_dir, out, epochs=1, steps_per_epoch=3))
    before = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(InvalidInputError, match="already holds a run"):
        train(config(fashion_mnist_dir, out, epochs=1, steps_per_epoch=3, seed=1))
    with pytest.raises(DatasetError):  # bad input with --overwrite: the old run survives
        train(config(fashion_mnist_dir, out, classes=["nope"]), overwrite=True)
    assert (out / "checkpoint.pt").read_bytes() == before
    # a failure in the first steps (here: more instance identities than images) neither
    with pytest.raises(DatasetError, match="instance-fraction"):
        train(config(fashion_mnist_dir, out, classes=["0", "1"], batch_size=4096,
                     k_per_identity=2, instance_fraction=0.9), overwrite=True)
    assert (out / "checkpoint.pt").read_bytes() == before

    def fail_in_the_first_step(self):
        raise RuntimeError("the first step failed")

    original = Trainer._step
    Trainer._step = fail_in_the_first_step
    try:
        with pytest.raises(RuntimeError, match="first step"):
            train(config(fashion_mnist_dir, out, epochs=1, steps_per_epoch=3, seed=1),
                  overwrite=True)
    finally:
        Trainer._step = original
    assert (out / "checkpoint.pt").read_bytes() == before  # it used to be deleted already
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    train(config(fashion_mnist_dir, out, epochs=1, steps_per_epoch=3, seed=1), overwrite=True)
    assert (out / "checkpoint.pt").read_bytes() != before
    assert len((out / "log.jsonl").read_text().splitlines()) == 1


def test_resume_refuses_other_options_and_unreadable_checkpoints(fashion_mnist_dir, tmp_path):
    out = tmp_path / "r"
    train(config(fashion_mnist_dir, out, epochs=1, steps_per_epoch=3))
    with pytest.raises(InvalidInputError, match=r"changed: epochs \(1 -> 2\)"):
        train(config(fashion_mnist_dir, out, epochs=2, steps_per_epoch=3), resume=True)
    good = (out / "last.pt").read_bytes()
    for damaged in (b"garbage", good[:5000]):
        (out / "last.pt").write_bytes(damaged)
        with pytest.raises(InvalidInputError, match="not a resumable checkpoint"):
            train(config(fashion_mnist_dir, out, epochs=1, steps_per_epoch=3), resume=True)


def test_validation_always_holds_a_genuine_pair_or_is_dropped():
    from siamese_edge.data.labelled import LabelledImages
    from siamese_edge.training.trainer import split_validation

    def split(counts, **options):
        labels = np.repeat(np.arange(len(counts)), counts)
        data = LabelledImages(np.zeros((len(labels), 4, 4, 1), np.uint8), labels,
                              [str(i) for i in range(len(counts))])
        c = TrainConfig(data="d", out="o", **options)
        train_idx, val_idx, mode = split_validation(data, c, np.random.default_rng(0))
        assert len(np.intersect1d(train_idx, val_idx)) == 0
        assert len(train_idx) + len(val_idx) == len(labels)
        return labels[val_idx], mode

    held, mode = split([12] * 10, val_split="sample")  # 10 % of 12 is one image per class
    assert mode == "sample" and np.bincount(held).max() >= 2
    held, mode = split([1] * 22 + [3] * 3, val_split="identity")  # mostly single images
    assert mode == "identity" and np.bincount(held).max() >= 2
    held, mode = split([1] * 6, val_split="sample")  # no genuine pair to hold out
    assert mode == "none" and len(held) == 0


def test_data_that_cannot_be_validated_is_refused_and_no_image_is_dropped(tmp_path):
    from model_factory import write_random_people

    # one identity of 10 images and three of 2: the 10 % sample split holds out 2 images of
    # one identity, which has no impostor pair; they used to be dropped from training too
    people = write_random_people(tmp_path / "skew", ("a",), 10, (12, 12))
    write_random_people(people, ("b", "c", "d"), 2, (12, 12))
    result = train(TrainConfig(data=str(people), out=str(tmp_path / "r"), epochs=1,
                               steps_per_epoch=2, batch_size=8, k_per_identity=2, threads=1))
    assert result.info["num_train_images"] == 16 and result.info["num_val_images"] == 0
    assert result.info["val_split"] == "none"
    # self-pairs only: no genuine pair of two images; one identity: no impostor pair
    for rows in ("a/0.png,a/0.png,1\nb/0.png,b/0.png,1\n", "a/0.png,a/1.png,1\n"):
        (people / "p.csv").write_text(rows)
        with pytest.raises(DatasetError, match="cannot be validated"):
            train(TrainConfig(data=str(people / "p.csv"), out=str(tmp_path / "c"),
                              loss="contrastive", epochs=1, steps_per_epoch=2, batch_size=8))


def test_nan_loss_stops_with_a_clear_error(fashion_mnist_dir, tmp_path):
    with pytest.raises(TrainingDivergedError, match="NaN"):
        train(config(fashion_mnist_dir, tmp_path, lr=1e30, schedule="constant", epochs=1))


def test_training_normalisation_equals_the_runtime(fashion_mnist_dir, tmp_path):
    trainer = Trainer(config(fashion_mnist_dir, tmp_path, augment=False))
    trainer._load()
    trainer._build()
    indices = np.arange(8)
    ours = trainer._inputs(indices, augment=False).numpy()
    runtime = normalize(trainer.train.images[indices], trainer.mean, trainer.std)
    np.testing.assert_allclose(ours, runtime, rtol=1e-6, atol=1e-6)


def test_load_run_round_trip_and_errors(fashion_mnist_dir, tmp_path):
    train(config(fashion_mnist_dir, tmp_path / "r", epochs=1))
    run = load_run(tmp_path / "r")
    assert not run.model.training and run.preprocessing.height == 28
    x = torch.zeros(2, 1, 28, 28)
    # the default readout: 2x2-pooled feature maps and the gradient histogram (8 x 4 x 4)
    assert run.model(x).shape == (2, 512 + 128) and run.model.hog_weight == 0.3
    train(config(fashion_mnist_dir, tmp_path / "p", epochs=1, readout="projection"))
    assert load_run(tmp_path / "p").model(x).shape == (2, 16)
    with pytest.raises(ModelError, match="not a training run"):
        load_run(tmp_path)
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="unreadable checkpoint"):
        load_run(tmp_path / "r")


def test_cli_train_json(fashion_mnist_dir, tmp_path):
    from siamese_edge.cli.train import train as train_command

    result = CliRunner().invoke(train_command, [
        str(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz"), "--labels",
        str(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz"), "--out", str(tmp_path / "r"),
        "--classes", "1,9", "--epochs", "1", "--steps-per-epoch", "5", "--batch-size", "16",
        "--embedding-dim", "8", "--input-size", "20x24", "--mean", "0.5", "--std", "0.25",
        "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["class_names"] == ["1", "9"] and len(doc["log"]) == 1
    assert doc["preprocessing"] == {"height": 20, "width": 24, "channels": 1, "mean": [0.5],
                                    "std": [0.25]}
    assert load_run(tmp_path / "r").config.mean == [0.5]


def test_cli_train_help_and_bad_options():
    from siamese_edge.cli.train import train as train_command

    result = CliRunner().invoke(train_command, ["--help"])
    assert result.exit_code == 0 and "--pairs-label-means" in result.output
    result = CliRunner().invoke(train_command, [".", "--out", "x", "--input-size", "big"])
    assert result.exit_code == 2 and "HxW" in result.output
    result = CliRunner().invoke(train_command, [".", "--out", "x", "--resume", "--overwrite"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_cli_train_bad_input_is_one_line(tmp_path):
    from siamese_edge.cli import cli

    (tmp_path / "x.idx").write_bytes(b"nonsense")
    result = CliRunner().invoke(cli, ["train", str(tmp_path / "x.idx"), "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code == 1 and result.output.startswith("error: ")


def test_cli_train_shows_both_validation_eers_and_the_best_epoch(fashion_mnist_dir, tmp_path):
    from siamese_edge.cli import cli

    args = ["train", str(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz"), "--labels",
            str(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz"), "--classes", "0,1,7,9",
            "--epochs", "2", "--steps-per-epoch", "4", "--batch-size", "16",
            "--embedding-dim", "8", "--threads", "2"]
    result = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    epochs = [line for line in result.output.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all("(loss's embedding 0." in line for line in epochs)
    assert "wrote " in result.output and "best epoch " in result.output
    projection = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "p"),
                                                 "--readout", "projection"])
    assert projection.exit_code == 0 and "loss's embedding" not in projection.output
