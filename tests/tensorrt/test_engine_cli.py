"""``siamese-edge engine``: help, one-line user errors, and a real build where TensorRT is."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from siamese_edge.cli.engine import build_engine_command


def test_help_lists_every_option():
    result = CliRunner().invoke(build_engine_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--out", "--precision", "--batch", "--workspace", "--calib", "--target",
                   "--json"):
        assert option in result.output


def test_bad_batch_and_target_are_user_errors(tiny_model):
    from siamese_edge.errors import SiameseEdgeError

    runner = CliRunner()
    result = runner.invoke(build_engine_command, [str(tiny_model), "--batch", "8:1:2"])
    assert isinstance(result.exception, SiameseEdgeError)
    result = runner.invoke(build_engine_command, [str(tiny_model), "--target", "cpu-onnx"])
    assert isinstance(result.exception, SiameseEdgeError) and "no engine" in str(result.exception)


def test_json_report_of_a_real_build(tmp_path, tiny_model):
    from siamese_edge.tensorrt import load_tensorrt
    from siamese_edge.tensorrt.errors import TensorRTUnavailableError

    try:
        load_tensorrt()
    except TensorRTUnavailableError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "t.engine"
    result = CliRunner().invoke(build_engine_command, [str(tiny_model), "--out", str(out),
                                                       "--batch", "1:2:4", "--json"])
    if result.exit_code and "CUDA" in str(result.exception):
        pytest.skip(f"this TensorRT cannot build without a GPU: {result.exception}")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["batch"] == "1:2:4" and out.is_file()


@pytest.mark.parametrize("command", ["engine", "export"])
def test_engine_path_that_is_the_model_is_refused_and_the_model_kept(tmp_path, tiny_model,
                                                                     command):
    from siamese_edge.cli.export import export
    from siamese_edge.errors import SiameseEdgeError

    model = tmp_path / "model.onnx"
    model.write_bytes(tiny_model.read_bytes())
    args = ([str(model), "--out", str(model)] if command == "engine"
            else [str(model), "--engine", str(model)])
    result = CliRunner().invoke(build_engine_command if command == "engine" else export, args)
    assert isinstance(result.exception, SiameseEdgeError)
    assert "the model" in str(result.exception)
    assert model.read_bytes() == tiny_model.read_bytes()


def test_corrupt_graph_with_intact_metadata_is_a_one_line_model_error(tmp_path, tiny_model):
    pytest.importorskip("onnx")
    from siamese_edge.errors import ModelError
    from siamese_edge.model_info import METADATA_KEY
    from siamese_edge.onnx_metadata import write_metadata_entry
    from siamese_edge.runtime.model_file import read_model_info

    model = tmp_path / "flip.onnx"
    model.write_bytes(b"\x3a\x04\xff\xff\xff\xff")  # field 7 (graph): bytes protobuf rejects
    write_metadata_entry(model, METADATA_KEY, read_model_info(tiny_model).to_json())
    result = CliRunner().invoke(build_engine_command, [str(model), "--out",
                                                       str(tmp_path / "flip.engine")])
    assert isinstance(result.exception, ModelError)
    assert "ONNX graph is unreadable" in str(result.exception)
    assert "\n" not in str(result.exception)
