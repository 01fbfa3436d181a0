"""siamese-edge bench on the tiny generated model, a few iterations."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from siamese_edge.benchmarking import BACKENDS, REFERENCE, BenchConfig, format_report, \
    plot_report, run_benchmark, summarize, time_interleaved
from siamese_edge.errors import InvalidInputError

TIMING = ("p50_ms", "p99_ms", "mean_ms", "images_per_s")


@pytest.fixture(scope="module")
def report(tiny_model):
    config = BenchConfig(model=str(tiny_model), batches=(1, 4), iterations=5, warmup=1,
                         threads=1, gallery_size=200)
    return run_benchmark(config)


def test_report_schema(report):
    json.dumps(report)
    assert {"model", "machine", "settings", "reference", "backends", "skipped",
            "preprocessing", "gallery_search"} <= set(report)
    assert report["machine"]["logical_cores"] >= 1 and report["machine"]["cpu"]
    # every backend is either timed or skipped with a reason
    assert set(report["backends"]) | set(report["skipped"]) == set(BACKENDS)
    assert all(report["skipped"].values())
    assert "onnxruntime-cpu" in report["backends"]
    assert "torch" in report["skipped"]  # no --run given
    for section in [report["reference"], *report["backends"].values()]:
        assert set(section["results"]) == {"1", "4"}
        for row in section["results"].values():
            assert all(row[k] > 0 for k in TIMING), row
            assert row["iterations"] == 5 and row["p99_ms"] >= row["p50_ms"]
    row = report["backends"]["onnxruntime-cpu"]["results"]["1"]
    # on the medians, like the table's latency column (it was a mean-based throughput ratio)
    assert row["vs_reference"] == round(report["reference"]["results"]["1"]["p50_ms"]
                                        / row["p50_ms"], 3)
    for rows in report["preprocessing"].values():
        assert set(rows) == {"1", "4"} and all(r["p50_ms"] > 0 for r in rows.values())
    gallery = report["gallery_search"]
    assert gallery["templates"] == 200 and gallery["top_k"] == 5
    assert all(r["queries_per_s"] > 0 for r in gallery["results"].values())
    assert REFERENCE in format_report(report)


def test_torch_backend_with_a_module(tiny_model):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 8))
    report = run_benchmark(BenchConfig(model=str(tiny_model), batches=(2,), iterations=3,
                                       warmup=0, backends=("onnxruntime-cpu",),
                                       gallery_size=50), torch_model=net)
    assert report["backends"]["torch"]["results"]["2"]["images_per_s"] > 0
    assert report["backends"]["torch"]["input"].startswith("prepared")


def test_plot_written(report, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    plot_report(report, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interleaving_times_every_call_each_round():
    order = []
    timings = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b"),
                                "c": lambda: order.append("c")}, iterations=30, warmup=1)
    assert all(len(v) == 30 for v in timings.values())
    rounds = [tuple(order[i:i + 3]) for i in range(3, len(order), 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len(set(rounds)) > 1  # the order changes between rounds


def test_summarize():
    row = summarize([0.001] * 9 + [0.002], batch=4)
    assert row["p50_ms"] == 1.0 and row["p99_ms"] > 1.0
    assert row["images_per_s"] == pytest.approx(40 / 0.011, rel=1e-3)


@pytest.mark.parametrize("kwargs", [{"batches": (0,)}, {"iterations": 0},
                                    {"backends": ("cuda",)}, {"threads": 0}])
def test_bad_config(kwargs):
    with pytest.raises(InvalidInputError):
        BenchConfig(model="m.onnx", **kwargs)


def test_runner_failure_is_reported_not_raised(tiny_model):
    report = run_benchmark(BenchConfig(model=str(tiny_model), batches=(1,), iterations=2,
                                       warmup=0, backends=("tensorrt", "onnxruntime-cuda"),
                                       gallery_size=10))
    assert set(report["skipped"]) == {"tensorrt", "onnxruntime-cuda"} or \
        report["backends"]  # on a GPU machine they may run
    assert report["reference"]["results"]["1"]["images_per_s"] > 0
    assert np.isfinite(report["gallery_search"]["results"]["1"]["p50_ms"])


@pytest.mark.parametrize("script, args", [
    ("gallery_search.py", ["--n", "2000", "--repeats", "1", "--check-queries", "4"]),
    ("camera_loop.py", ["--frames", "12", "--repeats", "1"]),
])
def test_benchmark_scripts_keep_progress_off_stdout(script, args, tmp_path):
    """README: each benchmark prints progress on stderr and ends with one JSON line, so
    ``python benchmarks/X.py > result.json`` is a JSON document."""
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / script
    result = subprocess.run([sys.executable, str(path), *args], capture_output=True,
                            text=True, cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert isinstance(json.loads(result.stdout), dict), result.stdout[:500]
    assert result.stderr.strip()  # the progress is still shown


def test_gpu_check_without_torch_says_what_it_needs(tmp_path):
    """On a runtime-only device (no torch) ``gpu_check.py`` without ``--model`` cannot build
    its test model: one line saying so, not an ImportError traceback."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    hide_torch = textwrap.dedent(f"""
        import importlib.abc, runpy, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError("hidden by test", name=name)
        sys.meta_path.insert(0, Block())
        sys.argv = [{str(script)!r}, "--out", {str(tmp_path / "out")!r}]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", hide_torch], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "needs the train extra (torch missing)" in result.stderr
    assert "--model" in result.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                    reason="CPU pinning needs Linux sched_setaffinity")
def test_pinning_covers_preprocessing_and_gallery_search(tiny_model, monkeypatch):
    from siamese_edge import benchmarking

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("pinning to one CPU changes nothing on a one-CPU machine")
    seen = {}
    for name in ("_preprocessing", "_gallery_search"):
        original = getattr(benchmarking, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            seen[_name] = len(os.sched_getaffinity(0))
            return _original(*args, **kwargs)

        monkeypatch.setattr(benchmarking, name, spy)
    before = os.sched_getaffinity(0)
    report = run_benchmark(BenchConfig(model=str(tiny_model), batches=[1], iterations=2,
                                       warmup=0, threads=1, pin=True,
                                       backends=["onnxruntime-cpu"], gallery_size=50))
    assert report["settings"]["pinned"] is True
    assert seen == {"_preprocessing": 1, "_gallery_search": 1}  # they ran unpinned before
    assert report["machine"]["usable_cores"] == 1  # the cores the timings ran on, not all
    assert os.sched_getaffinity(0) == before  # and the affinity is restored


@pytest.mark.parametrize("size,identities", [(7, 2), (3, 1), (10, 2)])
def test_the_searched_gallery_has_exactly_the_asked_size(size, identities):
    from siamese_edge.benchmarking import _gallery_search

    result = _gallery_search(8, size, 2, [1], 2, 0, np.random.default_rng(0))
    assert (result["templates"], result["identities"]) == (size, identities)  # 7 was 5
