"""Embedding with ONNX Runtime (CPU by default; CUDA / TensorRT execution providers on request)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from siamese_edge.errors import ModelError
from siamese_edge.runtime.embedder import Embedder
from siamese_edge.runtime.model_file import fixed_batch, info_from_session, open_session
from siamese_edge.tensorrt.errors import GpuUnavailableError


class OnnxRuntimeEmbedder(Embedder):
    """An :class:`Embedder` over an exported ONNX model.

    Args:
        model_path: ONNX file written by ``siamese-edge export``.
        providers: ONNX Runtime execution providers in order of preference (names or
            ``(name, options)`` tuples); default CPU only.
        batch_size: images per inference call.
        intra_op_threads: ONNX Runtime's thread count (default: its own choice).
        require_gpu: fail on enter (GpuUnavailableError) when the session runs on the CPU
            only, e.g. because onnxruntime-gpu listed CUDA but its libraries are missing.

    The model's metadata is read at construction on a CPU session; the session with the
    requested providers is created on ``__enter__``.
    """

    backend_name = "onnxruntime"

    def __init__(self, model_path: str | os.PathLike[str], providers: list | None = None,
                 batch_size: int = 64, intra_op_threads: int | None = None,
                 require_gpu: bool = False) -> None:
        self.model_path = Path(model_path)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self.intra_op_threads = intra_op_threads
        self.require_gpu = require_gpu
        cpu_session = open_session(self.model_path, intra_op_threads=intra_op_threads)
        info = info_from_session(cpu_session, self.model_path)
        batch = fixed_batch(cpu_session, info)
        if batch is not None:
            # Such a graph fails on any other batch; one image at a time always fits batch 1.
            if batch != 1:
                raise ModelError(f"{self.model_path}: the graph's batch axis is fixed at "
                                 f"{batch}; export it with a dynamic batch axis")
            batch_size = 1
        super().__init__(info, batch_size)
        # Keep the CPU session when CPU is what was asked for: no second load.
        self._cpu_session = cpu_session if self.providers == ["CPUExecutionProvider"] else None
        self._session = None
        self.active_providers: list[str] = []

    def _activate(self) -> None:
        session = self._cpu_session or open_session(self.model_path, self.providers,
                                                    self.intra_op_threads)
        requested = [p if isinstance(p, str) else p[0] for p in self.providers]
        self.active_providers = list(session.get_providers())
        missing = [p for p in requested if p not in self.active_providers]
        on_cpu_only = self.active_providers == ["CPUExecutionProvider"]
        if self.require_gpu and on_cpu_only:
            raise GpuUnavailableError(f"ONNX Runtime runs {self.model_path.name} on the CPU only "
                             f"(asked for {', '.join(requested)}); the GPU was required")
        if missing:
            loud = "WARNING" if on_cpu_only else "warning"
            print(f"{loud}: ONNX Runtime could not use {', '.join(missing)}; running on "
                  f"{', '.join(self.active_providers)}"
                  + (" -- CPU FALLBACK, expect it to be much slower" if on_cpu_only else ""),
                  file=sys.stderr)
        names = [i.name for i in session.get_inputs()]
        if self.info.input_name not in names:
            raise ModelError(f"{self.model_path}: metadata names input "
                             f"'{self.info.input_name}' but the graph has {names}")
        self._session = session

    def _deactivate(self) -> None:
        self._session = None

    @property
    def device_description(self) -> str:
        return f"onnxruntime ({', '.join(self.active_providers) or 'inactive'})"

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([self.info.output_name], {self.info.input_name: batch})
        return out
