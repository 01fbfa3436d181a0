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



def breaks_on_white(batch_size: int):
    """An embedder whose stand-in model, like a broken one, gives NaN for some inputs."""
    from siamese_edge.model_info import ModelInfo, Preprocessing
    from siamese_edge.runtime.embedder import Embedder

    class BreaksOnWhite(Embedder):
        def _activate(self) -> None:
            pass

        def _infer(self, batch: np.ndarray) -> np.ndarray:
            flat = batch.reshape(len(batch), -1)
            out = flat[:, :4] + 2.0
            out[flat.max(axis=1) >= 1.0] = np.nan  # a white pixel normalises to 1.0
            return out

    info = ModelInfo(Preprocessing(4, 4, 1, (0.5,), (0.5,)), embedding_dim=4, threshold=0.5)
    return BreaksOnWhite(info, batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [2, 64])  # batched, and one call
def test_non_finite_model_output_is_a_model_error_naming_the_count(batch_size):
    from siamese_edge.errors import ModelError

    gray, white = np.full((4, 4), 100, np.uint8), np.full((4, 4), 255, np.uint8)
    with breaks_on_white(batch_size) as embedder:
        good = embedder.embed([gray, gray, gray])
        assert np.all(np.isfinite(good)) and np.allclose(np.linalg.norm(good, axis=1), 1)
        with pytest.raises(ModelError, match="non-finite .* for 2 of 5 images"):
            embedder.embed([gray, white, gray, white, gray])
        with pytest.raises(ModelError, match="for 1 of 2 images"):
            embedder.embed_tensor(embedder.prepare([white, gray]))


def test_l2_normalize_handles_rows_float32_squares_cannot_hold():
    import warnings

    from siamese_edge.runtime.embedder import l2_normalize

    rows = np.array([[3e20, 4e20], [3e-25, 4e-25], [0, 0], [3, 4]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        out = l2_normalize(rows)
    # a huge row became zeros and a tiny one stayed far short of unit length
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.6, 0.8], [0, 0], [0.6, 0.8]], rtol=1e-6)
    usual = np.random.default_rng(0).normal(size=(500, 64)).astype(np.float32)
    plain = usual / np.sqrt(np.einsum("ij,ij->i", usual, usual))[:, None]
    np.testing.assert_array_equal(l2_normalize(usual), plain)  # bit for bit, as before


def test_a_non_square_model_embeds_images_at_its_own_height_and_width(tmp_path):
    # every other test model is square: height and width swapped would go unnoticed
    pytest.importorskip("onnx")
    from model_factory import make_tiny_model

    path = tmp_path / "wide.onnx"
    make_tiny_model(path, height=12, width=20)
    with OnnxRuntimeEmbedder(path) as embedder:
        assert (embedder.info.preprocessing.height, embedder.info.preprocessing.width) == \
            (12, 20)
        batch = embedder.prepare([np.zeros((30, 50), np.uint8)])
        assert batch.shape == (1, 1, 12, 20)
        assert embedder.embed([np.zeros((30, 50), np.uint8)]).shape == (1, 8)
