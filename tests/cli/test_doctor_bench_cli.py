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
        assert plot.stat().st_size > 0 and report["plot"] == str(plot)


def test_bench_text_and_bad_options(tiny_model):
    result = run("bench", "--model", tiny_model, "--batch", "1", "--iterations", "2",
                 "--gallery-size", "10", "--backends", "onnxruntime-cpu")
    assert result.exit_code == 0, result.output
    assert "onnxruntime-cpu" in result.output and "gallery search" in result.output
    assert "batch 1: timing" in result.stderr and "warning" not in result.stderr  # progress
    assert run("bench", "--model", tiny_model, "--batch", "x").exit_code == 2
    assert run("bench", "--model", tiny_model, "--backends", "nope").exit_code == 2
    result = run("bench", "--model", tiny_model, "--plot", "times.txt")  # a traceback after
    assert result.exit_code == 1 and "use .png, .pdf, .svg" in result.output  # all timing
    result = run("bench", "--model", tiny_model, "--pin")  # used to be silently ignored
    assert result.exit_code == 2 and "--pin needs --threads" in result.output
    result = run("bench", "--model", "missing.onnx")
    assert result.exit_code == 1 and "error:" in result.output


def test_bench_refuses_a_plot_folder_that_does_not_exist_before_timing(tiny_model, tmp_path,
                                                                       monkeypatch):
    from siamese_edge import benchmarking

    def must_not_run(*args, **kwargs):
        raise AssertionError("benchmark ran before --plot was checked")

    monkeypatch.setattr(benchmarking, "run_benchmark", must_not_run)
    result = run("bench", "--model", tiny_model, "--plot", tmp_path / "missing" / "b.png")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_bench_prints_the_results_even_when_the_plot_cannot_be_written(tiny_model,
                                                                       monkeypatch):
    from siamese_edge import benchmarking

    def disk_full(report, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(benchmarking, "plot_report", disk_full)
    result = run("bench", "--model", tiny_model, "--batch", "1", "--iterations", "1",
                 "--warmup", "0", "--backends", "onnxruntime-cpu", "--gallery-size", "10",
                 "--json", "--plot", "b.png")
    assert result.exit_code == 1 and "No space left" in result.stderr
    report = json.loads(result.stdout)
    assert report["reference"]["results"]["1"]["iterations"] == 1
    assert "No space left" in report["error"] and "plot" not in report


def test_bench_refuses_a_batch_too_large_to_allocate(tiny_model):
    result = run("bench", "--model", tiny_model, "--batch", "1,100000000")
    assert result.exit_code == 2 and "4096" in result.output


def test_bench_takes_the_model_and_engine_from_the_environment(tiny_model, monkeypatch):
    # the container sets them; bench asked for --model and looked for MODEL.engine instead
    monkeypatch.setenv("SIAMESE_EDGE_MODEL", str(tiny_model))
    monkeypatch.setenv("SIAMESE_EDGE_ENGINE", "/nowhere/from-env.engine")
    result = run("bench", "--batch", "1", "--iterations", "1", "--warmup", "0",
                 "--gallery-size", "10", "--backends", "tensorrt", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["path"] == str(tiny_model)
    assert "from-env.engine" in report["skipped"]["tensorrt"]
