import gzip
import struct

import numpy as np
import pytest

from siamese_edge.data.idx import load_idx_dataset, read_idx
from siamese_edge.errors import DatasetError


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    data = idx_bytes(images)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    assert np.array_equal(read_idx(path), images)


@pytest.mark.parametrize("mutate,message", [
    (lambda b: b[:-3], "truncated or corrupt"),
    (lambda b: b"\x01" + b[1:], "bad magic"),
    (lambda b: b[:2] + b"\x42" + b[3:], "unknown IDX data type"),
    (lambda b: b"\x1f\x8b garbage", "corrupt gzip"),
])
def test_bad_files(tmp_path, mutate, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(mutate(idx_bytes(np.zeros((2, 3, 3)))))
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_dataset_checks_label_count(tmp_path):
    (tmp_path / "i").write_bytes(idx_bytes(np.zeros((3, 2, 2))))
    (tmp_path / "l").write_bytes(idx_bytes(np.array([1, 2])))
    with pytest.raises(DatasetError, match="2 labels for 3 images"):
        load_idx_dataset(tmp_path / "i", tmp_path / "l")
    (tmp_path / "l").write_bytes(idx_bytes(np.array([7, 3, 7])))
    data = load_idx_dataset(tmp_path / "i", tmp_path / "l")
    assert data.images.shape == (3, 2, 2, 1) and data.class_names == ["3", "7"]
    assert data.labels.tolist() == [1, 0, 1]


def test_real_fashion_mnist(fashion_mnist_dir):
    data = load_idx_dataset(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz",
                            fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert data.images.shape == (10000, 28, 28, 1) and len(data.class_names) == 10
