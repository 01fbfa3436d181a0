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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, fashion_mnist_dir) -> Path:
    """A small real training run: 5 Fashion-MNIST classes of the test split."""
    pytest.importorskip("torch", reason="training needs the train extra")
    from siamese_edge.training.config import TrainConfig
    from siamese_edge.training.trainer import train

    out = tmp_path_factory.mktemp("run") / "fashion5"
    train(TrainConfig(data=str(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz"),
                      labels=str(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz"),
                      out=str(out), classes=["0", "1", "5", "8", "9"], epochs=3,
                      steps_per_epoch=25, batch_size=40, embedding_dim=32, threads=2))
    return out


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, trained_run) -> Path:
    from siamese_edge.exporting.onnx_export import export_run

    path = tmp_path_factory.mktemp("export") / "fashion5.onnx"
    export_run(trained_run, path)
    return path
