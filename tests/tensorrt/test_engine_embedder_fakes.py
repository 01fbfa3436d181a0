"""TensorRTEmbedder's own logic (profile limits, releasing what it took) with TensorRT and the
CUDA calls stood in for, so that it runs without a GPU; real engines run in
test_engine_embedder_gpu.py where there is one."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from siamese_edge.runtime.model_file import read_model_info
from siamese_edge.tensorrt import cuda_memory
from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder
from siamese_edge.tensorrt.errors import EngineLoadError
from siamese_edge.tensorrt.sidecar import EngineSidecar, RuntimeFacts

FACTS = RuntimeFacts("tensorrt 10.3.0", "Orin", "8.7")


class Device:
    """Fake device memory and streams, logging every allocation and release."""

    def __init__(self, fail_on_buffer: int | None = None) -> None:
        self.log: list[str] = []
        self.fail_on_buffer = fail_on_buffer
        self.buffers = 0
        device = self

        class Buffer:
            def __init__(self, nbytes: int) -> None:
                device.buffers += 1
                if device.buffers == device.fail_on_buffer:
                    raise EngineLoadError("cudaMalloc failed")
                self.ptr, self.nbytes, self.data = 100 + device.buffers, nbytes, None
                device.log.append(f"malloc {self.ptr}")

            def upload(self, array, stream):
                assert array.nbytes <= self.nbytes
                self.data = array.copy()

            def download(self, array, stream):
                array[...] = self.data.reshape(array.shape)

            def free(self):
                device.log.append(f"free {self.ptr}")

        self.Buffer = Buffer

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(cuda_memory, "DeviceBuffer", self.Buffer)
        monkeypatch.setattr(cuda_memory, "device_count", lambda: 1)
        monkeypatch.setattr(cuda_memory, "synchronize", lambda stream: None)
        monkeypatch.setattr(cuda_memory, "create_stream",
                            lambda: self.log.append("stream") or 7)
        monkeypatch.setattr(cuda_memory, "destroy_stream",
                            lambda stream: self.log.append("stream destroyed"))


def fake_tensorrt(batch_min: int, batch_max: int, dim: int):
    """A TensorRT whose engine outputs each input row's first ``dim`` values, and refuses
    shapes outside its profile as TensorRT does (set_input_shape returns False)."""
    shapes = []

    class Context:
        def set_tensor_address(self, name, ptr):
            self.__dict__.setdefault("addresses", {})[name] = ptr

        def set_input_shape(self, name, shape):
            shapes.append(shape)
            self.rows = shape[0]
            return batch_min <= shape[0] <= batch_max

        def execute_async_v3(self, stream):
            buffers = Context.buffers
            rows = buffers["input"].data.reshape(self.rows, -1)
            buffers["output"].data = np.ascontiguousarray(rows[:, :dim])
            return True

    class Engine:
        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine()

    logger = type("Logger", (), {"ERROR": 0, "__init__": lambda self, level: None})
    return types.SimpleNamespace(Runtime=Runtime, Logger=logger, __name__="tensorrt"), \
        shapes, Context


@pytest.fixture
def engine_file(tmp_path, tiny_model):
    def make(batch_min: int, batch_max: int):
        info = read_model_info(tiny_model)
        path = tmp_path / f"e{batch_min}.engine"
        path.write_bytes(b"engine")
        EngineSidecar(tensorrt_version=FACTS.tensorrt_version, gpu_name=FACTS.gpu_name,
                      compute_capability=FACTS.compute_capability, precision="fp16",
                      batch={"min": batch_min, "opt": batch_max, "max": batch_max},
                      onnx_fingerprint=info.fingerprint,
                      model_info=json.loads(info.to_json())).write(path)
        return path, info
    return make


def test_fewer_images_than_the_profile_minimum_are_padded_and_cut(monkeypatch, engine_file):
    # a fixed-batch engine (--batch 8) failed on one probe: TensorRT refuses shape 1
    import siamese_edge.tensorrt as tensorrt_package

    path, info = engine_file(8, 8)
    trt, shapes, context = fake_tensorrt(8, 8, info.embedding_dim)
    monkeypatch.setattr(tensorrt_package, "load_tensorrt", lambda *a, **k: trt)
    device = Device()
    device.install(monkeypatch)
    embedder = TensorRTEmbedder(path, batch_size=4, runtime_facts=FACTS)
    with embedder:
        context.buffers = {"input": embedder._buffers[info.input_name],
                           "output": embedder._buffers[info.output_name]}
        batch = np.random.default_rng(0).normal(
            size=(3, info.preprocessing.channels, info.preprocessing.height,
                  info.preprocessing.width)).astype(np.float32)
        out = embedder.embed_tensor(batch)
    assert [s[0] for s in shapes] == [8]
    expected = batch.reshape(3, -1)[:, :info.embedding_dim]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_a_prepared_batch_larger_than_the_buffers_is_run_in_buffer_sized_calls(monkeypatch,
                                                                              engine_file):
    # embed_tensor passed all 16 rows to buffers sized for 8: an out-of-bounds copy on a GPU
    import siamese_edge.tensorrt as tensorrt_package

    path, info = engine_file(1, 32)
    trt, shapes, context = fake_tensorrt(1, 32, info.embedding_dim)
    monkeypatch.setattr(tensorrt_package, "load_tensorrt", lambda *a, **k: trt)
    Device().install(monkeypatch)
    pre = info.preprocessing
    batch = np.random.default_rng(1).normal(
        size=(16, pre.channels, pre.height, pre.width)).astype(np.float32)
    with TensorRTEmbedder(path, batch_size=8, runtime_facts=FACTS) as embedder:
        context.buffers = {"input": embedder._buffers[info.input_name],
                           "output": embedder._buffers[info.output_name]}
        out = embedder.embed_tensor(batch)
        with pytest.raises(ValueError, match="batch of 9 images for buffers of 8"):
            embedder._infer(batch[:9])
    assert [s[0] for s in shapes] == [8, 8]
    expected = batch.reshape(16, -1)[:, :info.embedding_dim]
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_a_shape_the_profile_refuses_is_a_one_line_error(monkeypatch, engine_file):
    import siamese_edge.tensorrt as tensorrt_package

    path, info = engine_file(1, 4)
    trt, shapes, context = fake_tensorrt(2, 4, info.embedding_dim)  # disagrees with sidecar
    monkeypatch.setattr(tensorrt_package, "load_tensorrt", lambda *a, **k: trt)
    Device().install(monkeypatch)
    pre = info.preprocessing
    with TensorRTEmbedder(path, batch_size=4, runtime_facts=FACTS) as embedder:
        with pytest.raises(EngineLoadError, match="outside the engine's profile"):
            embedder.embed_tensor(np.zeros((1, pre.channels, pre.height, pre.width),
                                           np.float32))


def test_a_failed_activation_releases_what_it_took(monkeypatch, engine_file):
    import siamese_edge.tensorrt as tensorrt_package

    path, info = engine_file(1, 4)
    trt, _, _ = fake_tensorrt(1, 4, info.embedding_dim)
    monkeypatch.setattr(tensorrt_package, "load_tensorrt", lambda *a, **k: trt)
    device = Device(fail_on_buffer=2)  # the output buffer's allocation fails
    device.install(monkeypatch)
    embedder = TensorRTEmbedder(path, runtime_facts=FACTS)
    with pytest.raises(EngineLoadError, match="cudaMalloc"):
        embedder.__enter__()
    assert device.log == ["stream", "malloc 101", "free 101", "stream destroyed"]
    assert embedder._stream == 0 and embedder._buffers == {}
