"""Choosing the inference backend for a model: ``--backend auto|onnxruntime|tensorrt``.

* ``onnxruntime``: ONNX Runtime with the best execution providers this install offers
  (TensorRT EP with an engine cache under a directory we control, then CUDA, then CPU). The
  providers a session really got are checked on enter: a CPU fallback is reported loudly, and
  is an error with ``require_gpu``.
* ``tensorrt``: a native TensorRT engine (``engine=``, or ``MODEL.engine`` beside the model,
  or the model path itself when it is an engine) whose sidecar matches this device and model;
  a stale engine is refused, or rebuilt with ``rebuild_stale``.
* ``auto``: ``tensorrt`` when a fresh engine, TensorRT and a GPU are all here; else
  ``onnxruntime`` as above. The embedder's ``device_description`` says what was chosen, e.g.
  ``onnxruntime (CPUExecutionProvider)``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from siamese_edge.errors import InvalidInputError, ModelError
from siamese_edge.runtime.embedder import Embedder

BACKENDS = ("auto", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def cache_root() -> Path:
    """``$SIAMESE_EDGE_CACHE``, else ``$XDG_CACHE_HOME/siamese-edge``, else ``~/.cache/…``."""
    if os.environ.get("SIAMESE_EDGE_CACHE"):
        return Path(os.environ["SIAMESE_EDGE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "siamese-edge"


def ort_trt_cache_dir(model_path: str | os.PathLike[str], fingerprint: str) -> Path:
    """Where the TensorRT execution provider keeps engines for one model: a folder per model
    fingerprint, so another model never picks up a stale engine."""
    key = hashlib.sha256((fingerprint or str(Path(model_path).resolve())).encode()).hexdigest()
    return cache_root() / "ort-tensorrt" / key[:16]


def available_providers() -> list[str]:
    """What this ONNX Runtime install lists (not proof that they work: see module doc)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def onnxruntime_providers(model_path: str | os.PathLike[str], info, batch_size: int,
                          available: list[str] | None = None,
                          cache_dir: str | os.PathLike[str] | None = None) -> list:
    """Execution providers in order of preference, with TensorRT EP options filled in."""
    available = available_providers() if available is None else available
    providers: list = []
    if "TensorrtExecutionProvider" in available:
        cache = Path(cache_dir) if cache_dir else ort_trt_cache_dir(model_path, info.fingerprint)
        cache.mkdir(parents=True, exist_ok=True)
        pre = info.preprocessing
        shape = f"x{pre.channels}x{pre.height}x{pre.width}"
        providers.append(("TensorrtExecutionProvider", {
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache),
            "trt_profile_min_shapes": f"{info.input_name}:1{shape}",
            "trt_profile_opt_shapes": f"{info.input_name}:{max(1, batch_size // 2)}{shape}",
            "trt_profile_max_shapes": f"{info.input_name}:{batch_size}{shape}",
        }))
    if "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


def default_engine_path(model_path: str | os.PathLike[str]) -> Path:
    """``model.onnx`` → ``model.engine`` (where ``siamese-edge engine`` puts it by default)."""
    return Path(model_path).with_suffix(".engine")


def _target_opset(name: str) -> int | None:
    """The opset of the target profile ``name``, or None where it is not found here."""
    from siamese_edge.tensorrt.errors import TargetError
    from siamese_edge.tensorrt.targets import load_target

    try:
        return load_target(name).opset
    except TargetError:
        return None


def _tensorrt_embedder(model_path: Path, engine: Path | None, batch_size: int,
                       rebuild_stale: bool) -> Embedder:
    from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder
    from siamese_edge.tensorrt.errors import StaleEngineError
    from siamese_edge.tensorrt.sidecar import EngineSidecar, check_engine_fresh, \
        current_runtime_facts

    if model_path.suffix in ENGINE_SUFFIXES:
        return TensorRTEmbedder(model_path, batch_size)
    from siamese_edge.runtime.model_file import read_model_info

    engine = engine or default_engine_path(model_path)
    onnx_info = read_model_info(model_path)
    if rebuild_stale:
        reasons = check_engine_fresh(engine, onnx_info, current_runtime_facts())
        if reasons:
            from siamese_edge.tensorrt.builder import BatchProfile, EngineBuildOptions, \
                build_engine

            print(f"rebuilding {engine}: {'; '.join(reasons)}", file=sys.stderr)
            try:
                old = EngineSidecar.read(engine)
                precision = old.precision
                if precision == "int8":  # calibration images are not known here
                    print("note: the stale engine was INT8; rebuilding it as FP16 (rebuild "
                          "INT8 with 'siamese-edge engine ... --calib DATA')", file=sys.stderr)
                    precision = "fp16"
                kept = {"workspace_mb": old.workspace_mb} if old.workspace_mb else {}
                if old.target:  # the profile it was built for, and its opset check
                    kept.update(target=old.target, target_opset=_target_opset(old.target))
                options = EngineBuildOptions(precision=precision, batch=BatchProfile(**old.batch),
                                             **kept)
            except StaleEngineError:
                options = EngineBuildOptions()
            build_engine(model_path, engine, options)
    elif not engine.is_file():
        raise ModelError(f"no TensorRT engine at {engine}; build one on this device with "
                         f"'siamese-edge engine {model_path} --out {engine}'")
    return TensorRTEmbedder(engine, batch_size, onnx_info=onnx_info,
                            model_hint=str(model_path))


