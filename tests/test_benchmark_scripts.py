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
    spec.loader.exec_module(module)
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
