"""The one interface every inference backend implements.

An embedder turns uint8 images of any size (gray or RGB, see
:mod:`siamese_edge.runtime.imageio`) into L2-normalised float32 embeddings ``(N, D)``. It is a
context manager: heavy resources (an inference session, GPU memory) are acquired on enter and
released on exit, so constructing one is cheap and touches no device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from siamese_edge.errors import ModelError
from siamese_edge.model_info import ModelInfo
from siamese_edge.runtime.preprocess import fit_images, normalization_constants, normalize


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12, in_place: bool = False) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    if not in_place or not vectors.flags.writeable:
        vectors = vectors.copy()
    with np.errstate(over="ignore", under="ignore"):  # such rows are redone below
        squares = np.einsum("ij,ij->i", vectors, vectors)
    # float32 squares overflow above ~1.8e19 (the row became zeros) and vanish below ~1e-19
    # (the row was left short of unit length): those rare rows are redone in float64 after
    # scaling by their largest value; every other row stays exactly as it was
    odd = ~np.isfinite(squares) | (squares < 1e-30)
    originals = vectors[odd].astype(np.float64) if np.any(odd) else None
    with np.errstate(invalid="ignore"):
        vectors /= np.maximum(np.sqrt(squares), eps)[:, None]
    if originals is not None:
        peak = np.max(np.abs(originals), axis=1, keepdims=True)
        scaled = originals / np.where(peak > 0, peak, 1.0)
        norms = np.linalg.norm(scaled, axis=1, keepdims=True)
        vectors[odd] = (scaled / np.maximum(norms, eps)).astype(np.float32)
    return vectors


class Embedder(ABC):
    """Base class: subclasses fill :meth:`_activate`, :meth:`_deactivate`, :meth:`_infer`.

    Example:
        >>> with OnnxRuntimeEmbedder("model.onnx") as embedder:   # doctest: +SKIP
        ...     vectors = embedder.embed([image_a, image_b])
    """

    #: short name of the backend, printed by the CLI ("onnxruntime", "tensorrt", ...)
    backend_name = "base"

    def __init__(self, info: ModelInfo, batch_size: int = 64) -> None:
        self.info = info
        self.batch_size = max(1, int(batch_size))
        self._active = False
        self._depth = 0  # nested ``with`` blocks: only the outermost one releases
        pre = info.preprocessing
        self._normalization = normalization_constants(pre.mean, pre.std)

    # -- context management -------------------------------------------------------------
    def __enter__(self) -> Embedder:
        if not self._active:
            self._activate()
            self._active = True
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        # A library call that enters an embedder its caller already entered (e.g.
        # run_camera_verify) must leave it active for the caller's block.
        self._depth = max(0, self._depth - 1)
        if self._active and self._depth == 0:
            self._deactivate()
            self._active = False

    @property
    def device_description(self) -> str:
        """What the embedder actually runs on, e.g. ``CPUExecutionProvider``."""
        return self.backend_name

    # -- the public call ------------------------------------------------------------------
    def prepare(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Images of any size → the model's float32 NCHW input."""
        pre = self.info.preprocessing
        return normalize(fit_images(images, pre.height, pre.width, pre.channels),
                         constants=self._normalization)

    def embed(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Embed uint8 images (any size, gray or RGB): float32 ``(N, D)``, unit rows."""
        if not self._active:
            raise RuntimeError(f"{type(self).__name__} used outside its 'with' block")
        count = len(images)
        if count <= self.batch_size:  # the common case: one call, no staging copy
            return l2_normalize(self._finite(self._infer(self.prepare(images))), in_place=True)
        out = np.empty((count, self.info.embedding_dim), np.float32)
        for start in range(0, count, self.batch_size):
            batch = self.prepare(images[start:start + self.batch_size])
            out[start:start + len(batch)] = self._infer(batch)
        return l2_normalize(self._finite(out), in_place=True)

    def embed_tensor(self, batch: np.ndarray) -> np.ndarray:
        """Embed an already prepared float32 NCHW batch (for parity checks and benchmarks),
        ``batch_size`` rows per call as ``_infer`` expects (a TensorRT engine's device buffers
        hold that many: one call with more wrote past them)."""
        if not self._active:
            raise RuntimeError(f"{type(self).__name__} used outside its 'with' block")
        batch = np.ascontiguousarray(batch, np.float32)
        if len(batch) <= self.batch_size:
            return l2_normalize(self._finite(self._infer(batch)))
        out = np.concatenate([self._infer(batch[start:start + self.batch_size])
                              for start in range(0, len(batch), self.batch_size)])
        return l2_normalize(self._finite(out), in_place=True)

    def _finite(self, raw: np.ndarray) -> np.ndarray:
        """The model's output, refused when a row holds NaN or inf.

        Such a row is a model fault (overflow in FP16, a division by a zero variance...)
        that nothing downstream can score: a NaN cosine rejects every claim, argmax picks
        it in identification, and an evaluation's numbers shift. Every caller (enrol,
        verify, evaluate, embed, camera) sees it here, once, naming the model, instead
        of a silent "unknown" or a later error that blames a gallery or a dataset.
        """
        with np.errstate(over="ignore"):  # as normalised: a float64 beyond float32 is inf
            raw = np.asarray(raw, np.float32)
        bad = ~np.isfinite(raw).all(axis=-1)
        if np.any(bad):
            source = getattr(self, "model_path", None) or getattr(self, "engine_path", None) \
                or self.info.name
            raise ModelError(f"{source}: the model gave non-finite (NaN or inf) embeddings "
                             f"for {int(bad.sum())} of {len(raw)} images")
        return raw

    # -- hooks --------------------------------------------------------------------------
    @abstractmethod
    def _activate(self) -> None:
        """Acquire the session / device resources."""

    def _deactivate(self) -> None:
        """Release what :meth:`_activate` acquired."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a float32 NCHW batch of at most ``batch_size`` rows.

        Returns a new array (not a view of a reused buffer): it is normalised in place.
        """
