"""Sidecar JSON and staleness: another TensorRT, GPU or model is refused with the rebuild
message; the engine file itself is never touched."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from siamese_edge.runtime.model_file import read_model_info
from siamese_edge.tensorrt.errors import StaleEngineError
from siamese_edge.tensorrt.sidecar import EngineSidecar, RuntimeFacts, check_engine_fresh, \
    ensure_engine_fresh, sidecar_path

FACTS = RuntimeFacts("tensorrt 10.3.0", "Orin", "8.7")
ENGINE_BYTES = b"\x00fake-serialized-engine\xff"


@pytest.fixture
def engine(tmp_path, tiny_model):
    info = read_model_info(tiny_model)
    path = tmp_path / "tiny.engine"
    path.write_bytes(ENGINE_BYTES)
    EngineSidecar(tensorrt_version=FACTS.tensorrt_version, gpu_name=FACTS.gpu_name,
                  compute_capability=FACTS.compute_capability, precision="fp16",
                  batch={"min": 1, "opt": 8, "max": 32}, onnx_fingerprint=info.fingerprint,
                  model_info=json.loads(info.to_json())).write(path)
    return path, info


def test_sidecar_beside_engine_round_trips_and_engine_is_untouched(engine):
    path, info = engine
    assert sidecar_path(path).name == "tiny.engine.json"
    assert path.read_bytes() == ENGINE_BYTES  # never a header glued on
    sidecar = EngineSidecar.read(path)
    assert sidecar.info == info and sidecar.precision == "fp16" and sidecar.built_at
    assert check_engine_fresh(path, info, FACTS) == []
    assert ensure_engine_fresh(path, info, FACTS).batch["max"] == 32


@pytest.mark.parametrize("facts, reason", [
    (replace(FACTS, tensorrt_version="tensorrt 10.7.0"), "built with tensorrt 10.3.0"),
    (replace(FACTS, gpu_name="NVIDIA GeForce RTX 4090"), "built on GPU 'Orin'"),
    (replace(FACTS, compute_capability="8.9"), "compute capability 8.7"),
])
def test_other_tensorrt_or_gpu_is_refused_with_rebuild_message(engine, facts, reason):
    path, info = engine
    reasons = check_engine_fresh(path, info, facts)
    assert len(reasons) == 1 and reason in reasons[0]
    with pytest.raises(StaleEngineError, match="rebuild the engine on this device "
                                               r"\(siamese-edge export model.onnx --engine"):
        ensure_engine_fresh(path, info, facts, model_hint="model.onnx")


def test_other_model_is_refused(engine, other_tiny_model):
    path, _ = engine
    other = read_model_info(other_tiny_model)
    reasons = check_engine_fresh(path, other, FACTS)
    assert len(reasons) == 1 and "another model" in reasons[0]
    with pytest.raises(StaleEngineError, match="rebuild the engine"):
        ensure_engine_fresh(path, other, FACTS)


def test_missing_sidecar_or_engine_is_stale(engine, tmp_path):
    path, info = engine
    sidecar_path(path).unlink()
    assert "no sidecar" in check_engine_fresh(path, info, FACTS)[0]
    assert "no engine file" in check_engine_fresh(tmp_path / "nope.engine", info, FACTS)[0]


def test_unknown_gpu_on_either_side_is_not_compared(engine):
    path, info = engine
    assert check_engine_fresh(path, info, RuntimeFacts(FACTS.tensorrt_version)) == []


@pytest.mark.parametrize("change, message", [
    (lambda d: [1], "a JSON object is expected, not list"),
    (lambda d: {"model_info": "x"}, "missing tensorrt_version"),
    (lambda d: {**d, "model_info": "x"}, "model_info 'x' is not a JSON object"),
    (lambda d: {**d, "model_info": {"preprocessing": "x"}}, "model metadata is incomplete"),
    (lambda d: {**d, "batch": []}, "batch \\[\\] is not"),
    (lambda d: {**d, "batch": {}}, "batch {} is not"),
    (lambda d: {**d, "batch": {"min": 4, "opt": 2, "max": 1}}, "batch profile needs"),
    (lambda d: {**d, "format_version": "2"}, "format_version '2' is not an integer"),
    (lambda d: {**d, "tensorrt_version": 10}, "tensorrt_version 10 is not a string"),
    (lambda d: {**d, "workspace_mb": "1024"}, "workspace_mb is not an integer"),
    (lambda d: {**d, "target": 3}, "workspace_mb is not an integer or target is not"),
])
def test_sidecar_of_the_wrong_shape_is_a_one_line_model_error(engine, change, message):
    from siamese_edge.errors import ModelError
    from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder

    path, info = engine
    sidecar = sidecar_path(path)
    sidecar.write_text(json.dumps(change(json.loads(sidecar.read_text()))))
    with pytest.raises(ModelError, match=f"unreadable engine sidecar \\({message}"):
        EngineSidecar.read(path)
    with pytest.raises(ModelError, match="unreadable engine sidecar"):
        TensorRTEmbedder(path)
    assert "unreadable engine sidecar" in check_engine_fresh(path, info, FACTS)[0]
