"""A built engine embeds like ONNX Runtime FP32 (needs an NVIDIA GPU and TensorRT)."""

from __future__ import annotations

import numpy as np
import pytest

from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder
from siamese_edge.tensorrt.builder import BatchProfile, EngineBuildOptions, build_engine

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu_tensorrt():
    from siamese_edge.tensorrt import load_tensorrt
    from siamese_edge.tensorrt.cuda_memory import device_count
    from siamese_edge.tensorrt.errors import TensorRTUnavailableError

    try:
        trt = load_tensorrt()
    except TensorRTUnavailableError as exc:
        pytest.skip(f"no TensorRT: {exc}")
    if device_count() == 0:
        pytest.skip("no CUDA device visible (or cuda-python missing)")
    return trt


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_onnxruntime_and_parity_passes(tmp_path, tiny_model, gpu_tensorrt,
                                                      precision):
    from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder

    engine = tmp_path / f"tiny.{precision}.engine"
    report = build_engine(tiny_model, engine, EngineBuildOptions(
        precision=precision, batch=BatchProfile(1, 8, 32), workspace_mb=256))
    assert report.parity is not None and report.parity["passed"], report.parity
    assert report.gpu_name and report.compute_capability
    images = [np.random.default_rng(i).integers(0, 256, (20, 20), dtype=np.uint8)
              for i in range(50)]
    with OnnxRuntimeEmbedder(tiny_model) as reference, \
            TensorRTEmbedder(engine, batch_size=16) as candidate:
        assert candidate.device_description.startswith("tensorrt (")
        a, b = reference.embed(images), candidate.embed(images)
    tolerance = 1e-3 if precision == "fp32" else 2e-2
    assert np.abs(a - b).max() < tolerance
    # a rebuild reuses the timing cache kept beside the engine (where this TensorRT has one)
    again = build_engine(tiny_model, engine, EngineBuildOptions(precision=precision,
                                                                 batch=BatchProfile(1, 8, 32)))
    assert again.timing_cache_reused or again.timing_cache is None


def test_backend_auto_picks_a_fresh_engine(tmp_path, tiny_model, gpu_tensorrt):
    from siamese_edge.runtime.backends import create_embedder

    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_model.read_bytes())
    build_engine(model, tmp_path / "m.engine", EngineBuildOptions(parity=False))
    with create_embedder(model) as embedder:
        assert embedder.device_description.startswith("tensorrt")
