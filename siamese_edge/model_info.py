"""What a siamese-edge model says about itself.

An exported ONNX model carries one JSON document under the metadata key ``siamese_edge``
(:data:`METADATA_KEY`); a TensorRT engine carries the same document in its sidecar JSON. The
runtime needs nothing else to preprocess images, interpret the output and decide.

Pure Python on purpose: the runtime reads it with ONNX Runtime, export writes it with onnx.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from siamese_edge.errors import ModelError

METADATA_KEY = "siamese_edge"
FORMAT_VERSION = 1


#: the largest input side a model may declare: an embedding network's input is small, and a
#: (hostile) model declaring 50000x50000 made every call allocate gigabytes
MAX_INPUT_SIDE = 4096


@dataclass(frozen=True)
class Preprocessing:
    """How images become the model's input: see :mod:`siamese_edge.runtime.preprocess`."""

    height: int
    width: int
    channels: int  # 1 = gray, 3 = RGB
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "stretch"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        if any(isinstance(v, bool) or not isinstance(v, int)
               for v in (self.height, self.width, self.channels)):
            raise ModelError(f"input size and channels must be integers, got {self.height}x"
                             f"{self.width}x{self.channels}")
        if self.channels not in (1, 3):
            raise ModelError(f"unsupported channel count {self.channels} (1 or 3)")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ModelError("mean and std need one value per channel")
        if min(self.height, self.width) < 1 or max(self.height, self.width) > MAX_INPUT_SIDE:
            raise ModelError(f"bad input size {self.height}x{self.width} (1 to "
                             f"{MAX_INPUT_SIDE} pixels a side)")
        # std 0 divides by zero: every embedding would be nan and every probe rejected
        if not all(math.isfinite(m) for m in self.mean) or \
                not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ModelError(f"mean must be finite and std finite and positive, got mean "
                             f"{list(self.mean)}, std {list(self.std)}")
        # the runtime implements one resize and one layout: refuse what it would silently
        # do differently from the model's training
        if self.resize != "stretch":
            raise ModelError(f"unsupported resize '{self.resize}' (this siamese-edge "
                             f"implements 'stretch')")
        if self.layout != "NCHW":
            raise ModelError(f"unsupported layout '{self.layout}' (this siamese-edge "
                             f"implements 'NCHW')")


@dataclass(frozen=True)
class ModelInfo:
    """The self-description of an embedding model.

    Attributes:
        preprocessing: input size, channels and normalisation.
        embedding_dim: length of the output vector (L2-normalised).
        metric: how two embeddings compare; ``cosine`` (higher is more similar).
        threshold: default decision threshold on the metric: accept when score >= threshold.
        threshold_source: how the threshold was chosen (e.g. EER on a validation split).
        fingerprint: ``sha256:<hex>`` of the model's weights and graph; galleries and engines
            are bound to it. Rewriting metadata (e.g. a recalibrated threshold) keeps it.
        training: how the model was trained (data, loss, backbone, epochs, seed, ...).
        input_name, output_name: tensor names in the graph.
    """

    preprocessing: Preprocessing
    embedding_dim: int
    threshold: float
    fingerprint: str = ""
    metric: str = "cosine"
    threshold_source: str = ""
    name: str = "siamese-edge-model"
    training: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    input_name: str = "images"
    output_name: str = "embeddings"
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.embedding_dim, bool) or not isinstance(self.embedding_dim, int) \
                or self.embedding_dim < 1:
            raise ModelError(f"bad embedding size {self.embedding_dim!r}")
        if not math.isfinite(self.threshold):
            raise ModelError(f"threshold {self.threshold} is not a finite number")
        if self.metric != "cosine":
            raise ModelError(f"unsupported metric '{self.metric}' (this siamese-edge "
                             f"implements 'cosine')")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        try:
            version = int(data.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise ModelError(f"model metadata format {version} is newer than this "
                                 f"siamese-edge understands ({FORMAT_VERSION}); upgrade it")
            pre = dict(data["preprocessing"])
            pre["mean"] = tuple(float(v) for v in pre["mean"])
            pre["std"] = tuple(float(v) for v in pre["std"])
            fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            fields["preprocessing"] = Preprocessing(**pre)
            fields["embedding_dim"] = int(fields["embedding_dim"])
            fields["threshold"] = float(fields["threshold"])
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model metadata is incomplete or malformed ({exc})") from None

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"model metadata is not valid JSON ({exc})") from None
        except RecursionError:  # a hostile model: thousands of nested brackets
            raise ModelError("model metadata is nested too deeply to read") from None
        if not isinstance(data, dict):
            raise ModelError("model metadata is not a JSON object")
        return cls.from_dict(data)

    def with_threshold(self, threshold: float, source: str,
                       calibration: dict[str, Any] | None = None) -> ModelInfo:
        return replace(self, threshold=float(threshold), threshold_source=source,
                       calibration=calibration)
