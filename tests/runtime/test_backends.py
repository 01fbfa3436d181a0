"""Backend selection: what auto picks here, loud CPU fallback, --require-gpu, the TensorRT EP
cache folder, and engines that are missing or stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siamese_edge.errors import InvalidInputError, ModelError
from siamese_edge.runtime import backends
from siamese_edge.runtime.backends import create_embedder, onnxruntime_providers
from siamese_edge.runtime.model_file import read_model_info
from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder
from siamese_edge.tensorrt.errors import GpuUnavailableError, StaleEngineError
from siamese_edge.tensorrt.sidecar import EngineSidecar, RuntimeFacts

IMAGES = [np.random.default_rng(0).integers(0, 256, (20, 20), dtype=np.uint8)] * 3


def _cpu_only(monkeypatch):
    monkeypatch.setattr(backends, "available_providers", lambda: ["CPUExecutionProvider"])


def test_auto_on_a_cpu_machine_is_onnxruntime_cpu_and_says_so(tiny_model, monkeypatch):
    _cpu_only(monkeypatch)
    with create_embedder(tiny_model) as embedder:
        assert embedder.device_description == "onnxruntime (CPUExecutionProvider)"
        assert embedder.embed(IMAGES).shape == (3, 8)


def test_signature_used_by_the_cli_still_works(tiny_model):
    embedder = create_embedder(tiny_model, backend="onnxruntime", batch_size=2)
    assert isinstance(embedder, OnnxRuntimeEmbedder) and embedder.batch_size == 2


def test_unknown_backend_is_a_user_error(tiny_model):
    with pytest.raises(InvalidInputError, match="auto, onnxruntime, tensorrt"):
        create_embedder(tiny_model, backend="tflite")


def test_listed_gpu_providers_that_do_not_load_fall_back_loudly(tiny_model, monkeypatch,
                                                                 tmp_path, capsys):
    # onnxruntime-gpu lists CUDA/TensorRT even when their libraries are missing; the CPU
    # wheel here behaves the same way for providers it cannot create: it falls back.
    monkeypatch.setattr(backends, "available_providers", lambda: [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setenv("SIAMESE_EDGE_CACHE", str(tmp_path / "cache"))
    with create_embedder(tiny_model, backend="onnxruntime") as embedder:
        assert embedder.active_providers == ["CPUExecutionProvider"]
        assert embedder.embed(IMAGES).shape == (3, 8)
    err = capsys.readouterr().err
    assert "WARNING" in err and "CPU FALLBACK" in err and "CUDAExecutionProvider" in err
    with pytest.raises(GpuUnavailableError, match="CPU only"):
        with create_embedder(tiny_model, backend="onnxruntime", require_gpu=True):
            pass


def test_require_gpu_fails_on_a_cpu_only_install(tiny_model, monkeypatch):
    _cpu_only(monkeypatch)
    with pytest.raises(GpuUnavailableError):
        with create_embedder(tiny_model, require_gpu=True):
            pass


def test_tensorrt_ep_gets_a_cache_folder_per_model_and_a_batch_profile(tiny_model,
                                                                       other_tiny_model,
                                                                       monkeypatch, tmp_path):
    monkeypatch.setenv("SIAMESE_EDGE_CACHE", str(tmp_path))
    listed = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    info = read_model_info(tiny_model)
    chosen = onnxruntime_providers(tiny_model, info, 32, available=listed)
    assert [p if isinstance(p, str) else p[0] for p in chosen] == listed
    options = chosen[0][1]
    assert options["trt_engine_cache_enable"] is True
    cache = options["trt_engine_cache_path"]
    assert cache.startswith(str(tmp_path / "ort-tensorrt")) and (tmp_path / "ort-tensorrt").is_dir()
    assert options["trt_profile_max_shapes"] == "images:32x1x16x16"
    other = onnxruntime_providers(other_tiny_model, read_model_info(other_tiny_model), 32,
                                  available=listed)
    assert other[0][1]["trt_engine_cache_path"] != cache


def test_tensorrt_without_an_engine_says_how_to_build_one(tiny_model):
    with pytest.raises(ModelError, match="siamese-edge engine .* --out"):
        create_embedder(tiny_model, backend="tensorrt")


def test_engine_file_is_refused_by_onnxruntime(tmp_path, tiny_model):
    path = tmp_path / "m.engine"
    path.write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="TensorRT engine"):
        create_embedder(path, backend="onnxruntime")


def _fake_engine(tmp_path, model, version="tensorrt 10.3.0"):
    info = read_model_info(model)
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(b"not really an engine")
    EngineSidecar(tensorrt_version=version, gpu_name="Orin", compute_capability="8.7",
                  precision="fp16", batch={"min": 1, "opt": 8, "max": 32},
                  onnx_fingerprint=info.fingerprint,
                  model_info=json.loads(info.to_json())).write(engine)
    return engine


def test_stale_engine_is_refused_with_the_rebuild_message(tmp_path, tiny_model,
                                                          other_tiny_model):
    from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder

    engine = _fake_engine(tmp_path, tiny_model)
    embedder = TensorRTEmbedder(engine, onnx_info=read_model_info(other_tiny_model),
                                runtime_facts=RuntimeFacts("tensorrt 10.7.0", "Orin", "8.7"),
                                model_hint="other.onnx")
    assert embedder.batch_size == 32  # capped at the engine's profile
    with pytest.raises(StaleEngineError, match="another model.*built with tensorrt 10.3.0.*"
                       r"rebuild the engine on this device \(siamese-edge export other.onnx"):
        with embedder:
            pass


def test_auto_falls_back_to_onnxruntime_when_the_engine_cannot_run_here(tmp_path, tiny_model,
                                                                        monkeypatch, capsys):
    _cpu_only(monkeypatch)
    engine = _fake_engine(tmp_path, tiny_model)
    with create_embedder(tiny_model, engine=engine) as embedder:
        assert embedder.device_description.startswith("onnxruntime")
    assert "falling back to ONNX Runtime" in capsys.readouterr().err


def _rewritten(tmp_path, tiny_model, name, meta=None, batch=None):
    onnx = pytest.importorskip("onnx")
    from siamese_edge.model_info import METADATA_KEY

    model = onnx.load(str(tiny_model))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY and meta:
            document = json.loads(prop.value)
            meta(document)
            prop.value = json.dumps(document)
    if batch is not None:
        for value in (model.graph.input[0], model.graph.output[0]):
            value.type.tensor_type.shape.dim[0].dim_value = batch
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("meta, message", [
    (lambda d: d["preprocessing"].update(channels=3, mean=[0.5] * 3, std=[0.25] * 3), "input"),
    (lambda d: d["preprocessing"].update(height=32), "input"),
    (lambda d: d.update(output_name="nope"), "output"),
    (lambda d: d.update(embedding_dim=99), "99-d"),
])
def test_metadata_that_does_not_match_the_graph_is_refused_on_open(tmp_path, tiny_model, meta,
                                                                   message):
    path = _rewritten(tmp_path, tiny_model, "mismatch.onnx", meta)
    with pytest.raises(ModelError, match=message):
        OnnxRuntimeEmbedder(path)
    with pytest.raises(ModelError, match=message):
        read_model_info(path)


def test_graph_with_a_fixed_batch_of_one_embeds_one_at_a_time(tmp_path, tiny_model):
    with OnnxRuntimeEmbedder(_rewritten(tmp_path, tiny_model, "b1.onnx", batch=1)) as fixed, \
            OnnxRuntimeEmbedder(tiny_model) as dynamic:
        np.testing.assert_allclose(fixed.embed(IMAGES), dynamic.embed(IMAGES), atol=1e-6)
    with pytest.raises(ModelError, match="fixed at 4"):
        OnnxRuntimeEmbedder(_rewritten(tmp_path, tiny_model, "b4.onnx", batch=4))


def test_a_stale_engine_is_rebuilt_with_its_workspace_and_target(tmp_path, tiny_model,
                                                                  monkeypatch):
    # --rebuild-stale rebuilt with the defaults: the Orin Nano's 512 MB workspace was lost
    from siamese_edge.runtime import backends
    from siamese_edge.tensorrt import builder, sidecar
    from siamese_edge.tensorrt.sidecar import EngineSidecar

    engine = _fake_engine(tmp_path, tiny_model)
    old = EngineSidecar.read(engine)
    old.workspace_mb, old.target = 512, "jetson-orin-nano-fp16"
    old.write(engine)
    monkeypatch.setattr(sidecar, "check_engine_fresh", lambda *args: ["built for another GPU"])
    built = []

    class Stop(Exception):
        pass

    def fake_build(model, path, options):
        built.append(options)
        raise Stop

    monkeypatch.setattr(builder, "build_engine", fake_build)
    with pytest.raises(Stop):
        backends._tensorrt_embedder(Path(tiny_model), engine, 8, rebuild_stale=True)
    (options,) = built
    assert (options.precision, options.workspace_mb, options.target, options.target_opset) \
        == ("fp16", 512, "jetson-orin-nano-fp16", 18)
    assert (options.batch.min, options.batch.opt, options.batch.max) == (1, 8, 32)
