"""The benchmark scripts (benchmarks/*.py): what their targets judge, how they time, and that
they fail in one line. Most tests import a script and stub its slow parts; the few that run
one keep it to seconds."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load_script(name: str):
    """A benchmark script as a module (its ``main`` does not run)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved  # the script puts benchmarks/ (and the root) first
    return module


def run_script(path: Path, *args: str, hide: tuple = (), timeout: int = 120):
    """Run a script as ``python path args``, with the modules in ``hide`` made unimportable
    (as on a machine without them)."""
    code = f"""
import importlib.abc, runpy, sys
hidden = {list(hide)!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in hidden):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = {[str(path), *args]!r}
runpy.run_path(sys.argv[0], run_name="__main__")
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


# -- runtime_overhead.py ------------------------------------------------------------------
def _row(ratio: float) -> dict:
    return {"embed_vs_session": ratio, "embed_vs_torch": 5.0}


def test_runtime_overhead_judges_batch_1_wherever_it_is_listed():
    targets = load_script("runtime_overhead").batch1_targets({"32": _row(0.95), "1": _row(0.886)})
    # --batches 32,1 judged batch 32 (the first listed) and passed
    assert targets["embed_vs_session_batch1_ge_0.90"] is False
    assert targets["embed_vs_torch_batch1_ge_3x"] is True


def test_runtime_overhead_without_batch_1_does_not_pass_the_batch_1_targets(tiny_model):
    result = run_script(BENCHMARKS / "runtime_overhead.py", "--model", str(tiny_model),
                        "--batches", "8", "--iterations", "2", "--warmup", "0",
                        "--threads", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert set(report["results"]) == {"8"}
    assert report["targets"] == {"embed_vs_session_batch1_ge_0.90": None,
                                 "embed_vs_torch_batch1_ge_3x": None}
    assert "batch 1 not in --batches" in result.stderr


# -- camera_loop.py -----------------------------------------------------------------------
def test_camera_loop_face_target_needs_a_face():
    """Without scikit-image the video has no face: the face loop embeds nothing (regions per
    frame 0, embed p50 0.00 ms), and its FPS, the detector's alone, passed the target."""
    result = run_script(BENCHMARKS / "camera_loop.py", "--frames", "12", "--repeats", "1",
                        hide=("skimage",))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["content"] == "synthetic pattern"
    assert report["face_regions_per_frame"] == 0
    assert report["targets_met"]["face_loop_ge_25fps"] is None
    assert "no face" in report["targets_not_applicable"]["face_loop_ge_25fps"]
    assert "face_loop_ge_25fps not applicable: no face" in result.stderr


def test_camera_loop_interleaves_decoding_and_the_loops_after_a_warm_up(monkeypatch, capsys):
    """loop_vs_decode and the decode scaling are ratios: each round runs every variant once,
    after one untimed run of each (first calls pay for set-up); they ran in blocks, all
    decodes then all loops, without a warm-up."""
    import cv2

    from siamese_edge.runtime import onnxruntime_embedder

    camera_loop = load_script("camera_loop")
    calls = []

    def decode(video):
        calls.append("decode")
        return {"fps": 1000.0, "cpu_ms_per_frame": 1.0}

    def two_threads(video, *args):
        calls.append("decode_2_threads")
        return {"fps": 1500.0} if not args else 1.5

    def loop(embedder, video, roi, detector=None):
        calls.append("full" if detector else roi)
        return {"fps": 500.0, "cpu_ms_per_frame": 2.0, "regions_per_frame": 1.0,
                "latency_ms": {stage: {"p50": 1.0, "p99": 2.0}
                               for stage in ("capture", "detect", "embed", "match")}}

    monkeypatch.setattr(camera_loop, "limit_cores", lambda cores: cores)  # no pinning here
    monkeypatch.setattr(cv2, "setNumThreads", lambda threads: None)
    monkeypatch.setattr(camera_loop, "make_video", lambda path, frames: "astronaut")
    monkeypatch.setattr(onnxruntime_embedder, "OnnxRuntimeEmbedder", lambda *a, **k: None)
    monkeypatch.setattr(camera_loop, "decode_fps", decode)
    monkeypatch.setattr(camera_loop, "loop_fps", loop)
    for name in ("parallel_decode_fps", "parallel_decode_scaling"):  # new and old name
        monkeypatch.setattr(camera_loop, name, two_threads, raising=False)
    monkeypatch.setattr(sys, "argv", ["camera_loop.py", "--model", "m.onnx", "--repeats", "3"])
    camera_loop.main()

    variants = {"decode", "decode_2_threads", "whole", "face", "full"}
    assert set(calls[:5]) == variants, calls  # the warm-up: one run of each first
    rounds = [calls[i:i + 5] for i in range(5, len(calls), 5)]
    assert len(rounds) == 3 and all(set(r) == variants for r in rounds), calls
    report = json.loads(capsys.readouterr().out)
    assert report["loop_vs_decode"] == 0.5 and report["parallel_decode_scaling"] == 1.5


