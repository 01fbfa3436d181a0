"""Target profiles: named bundles of build options, one small JSON file per target.

JSON (not TOML) so that reading them needs nothing outside the standard library on
Python 3.8 (JetPack 5), where ``tomllib`` does not exist. Profiles are looked up in, in order:
the folders of ``$SIAMESE_EDGE_TARGETS`` (``os.pathsep``-separated), ``./export``, the
``export/`` folder of a source checkout, and ``<prefix>/share/siamese-edge/export`` where
``pip install`` puts them. ``--target`` also takes a path to a ``.json`` file.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from siamese_edge.tensorrt.builder import PRECISIONS, BatchProfile, EngineBuildOptions
from siamese_edge.tensorrt.errors import TargetError

BACKENDS = ("tensorrt", "onnxruntime")
_CHECKOUT_TARGETS = Path(__file__).resolve().parents[2] / "export"
#: where `pip install` puts export/*.json (pyproject's data-files)
_INSTALLED_TARGETS = Path(sys.prefix) / "share" / "siamese-edge" / "export"


@dataclass(frozen=True)
class TargetProfile:
    """One deployment target.

    Attributes:
        name: file stem, e.g. ``jetson-orin-fp16``.
        description: the device and software it is meant for.
        backend: ``tensorrt`` (build an engine) or ``onnxruntime`` (ship the ONNX).
        precision: ``fp32``, ``fp16`` or ``int8``.
        batch: ``MIN:OPT:MAX`` of the engine's batch axis.
        opset: ONNX opset to export with (TensorRT 8.5 parses up to 17).
        workspace_mb: builder workspace limit (0 for ONNX Runtime targets).
        calib_count: images drawn for INT8 calibration.
    """

    name: str
    description: str
    backend: str
    precision: str
    batch: str
    opset: int
    workspace_mb: int
    calib_count: int = 512

    def __post_init__(self) -> None:
        where = f"target '{self.name}'"
        if self.backend not in BACKENDS:
            raise TargetError(f"{where}: backend '{self.backend}' is not one of "
                              f"{', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise TargetError(f"{where}: precision '{self.precision}' is not one of "
                              f"{', '.join(PRECISIONS)}")
        try:
            BatchProfile.parse(self.batch)
        except Exception as exc:
            raise TargetError(f"{where}: {exc}") from None
        for key in ("opset", "workspace_mb", "calib_count"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TargetError(f"{where}: {key} must be an integer, got {value!r}")
        if not 7 <= self.opset <= 30:
            raise TargetError(f"{where}: opset {self.opset} is out of range")
        if self.backend == "tensorrt" and self.workspace_mb < 1:
            raise TargetError(f"{where}: a TensorRT target needs workspace_mb >= 1")
        if self.calib_count < 1:
            raise TargetError(f"{where}: calib_count must be at least 1, got {self.calib_count}")

    def build_options(self, **overrides) -> EngineBuildOptions:
        """:class:`EngineBuildOptions` of this target; non-None ``overrides`` win."""
        values = {"precision": self.precision, "batch": BatchProfile.parse(self.batch),
                  "workspace_mb": max(1, int(self.workspace_mb)),
                  "calib_count": int(self.calib_count), "target": self.name,
                  "target_opset": self.opset}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return EngineBuildOptions(**values)


def target_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("SIAMESE_EDGE_TARGETS", "").split(os.pathsep) if p]
    return [*extra, Path.cwd() / "export", _CHECKOUT_TARGETS, _INSTALLED_TARGETS]


def list_targets() -> dict[str, Path]:
    """Target name → file, first folder wins."""
    found: dict[str, Path] = {}
    for folder in target_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                found.setdefault(path.stem, path)
    return found


#: target names that were renamed: old name -> (new name, why)
RENAMED = {"jetson-nano-fp16": ("jetson-orin-nano-fp16", "it is for the Orin Nano on JetPack 6; "
                                "the original Jetson Nano (JetPack 4) is not supported")}


def load_target(name_or_path: str | os.PathLike[str]) -> TargetProfile:
    """A target by name (see :func:`list_targets`) or by ``.json`` path.

    Raises:
        TargetError: unknown name, unreadable file, or invalid values.
    """
    path = Path(name_or_path)
    if not (path.suffix == ".json" and path.is_file()):
        targets = list_targets()
        if str(name_or_path) not in targets:
            renamed = RENAMED.get(str(name_or_path))
            if renamed:  # said, not mapped: the old name promised a board it was not for
                raise TargetError(f"target '{name_or_path}' is now '{renamed[0]}' "
                                  f"({renamed[1]})")
            raise TargetError(f"unknown target '{name_or_path}' (known: "
                              f"{', '.join(sorted(targets)) or 'none found'})")
        path = targets[str(name_or_path)]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TargetError(f"{path}: unreadable target profile ({exc})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: a target profile is a JSON object")
    known = {f.name for f in fields(TargetProfile)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TargetError(f"{path}: unknown keys {', '.join(unknown)}")
    missing = sorted(k for k in ("description", "backend", "precision", "batch", "opset",
                                 "workspace_mb") if k not in data)
    if missing:
        raise TargetError(f"{path}: missing keys {', '.join(missing)}")
    try:
        return TargetProfile(name=path.stem, **data)
    except (TargetError, TypeError) as exc:  # name the file: a name may be found in any folder
        raise TargetError(f"{path}: {exc}") from None


def resolve_engine_options(precision: str | None, batch: str | None, workspace_mb: int | None,
                           calib_dir: str | None, target: str | None,
                           no_parity: bool) -> EngineBuildOptions:
    """:class:`~siamese_edge.tensorrt.builder.EngineBuildOptions` from the CLI's options: a
    target profile, overridden by the options given. ``engine`` builds with it, and
    ``export --engine`` calls it first so that options that build no engine (a ``cpu-onnx``
    target, INT8 without ``--calib``) fail before the ONNX file is written.

    Raises:
        TargetError: unknown target, or one that ships the ONNX model and builds no engine.
        InvalidInputError: an unusable batch profile, precision or calibration setting.
    """
    overrides = {"precision": precision,
                 "batch": BatchProfile.parse(batch) if batch else None,
                 "workspace_mb": workspace_mb, "calib_dir": calib_dir,
                 "parity": False if no_parity else None}
    if not target:
        return EngineBuildOptions(**{k: v for k, v in overrides.items() if v is not None})
    profile = load_target(target)
    if profile.backend != "tensorrt":
        raise TargetError(f"target '{profile.name}' ships the ONNX model to ONNX Runtime; "
                          f"no engine to build")
    return profile.build_options(**overrides)