def _tensorrt_usable(model_path: Path, engine: Path | None) -> Path | None:
    """The engine ``auto`` may use: present, fresh, TensorRT importable, a GPU visible."""
    engine = model_path if model_path.suffix in ENGINE_SUFFIXES else \
        (engine or default_engine_path(model_path))
    if not engine.is_file():
        return None
    try:
        from siamese_edge.tensorrt.cuda_memory import device_count
        from siamese_edge.tensorrt.sidecar import check_engine_fresh, current_runtime_facts

        if device_count() == 0:
            return None
        onnx_info = None
        if engine != model_path:
            from siamese_edge.runtime.model_file import read_model_info
            onnx_info = read_model_info(model_path)
        reasons = check_engine_fresh(engine, onnx_info, current_runtime_facts())
    except Exception:  # noqa: BLE001 - any failure means "not usable here": fall back
        return None
    if reasons:
        print(f"warning: not using {engine}: {'; '.join(reasons)}", file=sys.stderr)
        return None
    return engine


def create_embedder(model_path: str | os.PathLike[str], backend: str = "auto",
                    batch_size: int = 64, *, engine: str | os.PathLike[str] | None = None,
                    require_gpu: bool = False, providers: list | None = None,
                    rebuild_stale: bool = False,
                    trt_cache_dir: str | os.PathLike[str] | None = None) -> Embedder:
    """An embedder for ``model_path`` on the requested backend (not yet entered).

    Args:
        model_path: an exported ONNX model (or, for ``tensorrt``, an engine with its sidecar).
        backend: ``auto`` picks the best backend that works here; ``onnxruntime`` or
            ``tensorrt`` force one.
        batch_size: images per inference call.
        engine: TensorRT engine to use (default: ``MODEL.engine`` beside the model).
        require_gpu: fail rather than run on the CPU.
        providers: explicit ONNX Runtime providers (default: best available).
        rebuild_stale: rebuild a stale or missing engine (``tensorrt`` only) instead of refusing.
        trt_cache_dir: engine cache of ONNX Runtime's TensorRT EP (default under
            :func:`cache_root`, one folder per model fingerprint).

    The returned embedder's ``device_description`` names what it runs on.
    """
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    model_path = Path(model_path)
    engine_path = Path(engine) if engine else None
    if backend == "tensorrt" or (backend == "auto" and engine_path is not None
                                 and rebuild_stale):
        return _tensorrt_embedder(model_path, engine_path, batch_size, rebuild_stale)
    if backend == "auto":
        usable = _tensorrt_usable(model_path, engine_path)
        if usable is not None:
            return _tensorrt_embedder(model_path, engine_path, batch_size, False)
        if engine_path is not None:
            print(f"warning: engine {engine_path} cannot be used here; falling back to ONNX "
                  f"Runtime", file=sys.stderr)
    if model_path.suffix in ENGINE_SUFFIXES:
        raise InvalidInputError(f"{model_path} is a TensorRT engine; ONNX Runtime needs the "
                                f"ONNX model (or use --backend tensorrt on a GPU)")
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    embedder = OnnxRuntimeEmbedder(model_path, providers=providers or ["CPUExecutionProvider"],
                                   batch_size=batch_size, require_gpu=require_gpu)
    if providers is None:
        chosen = onnxruntime_providers(model_path, embedder.info, embedder.batch_size,
                                       cache_dir=trt_cache_dir)
        if chosen != ["CPUExecutionProvider"] or require_gpu:
            embedder = OnnxRuntimeEmbedder(model_path, providers=chosen, batch_size=batch_size,
                                           require_gpu=require_gpu)
    return embedder
