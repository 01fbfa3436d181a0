"""Reading a model's self-description from an ONNX file with ONNX Runtime (no onnx package)."""

from __future__ import annotations

import os
from pathlib import Path

from siamese_edge.errors import ModelError
from siamese_edge.model_info import METADATA_KEY, ModelInfo


def open_session(path: str | os.PathLike[str], providers: list | None = None,
                 intra_op_threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` for ``path``; a bad file is a one-line ModelError."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if intra_op_threads:
        options.intra_op_num_threads = int(intra_op_threads)
    try:
        return ort.InferenceSession(str(path), sess_options=options,
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line[:200]})") from None


def info_from_session(session, path: str | os.PathLike[str]) -> ModelInfo:
    """The :class:`ModelInfo` stored in a session's model metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ModelError(f"{path}: ONNX model has no siamese-edge metadata; export it with "
                         f"'siamese-edge export'")
    return ModelInfo.from_json(meta[METADATA_KEY])


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read the self-description of an exported model (ONNX file).

    Raises:
        ModelError: the file is missing, not ONNX, or lacks siamese-edge metadata.
    """
    return info_from_session(open_session(path), path)
