"""Shared fixtures: tiny generated models, Fashion-MNIST when installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight gray 16x16 embedding model with siamese-edge metadata."""
    pytest.importorskip("onnx", reason="building test models needs the onnx package")
    from model_factory import make_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    make_tiny_model(path)
    return path


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory) -> Path:
    """Same shape as ``tiny_model`` but other weights: another fingerprint."""
    pytest.importorskip("onnx", reason="building test models needs the onnx package")
    from model_factory import make_tiny_model

    path = tmp_path_factory.mktemp("models") / "other.onnx"
    make_tiny_model(path, seed=1)
    return path


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    if not (FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return FASHION_MNIST