# -- gallery_search.py --------------------------------------------------------------------
def test_gallery_search_times_both_indexes_side_by_side(monkeypatch, capsys):
    """batch64_speedup_vs_faiss compares the two indexes: their searches alternate round by
    round; all SearchIndex timings came first, then all faiss timings."""
    faiss = pytest.importorskip("faiss")
    from siamese_edge.runtime.search_index import SearchIndex

    gallery_search = load_script("gallery_search")
    calls = []

    def spy(cls, label):
        original = cls.search

        def search(self, queries, *args, **kwargs):
            calls.append(label)
            return original(self, queries, *args, **kwargs)
        monkeypatch.setattr(cls, "search", search)

    spy(SearchIndex, "index")
    spy(faiss.IndexFlatIP, "faiss")
    monkeypatch.setattr(sys, "argv", ["gallery_search.py", "--n", "2000", "--repeats", "3",
                                      "--check-queries", "4"])
    gallery_search.main()
    first_faiss = calls.index("faiss")
    assert calls[first_faiss:].count("index") >= 6, calls  # 3 rounds of batch 1 and 64
    report = json.loads(capsys.readouterr().out)
    assert report["exact"] and report["faiss_exact"]
    assert report["batch64_speedup_vs_faiss"] > 0 and report["batch1_over_read"] > 0


# -- one-line errors ----------------------------------------------------------------------
@pytest.mark.parametrize("script, args, hide, expected", [
    ("accuracy_unseen.py", ["--losses", "triplet"], ("torch",),
     "needs the train extra (torch missing): pip install 'siamese-edge[train]'"),
    ("runtime_overhead.py", ["--iterations", "2"], ("torch",),
     "(torch missing): pip install 'siamese-edge[train]'; without --model"),
    ("camera_loop.py", ["--frames", "5", "--repeats", "1"], ("onnx",),
     "(onnx missing): pip install 'siamese-edge[train]'; without --model"),
    ("camera_loop.py", ["--model", "/nonexistent.onnx", "--frames", "5", "--repeats", "1"], (),
     "/nonexistent.onnx: no such model file"),
    ("runtime_overhead.py", ["--model", "/nonexistent.onnx"], (),
     "/nonexistent.onnx: no such model file"),
    ("gpu_check.py", ["--model", "/nonexistent.onnx", "--out", "{tmp}/out"], (),
     "/nonexistent.onnx: no such model file"),
    ("../models/make_samples.py", ["--root", "{tmp}/none", "--out", "{tmp}/samples"], (),
     "t10k-images-idx3-ubyte.gz: cannot read"),
])
def test_scripts_fail_in_one_line(script, args, hide, expected, tmp_path):
    """A missing package, model or data set was a traceback (ModuleNotFoundError, ModelError,
    DatasetError); it is one line naming the script, and exit status 1."""
    path = (BENCHMARKS / script).resolve()
    result = run_script(path, *(a.format(tmp=tmp_path) for a in args), hide=hide)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{path.stem}: ") and expected in line, line


def test_a_missing_module_of_siamese_edge_keeps_its_traceback():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _script import missing_message
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert missing_message(ModuleNotFoundError("x", name="siamese_edge.nothing")) is None
    assert missing_message(ModuleNotFoundError("x", name="faiss.swigfaiss")) == \
        "needs the faiss extra (faiss missing): pip install 'siamese-edge[faiss]'"
    assert missing_message(ModuleNotFoundError("x", name="sklearn")) == \
        "needs scikit-learn (sklearn missing): pip install 'scikit-learn'"
