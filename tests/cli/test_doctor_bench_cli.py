"""doctor and bench through the CLI."""

import json

import pytest
from click.testing import CliRunner

from siamese_edge.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("command", ["doctor", "bench"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {command}" in result.output or command in result.output


def test_doctor_json_and_text():
    result = run("doctor", "--json", "--no-cameras")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["probes"]["onnxruntime"]["providers"]["CPUExecutionProvider"]["status"] \
        == "works"
    result = run("doctor", "--no-cameras")
    assert result.exit_code == 0 and "onnxruntime" in result.output and "backends:" in \
        result.output


def test_bench_json_and_plot(tiny_model, tmp_path):
    plot = tmp_path / "b.png"
    args = ["bench", "--model", tiny_model, "--batch", "1,2", "--iterations", "3", "--warmup",
            "1", "--threads", "1", "--gallery-size", "100", "--json"]
    try:
        import matplotlib  # noqa: F401
        args += ["--plot", plot]
    except ImportError:
        plot = None
    result = run(*args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for batch in ("1", "2"):
        for key in ("p50_ms", "p99_ms", "images_per_s"):
            assert report["reference"]["results"][batch][key] > 0
            assert report["backends"]["onnxruntime-cpu"]["results"][batch][key] > 0
    if plot is not None:
        assert plot.stat().st_size > 0


def test_bench_text_and_bad_options(tiny_model):
    result = run("bench", "--model", tiny_model, "--batch", "1", "--iterations", "2",
                 "--gallery-size", "10", "--backends", "onnxruntime-cpu")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-cpu" in result.output and "gallery search" in result.output
    assert run("bench", "--model", tiny_model, "--batch", "x").exit_code == 2
    assert run("bench", "--model", tiny_model, "--backends", "nope").exit_code == 2
    result = run("bench", "--model", "missing.onnx")
    assert result.exit_code == 1 and "error:" in result.output
