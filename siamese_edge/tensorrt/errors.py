"""Errors of the TensorRT path that a user can cause or fix, each shown in one line."""

from __future__ import annotations

from siamese_edge.errors import ExportError, InvalidInputError, MissingDependencyError, \
    ModelError, SiameseEdgeError


class TensorRTUnavailableError(MissingDependencyError):
    """Neither ``tensorrt`` nor ``tensorrt_rtx`` (nor cuda-python, where needed) imports."""


class EngineBuildError(ExportError):
    """Parsing the ONNX model or building the engine failed."""


class UnsupportedOpsError(EngineBuildError):
    """The ONNX graph holds operators TensorRT's ONNX parser does not support."""


class PrecisionUnsupportedError(EngineBuildError):
    """The requested precision cannot be built honestly with this TensorRT."""


class StaleEngineError(ModelError):
    """An engine was built for another TensorRT, GPU or model than the one at hand."""


class EngineLoadError(ModelError):
    """TensorRT could not deserialize or run an engine file."""


class ParityError(EngineBuildError):
    """The engine's embeddings or decisions differ from ONNX Runtime FP32 beyond the bounds."""


class GpuUnavailableError(SiameseEdgeError):
    """A GPU was required (``--require-gpu``) but the backend runs on the CPU."""


class TargetError(InvalidInputError):
    """A target profile (``export/*.json``) is unknown or malformed."""
