"""Embedding with a TensorRT engine: the same interface and outputs as the ONNX Runtime one.

Name-based I/O (``set_input_shape`` / ``set_tensor_address``), ``execute_async_v3`` where the
TensorRT has it (8.5 and later), ``execute_v2`` with a bindings list otherwise. CUDA memory and
the stream come from cuda-python. Constructing reads only the sidecar JSON; the GPU is touched
in ``__enter__`` alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siamese_edge.model_info import ModelInfo
from siamese_edge.runtime.embedder import Embedder
from siamese_edge.tensorrt.errors import EngineLoadError
from siamese_edge.tensorrt.sidecar import EngineSidecar, RuntimeFacts, current_runtime_facts, \
    ensure_engine_fresh, rebuild_hint


class TensorRTEmbedder(Embedder):
    """An :class:`Embedder` over a TensorRT engine built by :func:`build_engine`.

    Args:
        engine_path: the engine; ``engine_path.json`` (its sidecar) must be beside it.
        batch_size: images per call, capped at the engine's profile maximum.
        onnx_info: the model the engine must embed; a different fingerprint is refused.
            Its threshold wins over the sidecar's (a recalibrated model keeps its engine).
        check_fresh: refuse an engine built with another TensorRT or for another GPU.
        runtime_facts: this machine's facts (default: detected on enter); for tests.
        model_hint: the ONNX path to name in the "rebuild" message.
    """

    backend_name = "tensorrt"

    def __init__(self, engine_path: str | os.PathLike[str], batch_size: int = 64,
                 onnx_info: ModelInfo | None = None, check_fresh: bool = True,
                 runtime_facts: RuntimeFacts | None = None,
                 model_hint: str = "MODEL.onnx") -> None:
        self.engine_path = Path(engine_path)
        if not self.engine_path.is_file():
            raise EngineLoadError(f"{self.engine_path}: no such engine file")
        self.sidecar = EngineSidecar.read(self.engine_path)
        info = self.sidecar.info
        if onnx_info is not None and onnx_info.fingerprint == info.fingerprint:
            info = onnx_info
        self.onnx_info = onnx_info
        self.check_fresh = check_fresh
        self.runtime_facts = runtime_facts
        self.model_hint = model_hint
        super().__init__(info, min(int(batch_size), int(self.sidecar.batch["max"])))
        self._trt = self._engine = self._context = None
        self._stream = 0
        self._buffers: dict = {}
        self._gpu_name: str | None = None

    @property
    def device_description(self) -> str:
        gpu = self._gpu_name or self.sidecar.gpu_name or "GPU"
        return f"tensorrt ({self.sidecar.tensorrt_version}, {self.sidecar.precision}, {gpu})"

    def _activate(self) -> None:
        from siamese_edge.tensorrt import cuda_memory, load_tensorrt

        facts = self.runtime_facts or current_runtime_facts()
        if self.check_fresh:
            ensure_engine_fresh(self.engine_path, self.onnx_info, facts, self.model_hint)
        trt = load_tensorrt(self.sidecar.tensorrt_version.split()[0])
        self._gpu_name = facts.gpu_name
        if cuda_memory.device_count() == 0:
            from siamese_edge.tensorrt.errors import GpuUnavailableError
            raise GpuUnavailableError(f"{self.engine_path}: no CUDA device visible; a TensorRT "
                                      f"engine needs an NVIDIA GPU (use --backend onnxruntime)")
        self._trt = trt
        try:
            self._load_engine_and_buffers(trt, cuda_memory)
        except BaseException:  # the caller never deactivates what did not activate
            self._deactivate()
            raise

    @property
    def _min_rows(self) -> int:
        """The profile's smallest batch: fewer images are padded up to it."""
        return int(self.sidecar.batch.get("min", 1))

    def _load_engine_and_buffers(self, trt, cuda_memory) -> None:
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:  # version or GPU mismatch: TensorRT only logs why
            raise EngineLoadError(f"{self.engine_path}: TensorRT ({self.sidecar.tensorrt_version} "
                                  f"build) could not load it here; "
                                  f"{rebuild_hint(self.engine_path, self.model_hint)}")
        self._runtime, self._engine = runtime, engine
        self._context = engine.create_execution_context()
        self._stream = cuda_memory.create_stream()
        pre = self.info.preprocessing
        rows = max(self.batch_size, self._min_rows)
        in_bytes = rows * pre.channels * pre.height * pre.width * 4
        out_bytes = rows * self.info.embedding_dim * 4
        self._buffers[self.info.input_name] = cuda_memory.DeviceBuffer(in_bytes)
        self._buffers[self.info.output_name] = cuda_memory.DeviceBuffer(out_bytes)
        if hasattr(self._context, "set_tensor_address"):
            for name, buffer in self._buffers.items():
                self._context.set_tensor_address(name, buffer.ptr)

    def _deactivate(self) -> None:
        from siamese_edge.tensorrt import cuda_memory

        for buffer in self._buffers.values():
            buffer.free()
        self._buffers = {}
        if self._stream:
            cuda_memory.destroy_stream(self._stream)
            self._stream = 0
        self._context = self._engine = self._runtime = None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        from siamese_edge.tensorrt import cuda_memory

        batch = np.ascontiguousarray(batch, np.float32)
        wanted = len(batch)
        if wanted < self._min_rows:  # below the profile: repeat the last image, drop its rows
            batch = np.concatenate([batch, np.repeat(batch[-1:], self._min_rows - wanted, 0)])
        rows = len(batch)
        if rows > max(self.batch_size, self._min_rows):  # the device buffers hold no more
            raise ValueError(f"batch of {rows} images for buffers of {self.batch_size}")
        out = np.empty((rows, self.info.embedding_dim), np.float32)
        name_in, name_out = self.info.input_name, self.info.output_name
        self._buffers[name_in].upload(batch, self._stream)
        context = self._context
        if hasattr(context, "execute_async_v3"):
            if context.set_input_shape(name_in, tuple(batch.shape)) is False:
                raise EngineLoadError(f"{self.engine_path}: batch {rows} is outside the "
                                      f"engine's profile {self.sidecar.batch}")
            ok = context.execute_async_v3(self._stream)
        else:  # older TensorRT: binding indices
            index = self._engine.get_binding_index(name_in)
            context.set_binding_shape(index, tuple(batch.shape))
            bindings = [0] * self._engine.num_bindings
            for name, buffer in self._buffers.items():
                bindings[self._engine.get_binding_index(name)] = buffer.ptr
            cuda_memory.synchronize(self._stream)
            ok = context.execute_v2(bindings)
        if not ok:
            raise EngineLoadError(f"{self.engine_path}: TensorRT execution failed")
        self._buffers[name_out].download(out, self._stream)
        cuda_memory.synchronize(self._stream)
        return out[:wanted]
