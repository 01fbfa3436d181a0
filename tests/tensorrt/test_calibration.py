"""Calibration images use the model's own preprocessing; the explicit-quantization (Q/DQ)
model still runs in ONNX Runtime, stays near FP32, and passes the TensorRT op check."""

from __future__ import annotations

import numpy as np
import pytest

from siamese_edge.errors import InvalidInputError
from siamese_edge.model_info import METADATA_KEY
from siamese_edge.runtime.embedder import l2_normalize
from siamese_edge.runtime.imageio import write_image
from siamese_edge.runtime.model_file import read_model_info
from siamese_edge.runtime.preprocess import fit_images, normalize
from siamese_edge.tensorrt.calibration import load_image_sample, write_qdq_model
from siamese_edge.tensorrt.op_support import require_op_support
from siamese_edge.tensorrt.parity import compare_embeddings


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    for person in ("ann", "ben", "cat"):
        (tmp_path / "imgs" / person).mkdir(parents=True)
        base = rng.integers(0, 256, (24, 24), dtype=np.uint8)
        for i in range(20):
            noise = rng.integers(-20, 20, (24, 24))
            write_image(tmp_path / "imgs" / person / f"{i}.png",
                        np.clip(base + noise, 0, 255).astype(np.uint8))
    (tmp_path / "imgs" / "ann" / "broken.png").write_bytes(b"not an image")
    return tmp_path / "imgs"


def test_sample_is_preprocessed_like_the_runtime(image_dir, tiny_model):
    info = read_model_info(tiny_model)
    sample = load_image_sample(image_dir, info, limit=1000)
    assert sample.batch.shape == (60, 1, 16, 16) and sample.batch.dtype == np.float32
    assert sorted(set(sample.labels)) == ["ann", "ben", "cat"]  # broken file skipped
    from siamese_edge.runtime.imageio import read_image
    pre = info.preprocessing
    first = normalize(fit_images([read_image(sample.paths[0])], pre.height, pre.width,
                                 pre.channels), pre.mean, pre.std)
    np.testing.assert_array_equal(sample.batch[:1], first)
    assert len(load_image_sample(image_dir, info, limit=10).batch) == 10


def test_empty_calibration_folder_is_a_user_error(tmp_path, tiny_model):
    with pytest.raises(InvalidInputError, match="no images"):
        load_image_sample(tmp_path, read_model_info(tiny_model))


def test_qdq_model_runs_in_onnxruntime_near_fp32(tmp_path, image_dir, tiny_model):
    pytest.importorskip("onnx")
    import onnxruntime as ort

    info = read_model_info(tiny_model)
    sample = load_image_sample(image_dir, info)
    out = write_qdq_model(tiny_model, tmp_path / "tiny.qdq.onnx", sample.batch, info)
    counts = require_op_support(out).op_counts
    assert counts.get("QuantizeLinear", 0) > 0 and counts.get("DequantizeLinear", 0) > 0
    quantized = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert METADATA_KEY in quantized.get_modelmeta().custom_metadata_map
    assert read_model_info(out).fingerprint == info.fingerprint
    reference = ort.InferenceSession(str(tiny_model), providers=["CPUExecutionProvider"])
    a = l2_normalize(reference.run(None, {"images": sample.batch})[0])
    b = l2_normalize(quantized.run(None, {"images": sample.batch})[0])
    report = compare_embeddings(a, b, info.threshold, sample.labels, precision="int8")
    assert report.max_abs_diff < 0.1, report.summary()
    assert report.passed, report.summary()
    import onnx
    zero_points = [init for init in onnx.load(str(out)).graph.initializer
                   if init.name.endswith("zero_point")]
    assert zero_points and all(not onnx.numpy_helper.to_array(z).any() for z in zero_points)
