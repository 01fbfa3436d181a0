"""The Embedder base class: context management and batching, over the tiny ONNX model."""

from __future__ import annotations

import numpy as np
import pytest

from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder


def test_a_nested_with_block_leaves_the_embedder_active_for_the_outer_one(tiny_model):
    embedder = OnnxRuntimeEmbedder(tiny_model)
    image = np.zeros((28, 28), np.uint8)
    with embedder:
        with embedder:  # e.g. a library call that enters the caller's embedder again
            inner = embedder.embed([image])
        assert embedder.embed([image]) == pytest.approx(inner)
    with pytest.raises(RuntimeError, match="outside its 'with' block"):
        embedder.embed([image])


def test_a_failed_activation_leaves_the_embedder_usable_later(tiny_model, monkeypatch):
    embedder = OnnxRuntimeEmbedder(tiny_model)
    real = embedder._activate  # noqa: SLF001
    monkeypatch.setattr(embedder, "_activate", lambda: (_ for _ in ()).throw(OSError("gpu")))
    with pytest.raises(OSError):
        with embedder:
            pass
    monkeypatch.setattr(embedder, "_activate", real)
    with embedder:
        assert embedder.embed([np.zeros((28, 28), np.uint8)]).shape[0] == 1
    assert not embedder._active  # noqa: SLF001
