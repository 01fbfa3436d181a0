"""The TensorRT engine options of ``export --engine``, resolved before anything is written.

``siamese_edge.cli.engine.build_from_options`` resolves them the same way when it builds;
export resolves them first so that a target that builds no engine (``cpu-onnx``), a bad
``--batch`` or INT8 without ``--calib`` fail before the ONNX file is written, not after.
"""

from __future__ import annotations


def resolve_engine_options(precision: str | None, batch: str | None, workspace_mb: int | None,
                           calib_dir: str | None, target: str | None, no_parity: bool):
    """:class:`~siamese_edge.tensorrt.builder.EngineBuildOptions` from the CLI's options: a
    target profile, overridden by the options given.

    Raises:
        TargetError: unknown target, or one that ships the ONNX model and builds no engine.
        InvalidInputError: an unusable batch profile, precision or calibration setting.
    """
    from siamese_edge.tensorrt.builder import BatchProfile, EngineBuildOptions

    overrides = {"precision": precision,
                 "batch": BatchProfile.parse(batch) if batch else None,
                 "workspace_mb": workspace_mb, "calib_dir": calib_dir,
                 "parity": False if no_parity else None}
    if not target:
        return EngineBuildOptions(**{k: v for k, v in overrides.items() if v is not None})
    from siamese_edge.tensorrt.errors import TargetError
    from siamese_edge.tensorrt.targets import load_target

    profile = load_target(target)
    if profile.backend != "tensorrt":
        raise TargetError(f"target '{profile.name}' ships the ONNX model to ONNX Runtime; "
                          f"no engine to build")
    return profile.build_options(**overrides)
