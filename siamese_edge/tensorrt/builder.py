"""ONNX → TensorRT engine through the TensorRT Python API (no trtexec), on any TensorRT a user
meets: 8.5 (JetPack 5), 10.x (JetPack 6, desktop), 11.x and TensorRT-RTX.

Features are detected (``hasattr``), never inferred from version strings:

* ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH`` is set where it exists (required before 10,
  deprecated and ignored after, gone in 11);
* ``BuilderFlag.FP16`` / ``INT8`` exist up to 10.x. Where they do not (11.x, TensorRT-RTX) the
  builder is strongly typed: precision comes from the ONNX itself, so FP16 builds from an FP16
  copy of the ONNX (ONNX Runtime's float16 converter, inputs/outputs kept FP32) and INT8 from a
  Q/DQ copy (:func:`~siamese_edge.tensorrt.calibration.write_qdq_model`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.atomic_file import create_folder, replaced_on_success, same_file
from siamese_edge.tensorrt.errors import EngineBuildError, PrecisionUnsupportedError
from siamese_edge.tensorrt.native_stdout import native_stdout_to_stderr

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BatchProfile:
    """The optimization profile of the batch axis: ``min <= opt <= max``."""

    min: int = 1
    opt: int = 8
    max: int = 32

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise InvalidInputError(f"batch profile needs 1 <= min <= opt <= max, got "
                                    f"{self.min}:{self.opt}:{self.max}")

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """``"1:8:32"`` (or one number ``"8"`` for a fixed batch)."""
        parts = str(text).split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise InvalidInputError(f"batch profile '{text}' is not MIN:OPT:MAX") from None
        if len(values) == 1:
            values *= 3
        if len(values) != 3:
            raise InvalidInputError(f"batch profile '{text}' is not MIN:OPT:MAX")
        return cls(*values)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclass(frozen=True)
class EngineBuildOptions:
    """How to build: one field per CLI option of ``siamese-edge engine``.

    Attributes:
        precision: ``fp32``, ``fp16`` or ``int8``.
        batch: optimization profile of the batch axis.
        workspace_mb: builder workspace memory limit.
        calib_dir: folder of user images for INT8 calibration (required for int8).
        calib_count: images drawn from ``calib_dir``.
        check_ops: run the static op-support check first (needs the onnx package).
        parity: after building, compare with ONNX Runtime FP32 (needs a GPU; skipped
            with a note where the engine cannot run here).
        parity_dir: images for the parity sample (default ``calib_dir``; else random inputs).
        tensorrt_module: force ``tensorrt`` or ``tensorrt_rtx``.
        target: the deployment target profile these options came from, if any.
        target_opset: that profile's ONNX opset; a model above it gets a note.
    """

    precision: str = "fp32"
    batch: BatchProfile = field(default_factory=BatchProfile)
    workspace_mb: int = 1024
    calib_dir: str | None = None
    calib_count: int = 512
    check_ops: bool = True
    parity: bool = True
    parity_dir: str | None = None
    tensorrt_module: str | None = None
    target: str | None = None
    target_opset: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InvalidInputError(f"precision '{self.precision}' is not one of "
                                    f"{', '.join(PRECISIONS)}")
        if self.workspace_mb < 1:
            raise InvalidInputError("workspace must be at least 1 MB")
        if self.precision == "int8" and not self.calib_dir:
            raise InvalidInputError("int8 needs calibration images (--calib DATA_DIR): "
                                    "a few hundred of the images the model will see")


@dataclass
class EngineBuildReport:
    engine_path: str
    sidecar_path: str
    tensorrt_version: str
    gpu_name: str | None
    compute_capability: str | None
    precision: str
    precision_mode: str
    batch: str
    workspace_mb: int
    build_seconds: float
    engine_bytes: int
    timing_cache: str | None
    timing_cache_reused: bool
    notes: list[str] = field(default_factory=list)
    parity: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _Logger:
    """A TensorRT logger that keeps errors (and warnings) to put in exception messages."""

    @staticmethod
    def create(trt):
        class Logger(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []
                self.warnings: list[str] = []

            def log(self, severity, msg) -> None:
                if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                    self.errors.append(str(msg).strip())
                elif severity == trt.ILogger.Severity.WARNING:
                    self.warnings.append(str(msg).strip())

        return Logger()


def strongly_typed(trt) -> bool:
    """True where precision cannot be requested by builder flags (TensorRT 11, RTX)."""
    return not hasattr(trt.BuilderFlag, "FP16")


def _network_flags(trt) -> int:
    flags = 0
    creation = trt.NetworkDefinitionCreationFlag
    if hasattr(creation, "EXPLICIT_BATCH") and not strongly_typed(trt):
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    if strongly_typed(trt) and hasattr(creation, "STRONGLY_TYPED"):
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return flags


def _parser_errors(parser) -> list[str]:
    errors = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        where = []
        for attribute in ("node_name", "node_operator"):
            getter = getattr(error, attribute, None)
            value = getter() if callable(getter) else None
            if value:
                where.append(str(value))
        if not where and getattr(error, "node", None) is not None and error.node() >= 0:
            where.append(f"node {error.node()}")
        prefix = f"[{' '.join(where)}] " if where else ""
        errors.append(prefix + str(error.desc()).strip())
    return errors


def _fp16_onnx(onnx_path: Path, out_path: Path) -> Path:
    """An FP16-weight copy of the model (inputs/outputs stay FP32), for strongly typed builders.

    The conversion keeps the final normalisation's reduction in FP32 where the converter's
    default block list says so; parity against FP32 is checked after the build anyway.
    """
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:
        raise PrecisionUnsupportedError(
            f"this TensorRT is strongly typed (no FP16 builder flag), so FP16 must come from an "
            f"FP16 ONNX, and converting one needs onnx and onnxruntime's float16 tool ({exc}); "
            f"install them or build fp32") from None
    model = onnx.load(str(onnx_path))
    converted = convert_float_to_float16(model, keep_io_types=True,
                                         op_block_list=["ReduceL2", "Div", "Sqrt",
                                                        "LpNormalization"])
    onnx.save(converted, str(out_path))
    return out_path


def _set_profile(trt, builder, network, config, input_name: str, batch: BatchProfile,
                 info) -> None:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    if input_name not in inputs:
        raise EngineBuildError(f"the model's metadata names input '{input_name}' but the graph "
                               f"has {sorted(inputs)}")
    dims = list(inputs[input_name].shape)
    pre = info.preprocessing
    fixed = [pre.channels, pre.height, pre.width]
    rest = [d if d >= 0 else fixed[i] for i, d in enumerate(dims[1:])] if len(dims) == 4 \
        else [d if d >= 0 else 1 for d in dims[1:]]
    if dims[0] >= 0 and not batch.min == batch.opt == batch.max == dims[0]:
        raise EngineBuildError(f"input '{input_name}' has a fixed batch of {dims[0]}; re-export "
                               f"with a dynamic batch axis or use --batch {dims[0]}")
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, [batch.min, *rest], [batch.opt, *rest], [batch.max, *rest])
    config.add_optimization_profile(profile)


def build_engine(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str],
                 options: EngineBuildOptions | None = None) -> EngineBuildReport:
    """Build a TensorRT engine for a siamese-edge ONNX model and write its sidecar JSON.

    Writes ``engine_path``, ``engine_path.json`` (sidecar), ``engine_path.timing.cache``
    (reused by the next build) and, for INT8, a calibration cache or a Q/DQ ONNX beside it.
    The engine is built as ``engine_path.candidate`` and replaces ``engine_path`` only after
    parity holds (or cannot be checked here).

    Raises:
        UnsupportedOpsError: the static op check found ops TensorRT cannot parse.
        EngineBuildError: parsing (every parser error is listed) or building failed.
        PrecisionUnsupportedError: the precision cannot be honoured by this TensorRT.
        TensorRTUnavailableError: no TensorRT here.
        ParityError: the engine decides unlike ONNX Runtime FP32 beyond the stated bounds;
            ``engine_path`` is left as it was and the new engine kept as ``.rejected``.
    """
    from siamese_edge.tensorrt import load_tensorrt, tensorrt_version
    from siamese_edge.tensorrt.sidecar import EngineSidecar, gpu_facts, sidecar_path

    options = options or EngineBuildOptions()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    info = _read_info(onnx_path)
    refuse_output_over_model(onnx_path, engine_path)
    reason = create_folder(engine_path.parent)  # found out now, not after minutes of building
    if reason:
        raise InvalidInputError(f"{engine_path}: cannot create its folder ({reason})")
    if not os.access(engine_path.parent, os.W_OK):
        raise InvalidInputError(f"{engine_path}: its folder cannot be written")
    notes: list[str] = []
    if options.check_ops:
        try:
            from siamese_edge.tensorrt.op_support import require_op_support
            require_op_support(onnx_path)
        except ImportError:
            notes.append("op-support check skipped: the onnx package is not installed")
    from siamese_edge.onnx_metadata import read_opset

    opset = read_opset(onnx_path)  # from the protobuf: also without the onnx package
    trt = load_tensorrt(options.tensorrt_module)
    if opset is not None:
        from siamese_edge.tensorrt.op_support import opset_note

        notes += [note for note in [opset_note(opset, trt)] if note]
        if options.target_opset is not None and opset > options.target_opset:
            # the profile exports at its opset for the TensorRT it names; a model made
            # without it may not parse there (TensorRT 8.5 stops at 17)
            notes.append(f"{onnx_path} is opset {opset}, above the {options.target_opset} "
                         f"target {options.target} is made for; re-export it with "
                         f"'siamese-edge export RUN --target {options.target}'")
    started = time.time()

    sample = None
    if options.calib_dir:
        from siamese_edge.tensorrt.calibration import load_image_sample
        sample = load_image_sample(options.calib_dir, info, options.calib_count)

    # Precision: builder flags where they exist, else a converted ONNX (strongly typed).
    source = onnx_path
    precision_mode = "fp32"
    calibrator = None
    if options.precision == "fp16":
        if strongly_typed(trt):
            source = _fp16_onnx(onnx_path, engine_path.with_name(engine_path.name + ".fp16.onnx"))
            precision_mode = "fp16 weights in the ONNX (strongly typed builder: no FP16 flag)"
        else:
            precision_mode = "BuilderFlag.FP16"
    elif options.precision == "int8":
        if strongly_typed(trt) or not hasattr(trt, "IInt8EntropyCalibrator2"):
            from siamese_edge.tensorrt.calibration import write_qdq_model
            source = write_qdq_model(onnx_path, engine_path.with_name(engine_path.name +
                                                                      ".qdq.onnx"),
                                     sample.batch, info)
            precision_mode = "explicit Q/DQ INT8 (onnxruntime quantize_static)"
        else:
            precision_mode = "BuilderFlag.INT8 + IInt8EntropyCalibrator2"

    logger = _Logger.create(trt)
    with warnings.catch_warnings(record=True) as caught, native_stdout_to_stderr():
        warnings.simplefilter("always", DeprecationWarning)
        builder = trt.Builder(logger)
        network = builder.create_network(_network_flags(trt))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(source)):
            errors = _parser_errors(parser) or logger.errors or ["no detail given"]
            raise EngineBuildError(f"TensorRT could not parse {source}: " + " | ".join(errors))
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
                                     int(options.workspace_mb) << 20)
        _set_profile(trt, builder, network, config, info.input_name, options.batch, info)

        if options.precision == "fp16" and not strongly_typed(trt):
            if hasattr(builder, "platform_has_fast_fp16") and not builder.platform_has_fast_fp16:
                notes.append("this GPU has no fast FP16: the engine may not be faster")
            config.set_flag(trt.BuilderFlag.FP16)
        if options.precision == "int8" and not strongly_typed(trt):
            from siamese_edge.tensorrt.calibration import calibration_cache_path, \
                calibration_key, make_entropy_calibrator
            config.set_flag(trt.BuilderFlag.INT8)
            config.set_flag(trt.BuilderFlag.FP16)  # layers INT8 cannot take fall back to FP16
            if precision_mode.startswith("BuilderFlag.INT8"):
                calibrator = make_entropy_calibrator(
                    trt, sample.batch, options.batch.opt, info.input_name,
                    calibration_cache_path(engine_path),
                    calibration_key(info, sample.batch, options.batch.opt))
                # calibration runs at the first profile's opt shape: batches of opt rows
                config.int8_calibrator = calibrator

        cache_path = engine_path.with_name(engine_path.name + ".timing.cache")
        cache_reused = cache_path.is_file()
        timing_cache = config.create_timing_cache(cache_path.read_bytes() if cache_reused
                                                  else b"")
        config.set_timing_cache(timing_cache, False)

        try:
            serialized = builder.build_serialized_network(network, config)
        finally:
            if calibrator is not None:
                calibrator.free()
        if serialized is None:
            raise EngineBuildError("TensorRT failed to build the engine: " +
                                   (" | ".join(logger.errors[-5:]) or "no detail given"))
        cache_bytes = bytes(memoryview(config.get_timing_cache().serialize()))
    timing_noop = any("no-op" in str(w.message) and "iming cache" in str(w.message)
                      for w in caught)
    if timing_noop:
        notes.append(f"{trt.__name__} ignores timing caches (no-op): none kept")
        cache_reused = False
    elif cache_bytes:
        with replaced_on_success(cache_path) as handle:
            handle.write(cache_bytes)

    engine_bytes = bytes(memoryview(serialized))
    # built beside the engine and moved into place only once parity holds, so that a build
    # that fails it never replaces a good engine that --backend auto would then pick up
    candidate = engine_path.with_name(engine_path.name + ".candidate")
    with replaced_on_success(candidate) as handle:  # a fresh temporary name: no symlink
        handle.write(engine_bytes)
    gpu_name, capability = gpu_facts()
    if gpu_name is None:
        notes.append("no CUDA device visible: the sidecar records no GPU; the engine was built "
                     "for this TensorRT's default targets")
    seconds = time.time() - started
    sidecar = EngineSidecar(
        tensorrt_version=tensorrt_version(trt), gpu_name=gpu_name, compute_capability=capability,
        precision=options.precision, batch=asdict(options.batch),
        onnx_fingerprint=info.fingerprint, model_info=_info_dict(info),
        onnx_sha256=_sha256(onnx_path), precision_mode=precision_mode,
        build_seconds=round(seconds, 3), notes=notes, workspace_mb=options.workspace_mb,
        target=options.target)
    sidecar.write(candidate)
    report = EngineBuildReport(
        str(engine_path), str(sidecar_path(engine_path)), sidecar.tensorrt_version, gpu_name,
        capability, options.precision, precision_mode, str(options.batch), options.workspace_mb,
        round(seconds, 3), len(engine_bytes), None if timing_noop else str(cache_path),
        cache_reused, notes)
    if options.parity:
        with native_stdout_to_stderr():  # running the engine may print, too
            report.parity = _parity(onnx_path, candidate, engine_path, info, options, sample,
                                    notes)
    _move_engine(candidate, engine_path)
    if source != onnx_path:  # the FP16 / Q/DQ copy built from: not needed beside the engine
        Path(source).unlink(missing_ok=True)
    return report


def _move_engine(source: Path, target: Path) -> None:
    """Move an engine and its sidecar (sidecar first: a loader checks the pair)."""
    from siamese_edge.tensorrt.sidecar import sidecar_path

    os.replace(sidecar_path(source), sidecar_path(target))
    os.replace(source, target)


def written_paths(engine_path: str | os.PathLike[str]) -> list[Path]:
    """Every file a build of ``engine_path`` may write: the engine, its sidecar, the timing
    cache, the FP16 / Q/DQ ONNX copies and the INT8 calibration cache."""
    engine_path = Path(engine_path)
    return [engine_path] + [engine_path.with_name(engine_path.name + suffix) for suffix in
                            (".json", ".timing.cache", ".fp16.onnx", ".qdq.onnx", ".tmp",
                             ".calib.cache", ".calib.cache.key", ".candidate", ".candidate.json",
                             ".rejected",
                             ".rejected.json")]


def refuse_output_over_model(onnx_path: str | os.PathLike[str],
                             engine_path: str | os.PathLike[str]) -> None:
    """Refuse an engine path whose build would write over the ONNX model it is built from
    (``engine model.onnx --out model.onnx`` replaced the model with the engine)."""
    for path in written_paths(engine_path):
        if same_file(path, onnx_path):
            raise InvalidInputError(f"{engine_path}: building it would write {path}, which is "
                                    f"the model {onnx_path} itself; choose another engine path")


def _read_info(onnx_path: Path):
    """The model's ModelInfo, read from the file's metadata without loading the graph (so a
    graph ONNX Runtime rejects still reaches TensorRT's parser and its error list)."""
    from siamese_edge.errors import ModelError
    from siamese_edge.model_info import METADATA_KEY, ModelInfo
    from siamese_edge.onnx_metadata import read_metadata

    if not onnx_path.is_file():
        raise ModelError(f"{onnx_path}: no such model file")
    metadata = read_metadata(onnx_path)
    if METADATA_KEY not in metadata:
        raise ModelError(f"{onnx_path}: ONNX model has no siamese-edge metadata; export it with "
                         f"'siamese-edge export'")
    return ModelInfo.from_json(metadata[METADATA_KEY])


def _info_dict(info) -> dict:
    import json
    return json.loads(info.to_json())


def _sha256(path: Path) -> str:
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _parity(onnx_path: Path, candidate: Path, engine_path: Path, info,
            options: EngineBuildOptions, sample, notes: list[str]) -> dict | None:
    """Decision parity of the ``candidate`` engine on the calibration/parity images (or
    seeded random inputs). A failing candidate is kept as ``engine_path.rejected``."""
    import numpy as np

    from siamese_edge.tensorrt.cuda_memory import device_count
    from siamese_edge.tensorrt.errors import ParityError
    from siamese_edge.tensorrt.parity import check_engine_parity

    if device_count() == 0:
        notes.append("parity not checked: no CUDA device here to run the engine")
        return None
    labels = None
    if options.parity_dir:
        from siamese_edge.tensorrt.calibration import load_image_sample
        sample = load_image_sample(options.parity_dir, info, 256, seed=1)
    if sample is not None:
        batch, labels = sample.batch[:256], sample.labels[:256]
    else:
        pre = info.preprocessing
        batch = np.random.default_rng(0).normal(0, 1, (128, pre.channels, pre.height,
                                                       pre.width)).astype(np.float32)
    report = check_engine_parity(onnx_path, candidate, batch, labels, options.precision,
                                 batch_size=options.batch.max)
    if not report.passed:
        rejected = engine_path.with_name(engine_path.name + ".rejected")
        _move_engine(candidate, rejected)
        kept = "unchanged" if engine_path.exists() else "not written"
        raise ParityError(f"{engine_path}: {report.summary()} ({'; '.join(report.failures)}); "
                          f"{engine_path.name} is {kept}, the new engine is kept as "
                          f"{rejected.name} for inspection")
    return report.to_dict()
