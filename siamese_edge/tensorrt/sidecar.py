"""The JSON beside every engine, and the check that an engine still fits this device and model.

A TensorRT engine loads only on the TensorRT version (and GPU family) that built it, and it
embeds one exact model. ``model.engine`` gets ``model.engine.json`` (never a header glued onto
the engine file, which would break ``trtexec --loadEngine`` and every other tool) recording what
it was built with; :func:`check_engine_fresh` compares that with what is here now.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from siamese_edge.errors import InvalidInputError, ModelError
from siamese_edge.model_info import ModelInfo
from siamese_edge.runtime.atomic_file import replaced_on_success
from siamese_edge.tensorrt.errors import StaleEngineError

SIDECAR_FORMAT = 1


def sidecar_path(engine_path: str | os.PathLike[str]) -> Path:
    """``x.engine`` → ``x.engine.json``."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


@dataclass(frozen=True)
class RuntimeFacts:
    """What an engine depends on, as found on this machine now.

    Attributes:
        tensorrt_version: e.g. ``tensorrt 10.3.0`` (module name and version).
        gpu_name: e.g. ``Orin``; None where no CUDA device is visible.
        compute_capability: e.g. ``8.7``; None where no CUDA device is visible.
    """

    tensorrt_version: str
    gpu_name: str | None = None
    compute_capability: str | None = None


@dataclass
class EngineSidecar:
    """Everything known about how an engine was built.

    ``model_info`` is the ONNX model's full :class:`ModelInfo` document, so an engine can run
    (preprocessing, threshold) without its ONNX file at hand.
    """

    tensorrt_version: str
    gpu_name: str | None
    compute_capability: str | None
    precision: str
    batch: dict[str, int]
    onnx_fingerprint: str
    model_info: dict[str, Any]
    onnx_sha256: str = ""
    precision_mode: str = ""
    built_at: str = ""
    build_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: the builder's workspace limit and the target profile it came from (None: none)
    workspace_mb: int | None = None
    target: str | None = None
    format_version: int = SIDECAR_FORMAT

    @property
    def info(self) -> ModelInfo:
        return ModelInfo.from_dict(self.model_info)

    def write(self, engine_path: str | os.PathLike[str]) -> Path:
        path = sidecar_path(engine_path)
        if not self.built_at:
            self.built_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with replaced_on_success(path) as handle:  # a fresh temporary name: no symlink
            handle.write((json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode())
        return path

    @classmethod
    def read(cls, engine_path: str | os.PathLike[str]) -> EngineSidecar:
        path = sidecar_path(engine_path)
        if not path.is_file():
            raise StaleEngineError(f"{engine_path}: no sidecar {path.name} beside the engine, so "
                                   f"nothing says what it was built for; "
                                   f"{rebuild_hint(engine_path)}")
        try:
            data = json.loads(path.read_text())
            _check_structure(data)
            fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**fields)
        except (ValueError, TypeError, ModelError) as exc:
            raise StaleEngineError(f"{path}: unreadable engine sidecar ({exc}); "
                                   f"{rebuild_hint(engine_path)}") from None


_TEXT = ("tensorrt_version", "precision", "onnx_fingerprint", "onnx_sha256", "precision_mode",
         "built_at")


def _check_structure(data: Any) -> None:
    """Raise ValueError naming the first missing or mistyped field of a parsed sidecar, so that
    every reader of its fields (freshness, the embedder) can trust their types."""
    from siamese_edge.tensorrt.builder import BatchProfile

    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not isinstance(data, dict):
        raise ValueError(f"a JSON object is expected, not {type(data).__name__}")
    missing = [k for k in ("tensorrt_version", "precision", "batch", "onnx_fingerprint",
                           "model_info") if k not in data]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not integer(data.get("format_version", SIDECAR_FORMAT)):
        raise ValueError(f"format_version {data['format_version']!r} is not an integer")
    for key in _TEXT + ("gpu_name", "compute_capability"):
        value = data.get(key)
        if not (isinstance(value, str) or (value is None and key not in _TEXT)):
            raise ValueError(f"{key} {value!r} is not a string")
    batch = data["batch"]
    if not (isinstance(batch, dict) and set(batch) == {"min", "opt", "max"}
            and all(integer(v) for v in batch.values())):
        raise ValueError(f"batch {batch!r} is not {{\"min\": N, \"opt\": N, \"max\": N}}")
    try:
        BatchProfile(**batch)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data.get("build_seconds", 0.0), (int, float)) or \
            not isinstance(data.get("notes", []), list):
        raise ValueError("build_seconds is not a number or notes is not a list")
    if not (data.get("workspace_mb") is None or integer(data["workspace_mb"])) or \
            not (data.get("target") is None or isinstance(data["target"], str)):
        raise ValueError("workspace_mb is not an integer or target is not a string")
    if not isinstance(data["model_info"], dict):
        raise ValueError(f"model_info {data['model_info']!r} is not a JSON object")
    ModelInfo.from_dict(data["model_info"])  # ModelError when incomplete or malformed


