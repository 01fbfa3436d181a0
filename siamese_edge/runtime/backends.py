"""Choosing the inference backend for a model: ``--backend auto|onnxruntime|tensorrt``."""

from __future__ import annotations

import os

from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.embedder import Embedder

BACKENDS = ("auto", "onnxruntime")


def create_embedder(model_path: str | os.PathLike[str], backend: str = "auto",
                    batch_size: int = 64) -> Embedder:
    """An embedder for ``model_path`` on the requested backend (not yet entered).

    Args:
        model_path: an exported ONNX model.
        backend: ``auto`` picks the best backend that works here; ``onnxruntime`` forces it.
        batch_size: images per inference call.
    """
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    return OnnxRuntimeEmbedder(model_path, batch_size=batch_size)
