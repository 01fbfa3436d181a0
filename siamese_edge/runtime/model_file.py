"""Reading a model's self-description from an ONNX file with ONNX Runtime (no onnx package)."""

from __future__ import annotations

import os
import re
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
        text = str(exc).strip()
        version = re.search(r"Unsupported model IR version: \d+, max supported IR version: "
                            r"\d+", text)
        if version:  # buried past ORT's long source-location prefix: say it plainly
            raise ModelError(f"{path}: this ONNX Runtime ({ort.__version__}) is too old for "
                             f"the model ({version.group(0)}); upgrade onnxruntime, or "
                             f"re-export with a newer siamese-edge (it writes IR 9)") from None
        first_line = text.splitlines()[0] if text else type(exc).__name__
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line[:200]})") from None


def info_from_session(session, path: str | os.PathLike[str]) -> ModelInfo:
    """The :class:`ModelInfo` stored in a session's model metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ModelError(f"{path}: ONNX model has no siamese-edge metadata; export it with "
                         f"'siamese-edge export'")
    info = ModelInfo.from_json(meta[METADATA_KEY])
    check_graph_matches(session, info, path)
    return info


def check_graph_matches(session, info: ModelInfo, path: str | os.PathLike[str]) -> None:
    """Refuse metadata that describes another graph: the input's channels and size, the
    output's name and length (a mismatch failed later, mid-inference, with a traceback)."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if info.input_name not in inputs:
        raise ModelError(f"{path}: metadata names input '{info.input_name}' but the graph has "
                         f"{sorted(inputs)}")
    if info.output_name not in outputs:
        raise ModelError(f"{path}: metadata names output '{info.output_name}' but the graph has "
                         f"{sorted(outputs)}")
    pre = info.preprocessing
    shape = list(inputs[info.input_name].shape)
    expected = [None, pre.channels, pre.height, pre.width]
    if len(shape) != 4 or any(isinstance(have, int) and want is not None and have != want
                              for have, want in zip(shape, expected)):
        raise ModelError(f"{path}: metadata describes input {pre.channels}x{pre.height}x"
                         f"{pre.width} (NCHW) but the graph's input is {shape}")
    out_shape = list(outputs[info.output_name].shape)
    if len(out_shape) != 2 or (isinstance(out_shape[1], int)
                               and out_shape[1] != info.embedding_dim):
        raise ModelError(f"{path}: metadata describes {info.embedding_dim}-d embeddings but "
                         f"the graph's output is {out_shape}")


def fixed_batch(session, info: ModelInfo) -> int | None:
    """The batch size the graph's input is fixed to, or None when the batch axis is dynamic."""
    for graph_input in session.get_inputs():
        if graph_input.name == info.input_name:
            first = list(graph_input.shape)[0]
            return first if isinstance(first, int) and first > 0 else None
    return None


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """Read the self-description of an exported model (ONNX file).

    Raises:
        ModelError: the file is missing, not ONNX, or lacks siamese-edge metadata.
    """
    return info_from_session(open_session(path), path)
