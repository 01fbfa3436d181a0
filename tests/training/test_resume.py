"""--resume: what a run directory must survive, and what a resumed run must notice."""

import io
import json

import pytest
import torch

from siamese_edge.errors import InvalidInputError
from siamese_edge.training.config import TrainConfig
from siamese_edge.training.trainer import train


@pytest.fixture
def people(tmp_path):
    from model_factory import write_random_people

    return write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, (8, 8))


def tiny(data, out, **overrides):
    options = dict(data=str(data), out=str(out), epochs=2, steps_per_epoch=2, batch_size=8,
                   k_per_identity=2, threads=1)
    options.update(overrides)
    return TrainConfig(**options)


def test_an_interrupted_save_keeps_the_previous_checkpoints_whole(people, tmp_path,
                                                                  monkeypatch):
    out = tmp_path / "r"
    real_save = torch.save
    saves = []

    def interrupted_save(obj, f, *args, **kwargs):
        # the second epoch's last.pt: half of it reaches the disk, then Ctrl-C
        saves.append(obj)
        if len(saves) == 2:
            buffer = io.BytesIO()
            real_save(obj, buffer)
            if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
                f = open(f, "wb")
            f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
            f.flush()
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(people, out))
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "last.pt", "log.jsonl"]
    resumed = train(tiny(people, out), resume=True)
    assert [r["epoch"] for r in resumed.log] == [1, 2]
    assert json.loads((out / "run.json").read_text())["best_epoch"] in (1, 2)


def _finished_run(people, out, **overrides):
    train(tiny(people, out, epochs=1, **overrides))
    return torch.load(out / "last.pt", weights_only=True)


def test_resume_errors_are_one_line(people, tmp_path):
    import numpy as np
    from click.testing import CliRunner

    from siamese_edge.cli import cli

    out = tmp_path / "r"
    state = _finished_run(people, out)
    args = ["train", str(people), "--out", str(out), "--epochs", "1", "--steps-per-epoch",
            "2", "--batch-size", "8", "--k-per-identity", "2", "--threads", "1", "--resume"]
    wrong = dict(state["state_dict"])
    name = next(k for k, v in wrong.items() if v.ndim == 4)
    wrong[name] = torch.zeros(3, 1, 3, 3)
    cases = [({"not": np.zeros(3)}, "not a resumable checkpoint"),  # weights-only refuses it
             ({**state, "state_dict": wrong}, "size mismatch")]
    for saved, expected in cases:
        torch.save(saved, out / "last.pt")
        with pytest.raises(InvalidInputError, match=expected) as error:
            train(tiny(people, out, epochs=1), resume=True)
        assert "\n" not in str(error.value) and "weights_only` set to `False" not in str(
            error.value)
        result = CliRunner().invoke(cli, args)
        # after the progress lines (reading the data), the error in one line
        errors = [line for line in result.stderr.splitlines() if not line.startswith("read")]
        assert result.exit_code == 1 and len(errors) == 1 and errors[0].startswith("error: ")
        assert expected in errors[0] and result.stdout == ""


def test_resume_accepts_the_same_data_by_another_spelling(people, tmp_path, monkeypatch):
    out = tmp_path / "r"
    _finished_run(people, out)
    monkeypatch.chdir(people.parent)
    for spelling in (f"{people}/", "people", "./people/", f"{people}/../people"):
        events = []
        resumed = train(tiny(spelling, out, epochs=1), events.append, resume=True)
        # the saved run continued (nothing left of its one epoch), not a fresh one
        assert [r["epoch"] for r in resumed.log] == [1]
        assert any(e["event"] == "nothing_to_train" for e in events)


