"""Fixtures for camera tests: recorded videos of real images standing in for a camera."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
sys.path.insert(0, str(Path(__file__).parent))  # camera_helpers

#: Fashion-MNIST classes used as "identities": pullover and sandal are enrolled, a trouser
#: plays the stranger (the tiny random model separates these three well).
ENROLLED = {"pullover": 2, "sandal": 5}
STRANGER = 1
FRAME_SIDE = 128


@pytest.fixture(scope="session")
def fashion_items(fashion_mnist_dir) -> dict[str, np.ndarray]:
    """One real Fashion-MNIST test image per role, as 128x128 RGB frames."""
    from siamese_edge.data.idx import read_idx

    images = read_idx(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    roles = dict(ENROLLED, stranger=STRANGER)
    out = {}
    for role, label in roles.items():
        item = images[int(np.flatnonzero(labels == label)[0])]
        big = cv2.resize(item, (FRAME_SIDE, FRAME_SIDE), interpolation=cv2.INTER_NEAREST)
        out[role] = np.repeat(big[:, :, None], 3, axis=2)
    return out


@pytest.fixture()
def embedder(tiny_model):
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    return OnnxRuntimeEmbedder(tiny_model, intra_op_threads=1)


@pytest.fixture()
def matcher_factory(embedder, fashion_items):
    """``make(identity=None, threshold=0.99)`` → a cosine matcher over the enrolled items."""
    from siamese_edge.camera.matcher import CosineMatrixMatcher

    names = list(ENROLLED)
    with embedder:
        templates = embedder.embed([fashion_items[name] for name in names])

    def make(identity: str | None = None, threshold: float = 0.99) -> CosineMatrixMatcher:
        return CosineMatrixMatcher(names, templates, threshold, identity=identity)

    return make


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data",
                               reason="the astronaut photo comes with scikit-image")
    return data.astronaut()


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg not installed (apt-get install ffmpeg)")
    return path
