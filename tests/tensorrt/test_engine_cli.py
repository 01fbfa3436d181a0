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
    assert result.exit_code == 2 and "1 <= min <= opt <= max" in result.output  # usage
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


NATIVE_PRINTS = """
import ctypes, os, sys
from siamese_edge.tensorrt.native_stdout import native_stdout_to_stderr
libc = ctypes.CDLL(None)
with native_stdout_to_stderr():
    os.write(1, b"WARNING: unbuffered native line\\n")
    libc.printf(b"WARNING: buffered C stdio line\\n")
try:
    with native_stdout_to_stderr():
        raise RuntimeError("boom")
except RuntimeError:
    pass
print('{"ok": true}')
"""


def test_native_prints_go_to_stderr_and_stdout_is_restored_after_errors():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", NATIVE_PRINTS], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True}
    assert "unbuffered native line" in result.stderr and "buffered C stdio" in result.stderr


def test_fp16_json_stdout_is_strict_json_despite_native_warnings(tmp_path, tiny_model):
    """TensorRT-RTX warns on stdout (fd 1) about an FP32 Clip bound cast to FP16."""
    import subprocess
    import sys

    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from siamese_edge.tensorrt import load_tensorrt
    from siamese_edge.tensorrt.errors import TensorRTUnavailableError

    try:
        load_tensorrt()
    except TensorRTUnavailableError as exc:
        pytest.skip(str(exc))
    model = onnx.load(str(tiny_model))
    nodes = model.graph.node
    norm = next(i for i, n in enumerate(nodes) if n.op_type == "ReduceL2")
    nodes[norm].output[0] = "n_raw"
    nodes.insert(norm + 1, helper.make_node("Clip", ["n_raw", "eps"], ["n"]))
    model.graph.initializer.append(numpy_helper.from_array(np.array(1e-12, np.float32), "eps"))
    onnx.save(model, str(tmp_path / "clip.onnx"))
    result = subprocess.run(
        [sys.executable, "-c", "from siamese_edge.cli import main; main()", "engine",
         str(tmp_path / "clip.onnx"), "--out", str(tmp_path / "c.engine"), "--precision",
         "fp16", "--no-parity", "--json"], capture_output=True, text=True, timeout=300)
    if result.returncode and "CUDA" in result.stderr:
        pytest.skip(f"this TensorRT cannot build without a GPU: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["precision"] == "fp16"
