"""The implicit-quantization calibrator (TensorRT 8.5-10), with TensorRT's base class and the
CUDA buffers stood in for: what it feeds TensorRT and which cache it hands back run on a CPU."""

from __future__ import annotations

import types
from dataclasses import replace

import numpy as np
import pytest

from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.tensorrt import calibration, cuda_memory

INFO = ModelInfo(Preprocessing(2, 2, 1, (0.5,), (0.5,)), embedding_dim=4, threshold=0.5,
                 fingerprint="sha256:" + "a" * 64, name="m")


class Buffer:
    def __init__(self, nbytes: int) -> None:
        self.nbytes, self.ptr, self.uploads = nbytes, 1234, []

    def upload(self, array: np.ndarray, stream: int) -> None:
        assert array.nbytes <= self.nbytes  # TensorRT reads get_batch_size() rows from ptr
        self.uploads.append(array.copy())

    def free(self) -> None:
        pass


@pytest.fixture
def trt(monkeypatch):
    monkeypatch.setattr(cuda_memory, "DeviceBuffer", Buffer)
    monkeypatch.setattr(cuda_memory, "synchronize", lambda stream: None)
    base = type("IInt8EntropyCalibrator2", (), {"__init__": lambda self: None})
    return types.SimpleNamespace(IInt8EntropyCalibrator2=base)


def images(n: int) -> np.ndarray:
    return np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)


def feed(calibrator) -> list[np.ndarray]:
    while calibrator.get_batch(["input"]) is not None:
        pass
    return calibrator.buffer.uploads


@pytest.mark.parametrize("count", [3, 8, 11])
def test_every_batch_has_the_profile_opt_rows_and_every_image_is_seen(tmp_path, trt, count):
    # 3 images with opt 8 gave a 3-row buffer that TensorRT read 8 rows from
    batch = images(count)
    calibrator = calibration.make_entropy_calibrator(trt, batch, 8, "input",
                                                     tmp_path / "e.calib.cache", "key")
    assert calibrator.get_batch_size() == 8
    fed = feed(calibrator)
    assert fed and all(len(chunk) == 8 for chunk in fed)
    seen = {row.tobytes() for chunk in fed for row in chunk}
    assert seen == {row.tobytes() for row in batch}


def test_a_cache_is_handed_back_only_for_the_model_and_images_it_was_made_from(tmp_path, trt):
    cache = tmp_path / "e.calib.cache"
    key = calibration.calibration_key(INFO, images(3), 8)
    writer = calibration.make_entropy_calibrator(trt, images(3), 8, "input", cache, key)
    assert writer.read_calibration_cache() is None
    writer.write_calibration_cache(b"scales")
    same = calibration.make_entropy_calibrator(trt, images(3), 8, "input", cache, key)
    assert same.read_calibration_cache() == b"scales"
    for changed in (calibration.calibration_key(INFO, images(4), 8),  # other images
                    calibration.calibration_key(INFO, images(3), 16),  # other batch
                    calibration.calibration_key(
                        replace(INFO, fingerprint="sha256:" + "b" * 64), images(3), 8)):
        other = calibration.make_entropy_calibrator(trt, images(3), 8, "input", cache, changed)
        assert other.read_calibration_cache() is None  # it used to reuse the old scales
