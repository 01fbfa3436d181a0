"""Where train may write: a run directory that cannot be made is a one-line error, at once."""

import json

import pytest
from click.testing import CliRunner

from siamese_edge.cli import cli
from siamese_edge.errors import InvalidInputError
from siamese_edge.training.config import TrainConfig
from siamese_edge.training.trainer import train


def test_an_out_that_cannot_be_a_directory_is_refused_before_the_data_is_read(tmp_path):
    (tmp_path / "fm.json").write_text("{}")
    missing_data = tmp_path / "no-such-data"  # read first, it would be the error named
    for out in (tmp_path / "fm.json" / "sub", "/proc/siamese-edge-run", tmp_path / "fm.json"):
        with pytest.raises(InvalidInputError, match="cannot create the run directory"):
            train(TrainConfig(data=str(missing_data), out=str(out)))
    assert (tmp_path / "fm.json").read_text() == "{}"


def test_cli_train_unusable_out_is_one_line(tmp_path):
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    (tmp_path / "fm.json").write_text("{}")
    for out in (tmp_path / "fm.json" / "sub", "/proc/siamese-edge-run"):
        result = CliRunner().invoke(cli, ["train", str(people), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(tmp_path / "r"),
                                      "--lr", "1e39", "--schedule", "constant"])
    assert result.exit_code == 2 and "Error: --lr must be a positive number" in result.output


@pytest.mark.parametrize("options, not_suggested", [
    (dict(), ["--readout features"]),  # the default readout
    (dict(readout="projection", miner="semi-hard"), ["--miner semi-hard"]),
    (dict(loss="contrastive"), ["--loss contrastive", "--miner", "--readout features"]),
    (dict(backbone="seed"), ["--readout features"]),  # the seed backbone has none
])
def test_the_collapse_warning_suggests_only_options_not_in_effect(options, not_suggested):
    from siamese_edge.training.trainer import collapse_message

    config = TrainConfig(data="d", out="o", **options)
    message = collapse_message({"val_genuine_mean": 0.9999, "val_impostor_mean": 0.9991},
                               config)
    assert message.startswith("the embedding has collapsed") and "\n" not in message
    for option in not_suggested:
        assert option not in message
    if config.loss == "triplet":
        assert "--loss contrastive" in message


def test_train_names_skipped_images_exits_3_and_warns_about_its_threshold(tmp_path):
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    (people / "a" / "broken.png").write_bytes(b"\x89PNG garbage")
    base = ["train", str(people), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size",
            "8", "--k-per-identity", "2", "--threads", "1"]
    result = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "r")])
    # it trained on the rest and said nothing: every other command names what it skipped
    assert result.exit_code == 3, result.output
    assert "skipped " in result.output and "broken.png" in result.output
    assert "1 unreadable image(s) left out of training" in result.output
    # four identities: validation holds out images, not identities, so the threshold is
    # measured on identities the model trained on
    assert "Calibrate it on held-out identities" in result.output
    (people / "a" / "broken.png").unlink()
    held_out = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "s"), "--val-split",
                                        "identity", "--val-fraction", "0.5", "--json"])
    assert held_out.exit_code == 0, held_out.output
    doc = json.loads(held_out.output[held_out.output.index("{"):])
    assert doc["threshold_caveat"] is None and doc["data_skipped"] == 0


def test_an_out_inside_the_image_folder_is_refused(tmp_path):
    # its curves.png was read back as an image of an identity by the next run
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    for out in (people / "a" / "run", people / "run", people):
        with pytest.raises(InvalidInputError, match="inside the image folder"):
            train(TrainConfig(data=str(people), out=str(out), epochs=1, steps_per_epoch=1,
                              batch_size=8, k_per_identity=2, threads=1))
    assert sorted(p.name for p in people.iterdir()) == ["a", "b", "c", "d"]


def test_the_threshold_source_states_the_share_really_held_out(tmp_path):
    # --val-fraction 0.01 holds out two images per class (the least for a genuine pair):
    # "1% of the images held out" understated it tenfold
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 10, (8, 8))
    result = train(TrainConfig(data=str(people), out=str(tmp_path / "r"), epochs=1,
                               steps_per_epoch=1, batch_size=8, k_per_identity=2, threads=1,
                               val_fraction=0.01, val_split="sample"))
    assert result.info["num_val_images"] == 8
    assert result.info["threshold_source"].endswith("20% of the images held out")


def test_the_best_epoch_is_not_validated_twice_and_long_steps_are_announced(tmp_path,
                                                                           monkeypatch):
    # a final validation of the weights the last epoch had just validated took ~50 s on a
    # 20,000-image folder, silently, as did reading the data
    from model_factory import write_random_people

    from siamese_edge.training import trainer

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    real_validate = trainer.Trainer.validate
    monkeypatch.setattr(trainer.Trainer, "selection_key", property(lambda self: "val_eer"))

    for eer_of_call, best, validations in ((lambda n: 1.0 / n, 2, 2),  # the last is best
                                           (lambda n: float(n), 1, 3)):  # the first is
        calls = []

        def scripted(self, eer_of_call=eer_of_call, calls=calls):
            calls.append(1)
            return {**real_validate(self), "val_eer": eer_of_call(len(calls))}

        monkeypatch.setattr(trainer.Trainer, "validate", scripted)
        events = []
        result = train(TrainConfig(data=str(people), out=str(tmp_path / f"r{best}"), epochs=2,
                                   steps_per_epoch=1, batch_size=8, k_per_identity=2,
                                   threads=1), events.append)
        assert result.info["best_epoch"] == best and len(calls) == validations
        statuses = [e["message"] for e in events if e["event"] == "status"]
        assert statuses[0] == f"reading {people}"
        assert statuses[1].startswith("read 24 images of 4 identities (8x8, 1 channel)")
        assert ("validating the best epoch (1)" in statuses) == (best == 1)


def test_a_run_that_fails_before_writing_leaves_no_folder_and_one_image_is_not_data(tmp_path):
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))
    image = people / "a" / "0.png"
    result = CliRunner().invoke(cli, ["train", str(image), "--out", str(tmp_path / "r")])
    # it said "an IDX images file needs its labels file"
    assert result.exit_code == 1 and "one image; give a folder of identity folders" in \
        result.output
    assert not (tmp_path / "r").exists()  # the empty run folder went with the failure
    (tmp_path / "kept").mkdir()  # a folder the user made is theirs: it stays
    CliRunner().invoke(cli, ["train", str(image), "--out", str(tmp_path / "kept")])
    assert (tmp_path / "kept").is_dir()
