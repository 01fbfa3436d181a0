"""INT8 calibration from the user's own images, preprocessed exactly as the model says.

Two routes, chosen by what the TensorRT at hand offers:

* implicit quantization (TensorRT 8.5 … 10.x): :func:`make_entropy_calibrator` gives an
  ``IInt8EntropyCalibrator2`` that feeds the images and keeps a calibration cache beside the
  engine, so a rebuild skips calibration;
* explicit quantization (TensorRT 11, TensorRT-RTX: no calibrator, strongly typed):
  :func:`write_qdq_model` writes Quantize/DequantizeLinear nodes into a copy of the ONNX with
  ONNX Runtime's ``quantize_static`` (symmetric INT8, as TensorRT requires zero points of 0),
  and the engine is built from that copy. This route runs on a CPU and is tested there.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siamese_edge.errors import InvalidInputError, MissingDependencyError, ModelError
from siamese_edge.model_info import ModelInfo
from siamese_edge.tensorrt.errors import EngineBuildError


@dataclass
class ImageSample:
    """Preprocessed images: ``batch`` float32 NCHW, ``labels`` = parent folder names."""

    batch: np.ndarray
    labels: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def load_image_sample(data_dir: str | os.PathLike[str], info: ModelInfo, limit: int = 512,
                      seed: int = 0) -> ImageSample:
    """Up to ``limit`` images found under ``data_dir`` (recursively), preprocessed for the model.

    The pick is random but seeded, and spread over folders, so calibration sees every identity.
    Unreadable files are skipped. Raises InvalidInputError when nothing usable is found.
    """
    from siamese_edge.runtime.imageio import image_files, read_image
    from siamese_edge.runtime.preprocess import fit_images, normalize

    root = Path(data_dir)
    if not root.is_dir():
        raise InvalidInputError(f"{root}: calibration data must be a folder of images")
    paths = image_files(root, recursive=True)[0]
    if not paths:
        raise InvalidInputError(f"{root}: no images found for calibration")
    # a seeded random order over every folder, read until ``limit`` images decoded
    order = np.random.default_rng(seed).permutation(len(paths))
    images, kept = [], []
    for index in order:
        if len(images) >= limit:
            break
        try:
            images.append(read_image(paths[index]))
            kept.append(paths[index])
        except Exception:  # noqa: BLE001 - one bad file must not stop calibration
            continue
    if not images:
        raise InvalidInputError(f"{root}: none of the images could be read")
    pre = info.preprocessing
    batch = normalize(fit_images(images, pre.height, pre.width, pre.channels), pre.mean, pre.std)
    return ImageSample(np.ascontiguousarray(batch, np.float32),
                       [p.parent.name for p in kept], [str(p) for p in kept])


def calibration_cache_path(engine_path: str | os.PathLike[str]) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".calib.cache")


def calibration_key(info: ModelInfo, batch: np.ndarray, batch_size: int) -> str:
    """What a calibration cache was made from: the model, the preprocessed images and the
    calibration batch. TensorRT trusts any cache it is handed ("it is the responsibility of
    the application" to recalibrate when the network or the data change)."""
    digest = hashlib.sha256()
    digest.update(info.fingerprint.encode())
    digest.update(np.ascontiguousarray(batch, np.float32).tobytes())
    digest.update(str(int(batch_size)).encode())
    return "sha256:" + digest.hexdigest()


def make_entropy_calibrator(trt, batch: np.ndarray, batch_size: int, input_name: str,
                            cache_path: str | os.PathLike[str], cache_key: str):
    """An ``IInt8EntropyCalibrator2`` over ``batch`` (float32 NCHW) with a cache file.

    Every batch has exactly ``batch_size`` rows (the profile's opt shape, at which TensorRT
    calibrates): images are repeated to fill the last one. The cache is read back only when
    it was written for ``cache_key`` (:func:`calibration_key`). Needs a GPU (device buffers
    through cuda-python). Call ``.free()`` after the build.
    """
    from siamese_edge.tensorrt import cuda_memory

    size = max(1, int(batch_size))
    data = np.ascontiguousarray(batch, np.float32)
    rows = -(-len(data) // size) * size
    data = np.ascontiguousarray(data[np.arange(rows) % len(data)])
    cache_path = Path(cache_path)
    key_path = cache_path.with_name(cache_path.name + ".key")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.data, self.size, self.cursor = data, size, 0
            self.buffer = cuda_memory.DeviceBuffer(data[:size].nbytes)

        def get_batch_size(self) -> int:
            return self.size

        def get_batch(self, names, p_str=None):
            if self.cursor + self.size > len(self.data):
                return None
            chunk = self.data[self.cursor:self.cursor + self.size]
            self.cursor += self.size
            self.buffer.upload(chunk, 0)
            cuda_memory.synchronize(0)
            return [self.buffer.ptr]

        def read_calibration_cache(self):
            fresh = key_path.is_file() and key_path.read_text() == cache_key
            return cache_path.read_bytes() if fresh and cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            from siamese_edge.runtime.atomic_file import replaced_on_success

            with replaced_on_success(cache_path) as handle:
                handle.write(bytes(memoryview(cache)))
            with replaced_on_success(key_path) as handle:
                handle.write(cache_key.encode())

        def free(self) -> None:
            self.buffer.free()

    del input_name  # one input: TensorRT asks for all of them in order
    return EntropyCalibrator()


#: operators given Q/DQ inputs: those with weights, where INT8 pays
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
#: rows per calibration chunk (see ``_calibration_chunks``)
CALIBRATION_CHUNK = 32


def _fixed_batch(onnx_path: str | os.PathLike[str], info: ModelInfo) -> int | None:
    """The batch size fixed in the graph's input, or None where it is dynamic."""
    from siamese_edge.runtime.model_file import fixed_batch, open_session

    try:
        return fixed_batch(open_session(onnx_path), info)
    except ModelError:  # an unreadable graph fails in quantize_static, and is reported there
        return None


def _calibration_chunks(sample: np.ndarray, fixed_batch: int | None) -> list[np.ndarray]:
    """``sample`` in equal chunks of ``CALIBRATION_CHUNK`` rows (fewer when the sample is
    smaller), or of exactly ``fixed_batch`` rows where the graph takes no other batch size;
    images are repeated to fill the last chunk. Equal, because onnxruntime's entropy
    calibration stacks the chunks' outputs and failed on uneven ones ("inhomogeneous shape"):
    100 or 200 images, the sizes its error message asks for, could not be calibrated."""
    size = fixed_batch or min(CALIBRATION_CHUNK, len(sample))
    rows = -(-len(sample) // size) * size
    filled = sample[np.arange(rows) % len(sample)]
    return [filled[i:i + size] for i in range(0, rows, size)]


def write_qdq_model(onnx_path: str | os.PathLike[str], out_path: str | os.PathLike[str],
                    sample: np.ndarray, info: ModelInfo, per_channel: bool = True) -> Path:
    """Write an explicitly quantized copy of ``onnx_path`` (Q/DQ nodes, symmetric INT8).

    Activation ranges come from ``sample`` (the user's images, preprocessed), weights are
    quantized per output channel. The siamese-edge metadata is carried over unchanged (same
    fingerprint: the engine still embeds this model, at another precision).

    Raises:
        MissingDependencyError: onnx / onnxruntime.quantization is not installed.
        EngineBuildError: calibration failed (e.g. the graph refused the sample's shape).
    """
    try:
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, \
            QuantFormat, QuantType, quantize_static
    except ImportError as exc:
        raise MissingDependencyError(f"explicit INT8 quantization needs onnx and onnxruntime "
                                     f"({exc})") from None
    from siamese_edge.model_info import METADATA_KEY
    from siamese_edge.onnx_metadata import write_metadata_entry

    chunks = _calibration_chunks(sample, _fixed_batch(onnx_path, info))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(chunks)

        def get_next(self):
            chunk = next(self.rows, None)
            return None if chunk is None else {info.input_name: chunk}

    out_path = Path(out_path)
    # quantize_static prints histogram notes and logs "consider pre-processing" on the root
    # logger: neither is the user's concern, and stdout must stay clean for --json
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(onnx_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                per_channel=per_channel,
                calibrate_method=CalibrationMethod.Entropy if len(sample) >= 64 else
                CalibrationMethod.MinMax,
                # only the layers with weights: a quantized scalar constant (e.g. of a Mul)
                # is refused by strongly typed TensorRT ("only allowed before DQ")
                op_types_to_quantize=list(QUANTIZED_OPS),
                # TensorRT takes only zero points of 0 (symmetric ranges) and no INT32
                # dequantize (biases stay float)
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                               "QuantizeBias": False})
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors span lines and types
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise EngineBuildError(f"{onnx_path}: INT8 calibration (onnxruntime quantize_static) "
                               f"failed: {detail[:500]}") from None
    finally:
        logging.disable(logging.NOTSET)
    write_metadata_entry(out_path, METADATA_KEY, info.to_json())
    return out_path
