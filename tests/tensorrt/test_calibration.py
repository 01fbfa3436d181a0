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
    few = load_image_sample(image_dir, info, limit=10)
    assert len(few.batch) == 10
    # a random pick over every folder, not the first folder's images in name order
    assert sorted(set(few.labels)) == ["ann", "ben", "cat"]


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


def _variant(tiny_model, path, scalar_mul=False, fixed_batch=None):
    """The tiny model with a Mul by a scalar initializer after its Gemm (as exported
    siamese-edge models have) and/or a fixed batch size."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(tiny_model))
    graph = model.graph
    if scalar_mul:
        gemm = next(i for i, n in enumerate(graph.node) if n.op_type == "Gemm")
        graph.node[gemm].output[0] = "e_unscaled"
        graph.node.insert(gemm + 1, helper.make_node("Mul", ["e_unscaled", "scale"], ["e"]))
        graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), "scale"))
    if fixed_batch:
        for value in (*graph.input, *graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = fixed_batch
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_only_weighted_layers_are_quantized_not_scalar_constants(tmp_path, image_dir,
                                                                 tiny_model):
    pytest.importorskip("onnx")
    import onnx

    info = read_model_info(tiny_model)
    model = _variant(tiny_model, tmp_path / "scaled.onnx", scalar_mul=True)
    out = write_qdq_model(model, tmp_path / "scaled.qdq.onnx",
                          load_image_sample(image_dir, info).batch, info)
    graph = onnx.load(str(out)).graph
    assert not [i.name for i in graph.initializer if i.name.startswith("scale_")]
    mul = next(n for n in graph.node if n.op_type == "Mul")
    assert "scale" in mul.input  # the float constant itself, not a DequantizeLinear of it
    assert {"Conv", "Gemm"} <= {n.op_type for n in graph.node}


def test_a_graph_with_a_fixed_batch_is_calibrated_in_chunks_of_that_batch(tmp_path, image_dir,
                                                                         tiny_model):
    pytest.importorskip("onnx")
    info = read_model_info(tiny_model)
    model = _variant(tiny_model, tmp_path / "b1.onnx", fixed_batch=1)
    out = write_qdq_model(model, tmp_path / "b1.qdq.onnx",
                          load_image_sample(image_dir, info).batch, info)
    assert require_op_support(out).op_counts.get("QuantizeLinear", 0) > 0
    model3 = _variant(tiny_model, tmp_path / "b3.onnx", fixed_batch=3)
    write_qdq_model(model3, tmp_path / "b3.qdq.onnx",
                    load_image_sample(image_dir, info, limit=7).batch, info)  # 7 → 3 chunks


def test_calibration_failure_is_a_one_line_build_error(tmp_path, image_dir, tiny_model):
    pytest.importorskip("onnx")
    from siamese_edge.tensorrt.errors import EngineBuildError

    info = read_model_info(tiny_model)
    sample = load_image_sample(image_dir, info).batch
    with pytest.raises(EngineBuildError, match="INT8 calibration .* failed") as caught:
        # rows of the wrong height: onnxruntime raises a multi-line InvalidArgument
        write_qdq_model(tiny_model, tmp_path / "x.qdq.onnx", sample[:, :, :8], info)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("variant", [{"scalar_mul": True}, {"fixed_batch": 1}])
def test_exported_shapes_of_model_build_int8_through_qdq(tmp_path, image_dir, tiny_model,
                                                         variant):
    pytest.importorskip("onnx")
    from siamese_edge.tensorrt import load_tensorrt
    from siamese_edge.tensorrt.builder import BatchProfile, EngineBuildOptions, build_engine, \
        strongly_typed
    from siamese_edge.tensorrt.errors import TensorRTUnavailableError

    try:
        trt = load_tensorrt()
    except TensorRTUnavailableError as exc:
        pytest.skip(f"no TensorRT here ({exc}); 'pip install tensorrt-rtx' builds on a CPU")
    if not strongly_typed(trt):
        pytest.skip(f"{trt.__name__} has INT8 builder flags: the Q/DQ route is not used")
    model = _variant(tiny_model, tmp_path / "m.onnx", **variant)
    batch = BatchProfile(1, 1, 1) if variant.get("fixed_batch") else BatchProfile(1, 4, 16)
    report = build_engine(model, tmp_path / "m.engine",
                          EngineBuildOptions(precision="int8", calib_dir=str(image_dir),
                                             batch=batch))
    assert "Q/DQ" in report.precision_mode and report.engine_bytes > 1000


@pytest.mark.parametrize("images", [100, 200])
def test_a_sample_that_does_not_fill_its_last_chunk_is_calibrated(tmp_path, image_dir,
                                                                  tiny_model, images):
    # 64 images or more use entropy calibration, which stacked uneven chunks (33/34 rows)
    # and failed: "inhomogeneous shape"
    pytest.importorskip("onnx")
    info = read_model_info(tiny_model)
    batch = load_image_sample(image_dir, info).batch
    sample = batch[np.arange(images) % len(batch)]
    out = write_qdq_model(tiny_model, tmp_path / "q.onnx", sample, info)
    assert require_op_support(out).op_counts.get("QuantizeLinear", 0) > 0