def rebuild_hint(engine_path: str | os.PathLike[str], model: str = "MODEL.onnx") -> str:
    return (f"rebuild the engine on this device (siamese-edge export {model} "
            f"--engine {engine_path})")


def check_engine_fresh(engine_path: str | os.PathLike[str], onnx_info: ModelInfo | None,
                       runtime_facts: RuntimeFacts | None) -> list[str]:
    """Why the engine at ``engine_path`` must not be used here; empty when it may.

    Args:
        engine_path: the engine; its sidecar is read from beside it.
        onnx_info: the model the engine should embed (None: do not compare models).
        runtime_facts: this machine's TensorRT and GPU (None: do not compare; a GPU field
            that is None on either side is not compared).
    """
    engine_path = Path(engine_path)
    if not engine_path.is_file():
        return [f"no engine file {engine_path}"]
    try:
        sidecar = EngineSidecar.read(engine_path)
    except StaleEngineError as exc:
        return [str(exc).split("; rebuild")[0]]
    if sidecar.format_version > SIDECAR_FORMAT:
        return [f"sidecar format {sidecar.format_version} is newer than this siamese-edge"]
    reasons = []
    if onnx_info is not None and sidecar.onnx_fingerprint != onnx_info.fingerprint:
        reasons.append(f"built from another model ({sidecar.onnx_fingerprint[:19]}..., this "
                       f"model is {onnx_info.fingerprint[:19]}...)")
    if runtime_facts is not None:
        if sidecar.tensorrt_version != runtime_facts.tensorrt_version:
            reasons.append(f"built with {sidecar.tensorrt_version}, this device has "
                           f"{runtime_facts.tensorrt_version}")
        if sidecar.gpu_name and runtime_facts.gpu_name and \
                sidecar.gpu_name != runtime_facts.gpu_name:
            reasons.append(f"built on GPU '{sidecar.gpu_name}', this device has "
                           f"'{runtime_facts.gpu_name}'")
        if sidecar.compute_capability and runtime_facts.compute_capability and \
                sidecar.compute_capability != runtime_facts.compute_capability:
            reasons.append(f"built for compute capability {sidecar.compute_capability}, this "
                           f"GPU is {runtime_facts.compute_capability}")
    return reasons


def ensure_engine_fresh(engine_path: str | os.PathLike[str], onnx_info: ModelInfo | None,
                        runtime_facts: RuntimeFacts | None,
                        model_hint: str = "MODEL.onnx") -> EngineSidecar:
    """The engine's sidecar, or :class:`StaleEngineError` listing every reason and how to fix."""
    reasons = check_engine_fresh(engine_path, onnx_info, runtime_facts)
    if reasons:
        raise StaleEngineError(f"{engine_path}: stale engine: {'; '.join(reasons)}; "
                               f"{rebuild_hint(engine_path, model_hint)} or pass --rebuild-stale")
    return EngineSidecar.read(engine_path)


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


def gpu_facts(device: int = 0) -> tuple[str | None, str | None]:
    """(GPU name, compute capability) of CUDA device ``device`` via cuda-python, else Nones."""
    try:
        cudart = _cudart()
        err, props = cudart.cudaGetDeviceProperties(device)
        if int(err) != 0:
            return None, None
        name = props.name
        name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"
    except Exception:  # no cuda-python, no driver, no device: nothing to compare
        return None, None


def current_runtime_facts(trt=None) -> RuntimeFacts:
    """This machine's TensorRT version and GPU (loads TensorRT and cuda-python lazily)."""
    from siamese_edge.tensorrt import load_tensorrt, tensorrt_version

    trt = trt or load_tensorrt()
    name, capability = gpu_facts()
    return RuntimeFacts(tensorrt_version(trt), name, capability)