def test_resume_refuses_other_data_at_the_same_path(people, tmp_path):
    import shutil

    from model_factory import write_random_people

    out = tmp_path / "r"
    _finished_run(people, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    shutil.rmtree(people / "d")
    write_random_people(people, ("e",), 6, (8, 8), seed=1)  # same count, another identity
    with pytest.raises(InvalidInputError, match=r"identities gone: d; identities added: e"):
        train(tiny(people, out, epochs=1), resume=True)
    shutil.rmtree(people / "e")
    write_random_people(people, ("d",), 7, (8, 8))  # d is back, with one image more
    with pytest.raises(InvalidInputError, match="24 images then, 25 now") as error:
        train(tiny(people, out, epochs=1), resume=True)
    assert "\n" not in str(error.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _interrupted_in_epoch(epoch):
    def progress(event):
        if event["event"] == "step" and event["epoch"] == epoch:
            raise KeyboardInterrupt
    return progress


def test_runs_saved_before_the_data_was_recorded_still_resume(people, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(people, out), _interrupted_in_epoch(2))
    state = torch.load(out / "last.pt", weights_only=True)
    del state["data"]
    torch.save(state, out / "last.pt")
    resumed = train(tiny(f"{people}/", out), resume=True)
    assert [r["epoch"] for r in resumed.log] == [1, 2]


@pytest.fixture
def flat_validation(monkeypatch):
    """Validation that never improves after the first epoch: patience 1 stops at epoch 2."""
    from siamese_edge.training.trainer import Trainer

    real = Trainer.validate

    def flat(self):
        scores = real(self)
        return {**scores, **{k: 0.25 for k in ("val_eer", "val_eer_training") if k in scores}}

    monkeypatch.setattr(Trainer, "validate", flat)


def test_resume_decides_early_stopping_under_the_new_patience(people, tmp_path,
                                                              flat_validation):
    from click.testing import CliRunner

    from siamese_edge.cli import cli

    out = tmp_path / "r"
    stopped = train(tiny(people, out, epochs=5, patience=1))
    assert [r["epoch"] for r in stopped.log] == [1, 2]
    args = ["train", str(people), "--out", str(out), "--epochs", "5", "--steps-per-epoch",
            "2", "--batch-size", "8", "--k-per-identity", "2", "--threads", "1", "--resume"]
    result = CliRunner().invoke(cli, args + ["--patience", "1"])
    assert result.exit_code == 0 and "nothing left to train" in result.output, result.output
    assert "--patience 1" in result.output and "\nepoch " not in result.output
    events = []
    longer = train(tiny(people, out, epochs=5, patience=3), events.append, resume=True)
    assert [r["epoch"] for r in longer.log] == [1, 2, 3, 4]
    assert not [e for e in events if e["event"] == "nothing_to_train"]
    never = train(tiny(people, out, epochs=5, patience=0), resume=True)
    assert [r["epoch"] for r in never.log] == [1, 2, 3, 4, 5]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "all its 5 epochs" in result.output, result.output


def test_resume_alone_continues_with_the_runs_own_options(people, tmp_path):
    # a run started with --miner semi-hard (margin 0.2) was refused on a bare --resume:
    # the defaults (batch-hard, margin 0.02) counted as changed options
    from click.testing import CliRunner

    from siamese_edge.cli import cli

    out = tmp_path / "r"
    start = ["train", str(people), "--out", str(out), "--steps-per-epoch", "2",
             "--batch-size", "8", "--k-per-identity", "2", "--threads", "1", "--seed", "4",
             "--miner", "semi-hard", "--no-augment"]
    result = CliRunner().invoke(cli, [*start, "--epochs", "2"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(out), "--resume",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert "nothing left to train" in result.stderr
    assert [r["epoch"] for r in json.loads(result.stdout)["log"]] == [1, 2]
    saved = json.loads((out / "config.json").read_text())
    assert (saved["miner"], saved["margin"], saved["seed"], saved["augment"]) == \
        ("semi-hard", 0.2, 4, False)
    # an option given now still counts, and one that changes the training is refused
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(out), "--resume",
                                      "--miner", "batch-hard"])
    assert result.exit_code == 1 and "miner ('semi-hard' -> 'batch-hard')" in result.output


def test_an_interrupted_run_says_how_to_go_on(people, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from siamese_edge.cli import cli
    from siamese_edge.training import trainer
    from siamese_edge.training.checkpoint import load_run
    from siamese_edge.errors import ModelError

    out = tmp_path / "r"
    real_save_last = trainer.Trainer._save_last

    def save_then_interrupt(self, epoch, *args, **kwargs):
        real_save_last(self, epoch, *args, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.Trainer, "_save_last", save_then_interrupt)
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(out), "--epochs", "3",
                                      "--steps-per-epoch", "1", "--batch-size", "8",
                                      "--k-per-identity", "2", "--threads", "1"])
    assert result.exit_code == 130
    assert f"continue from the last finished epoch with: siamese-edge train {people} --out " \
           f"{out} --resume" in result.stderr
    # export's error said "not a training run"
    with pytest.raises(ModelError, match="an unfinished training run.*--resume"):
        load_run(out)


def test_resuming_with_another_thread_count_says_it_will_not_repeat_the_run(people, tmp_path):
    out = tmp_path / "r"
    train(tiny(people, out, epochs=1))
    events = []
    train(tiny(people, out, epochs=1, threads=2), events.append, resume=True)
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("trained with 1 threads and continues with 2" in w for w in warnings)
    events.clear()
    train(tiny(people, out, epochs=1), events.append, resume=True)
    assert not any("threads" in e.get("message", "") for e in events)


def test_resume_takes_back_the_options_an_earlier_version_required(people, tmp_path):
    # before, --resume needed every option again: --loss contrastive --miner batch-hard
    # re-passed must not be refused as "does nothing" (the run's config.json records both)
    from click.testing import CliRunner

    from siamese_edge.cli import cli

    out = tmp_path / "r"
    train(tiny(people, out, loss="contrastive", epochs=1))
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(out), "--resume",
                                      "--loss", "contrastive", "--miner", "batch-hard"])
    assert result.exit_code == 0, result.output
