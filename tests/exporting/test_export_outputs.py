"""Where export may write: never over the run it reads, and bad paths are one-line errors."""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from siamese_edge.cli import cli
from siamese_edge.errors import InvalidInputError
from siamese_edge.exporting.onnx_export import export_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from model_factory import write_random_people

    from siamese_edge.training.config import TrainConfig
    from siamese_edge.training.trainer import train

    root = tmp_path_factory.mktemp("tiny")
    people = write_random_people(root / "people", ("a", "b", "c", "d"), 6, (8, 8))
    train(TrainConfig(data=str(people), out=str(root / "run"), epochs=1, steps_per_epoch=2,
                      batch_size=8, k_per_identity=2, threads=1))
    return root / "run"


def _snapshot(run):
    return {p.name: p.read_bytes() for p in run.iterdir()}


def _one_line_error(result):
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()  # after the "exporting ..." progress line, if any
    assert lines[-1].startswith("error: "), result.output
    assert "Traceback" not in result.output and len(lines) <= 2, result.output
    assert all(line.startswith("exporting ") for line in lines[:-1]), result.output


@pytest.mark.parametrize("name", ["checkpoint.pt", "last.pt", "config.json", "run.json",
                                  "log.jsonl"])
def test_an_out_that_is_a_file_of_the_run_is_refused(tiny_run, name):
    before = _snapshot(tiny_run)
    for out in (tiny_run / name, tiny_run / ".." / tiny_run.name / name):
        result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(out),
                                          "--overwrite"])
        _one_line_error(result)
        assert name in result.output
    assert _snapshot(tiny_run) == before


def test_a_link_to_a_run_file_and_the_library_call_are_refused(tiny_run, tmp_path):
    before = _snapshot(tiny_run)
    link = tmp_path / "model.onnx"
    os.symlink(tiny_run / "checkpoint.pt", link)
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(link),
                                      "--overwrite"])
    _one_line_error(result)
    with pytest.raises(InvalidInputError, match="run's own checkpoint.pt"):
        export_run(tiny_run, link)
    with pytest.raises(InvalidInputError, match="run directory"):
        export_run(tiny_run, tiny_run)
    assert _snapshot(tiny_run) == before


def test_an_engine_whose_files_are_run_files_is_refused_before_exporting(tiny_run, tmp_path):
    before = _snapshot(tiny_run)
    # an engine at RUN/run writes its sidecar to RUN/run.json
    for engine in (tiny_run / "last.pt", tiny_run / "run"):
        result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out",
                                          str(tmp_path / "m.onnx"), "--engine", str(engine)])
        _one_line_error(result)
        assert "--engine" in result.output
    assert not (tmp_path / "m.onnx").exists()
    assert _snapshot(tiny_run) == before


def test_an_out_where_no_file_can_be_written_is_one_line(tiny_run, tmp_path):
    (tmp_path / "some_file").write_text("kept")
    for out in ("/proc/siamese-edge.onnx", tmp_path / "some_file" / "x.onnx"):
        result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(out)])
        _one_line_error(result)
        assert str(out) in result.output
    assert (tmp_path / "some_file").read_text() == "kept"


@pytest.mark.parametrize("options", [["--target", "cpu-onnx"], ["--batch", "8:1:2"],
                                     ["--precision", "int8"]])
def test_engine_options_that_build_nothing_fail_before_the_onnx_is_written(tiny_run, tmp_path,
                                                                           options):
    out = tmp_path / "m.onnx"
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(out),
                                          "--engine", str(tmp_path / "m.engine"),
                                          *options, *extra])
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        assert not out.exists() and not (tmp_path / "m.engine").exists()


def test_no_tensorrt_is_said_before_the_onnx_is_written(tiny_run, tmp_path, monkeypatch):
    from siamese_edge import tensorrt
    from siamese_edge.tensorrt.errors import TensorRTUnavailableError

    def missing(preferred=None):
        raise TensorRTUnavailableError("TensorRT is not installed here")

    monkeypatch.setattr(tensorrt, "load_tensorrt", missing)
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(out), "--engine",
                                      str(tmp_path / "m.engine")])
    _one_line_error(result)
    assert "not installed" in result.output and not out.exists()  # the ONNX came first


def test_the_smallest_images_train_accepts_export_within_tolerance(tmp_path):
    from model_factory import write_random_people

    from siamese_edge.training.config import TrainConfig
    from siamese_edge.training.oriented_gradients import MIN_SIZE
    from siamese_edge.training.trainer import train

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6,
                                 (MIN_SIZE, MIN_SIZE))
    train(TrainConfig(data=str(people), out=str(tmp_path / "r"), epochs=1, steps_per_epoch=2,
                      batch_size=8, k_per_identity=2, threads=1))
    for seed in range(3):  # the parity batches differ with the seed
        report = export_run(tmp_path / "r", tmp_path / f"m{seed}.onnx", seed=seed)
        assert report.max_abs_diff <= report.tolerance


def test_engine_settings_without_an_engine_are_said_not_dropped(tiny_run, tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(out),
                                      "--precision", "fp16"])
    assert result.exit_code == 2 and "--engine" in result.output and not out.exists()
    result = CliRunner().invoke(cli, ["export", str(tiny_run), "--out", str(out), "--target",
                                      "jetson-jp5-fp16"])
    assert result.exit_code == 0, result.output  # the ONNX, at the target's opset
    assert "only the target's opset is used" in result.output


@pytest.mark.parametrize("model", ["export", "shipped"])
def test_models_are_written_at_an_ir_version_older_onnx_runtimes_read(tiny_run, tmp_path,
                                                                       model):
    # torch writes IR 10, which ONNX Runtime before 1.18 (JetPack 5 has 1.16) refuses
    import onnx

    from siamese_edge.exporting.onnx_export import MAX_IR_VERSION

    if model == "export":
        path = tmp_path / "m.onnx"
        export_run(tiny_run, path)
    else:
        path = Path(__file__).resolve().parents[2] / "models" / "fashion-mnist.onnx"
    assert onnx.load(str(path), load_external_data=False).ir_version <= MAX_IR_VERSION == 9


def test_a_model_too_new_for_onnx_runtime_says_so(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from siamese_edge.errors import ModelError
    from siamese_edge.runtime.model_file import open_session

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    model.ir_version = 99
    onnx.save(model, str(tmp_path / "future.onnx"))
    with pytest.raises(ModelError, match=r"too old for the model \(Unsupported model IR "
                                         r"version: 99"):
        open_session(tmp_path / "future.onnx")
