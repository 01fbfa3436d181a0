"""PyTorch run → one self-describing ONNX file, parity-checked in ONNX Runtime.

The exported graph takes ``images`` (float32 NCHW, already normalised, dynamic batch) and
returns ``embeddings`` (float32, L2-normalised). Its metadata (key ``siamese_edge``) holds a
:class:`~siamese_edge.model_info.ModelInfo`. The file is written beside the target and moved
into place only after the parity check passes, so a failed export never leaves a bad model.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamese_edge.errors import ExportError, InvalidInputError, MissingDependencyError
from siamese_edge.model_info import METADATA_KEY, ModelInfo
from siamese_edge.runtime.atomic_file import create_folder, new_file_mode, same_file
from siamese_edge.runtime.preprocess import normalize

#: Largest |ONNX Runtime − PyTorch| allowed on unit-length embeddings.
DEFAULT_TOLERANCE = 1e-4
#: the dynamo exporter writes opset >= 18; lower opsets (TensorRT 8.5 on JetPack 5 parses up
#: to 17) are reached by converting its output with onnx's version converter
EXPORTER_OPSET = 18
MIN_OPSET = 17
DEFAULT_OPSET = 18
#: the ONNX IR version written: torch's exporter writes 10 (onnx 1.16), which ONNX Runtime
#: before 1.18 refuses, and JetPack 5's is 1.16; these graphs use nothing IR 10 added
#: (4-bit types), so 9 describes them exactly
MAX_IR_VERSION = 9
PARITY_BATCH = 16


@dataclass(frozen=True)
class ExportReport:
    path: str
    info: ModelInfo
    max_abs_diff: float
    tolerance: float
    parity_batches: tuple[int, ...]
    size_bytes: int
    seconds: float

    def to_dict(self) -> dict:
        return {"path": self.path, "fingerprint": self.info.fingerprint,
                "embedding_dim": self.info.embedding_dim, "threshold": self.info.threshold,
                "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance,
                "parity_batches": list(self.parity_batches), "size_bytes": self.size_bytes,
                "seconds": round(self.seconds, 2)}


def graph_fingerprint(model) -> str:
    """``sha256:<hex>`` of the graph (nodes and weights), independent of metadata."""
    return "sha256:" + hashlib.sha256(model.graph.SerializeToString()).hexdigest()


def set_model_info(model, info: ModelInfo) -> None:
    """Store ``info`` in an ``onnx.ModelProto``'s metadata, replacing an older one."""
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = info.to_json()
    model.doc_string = (f"siamese-edge embedding model '{info.name}': input images "
                        f"{info.preprocessing.channels}x{info.preprocessing.height}x"
                        f"{info.preprocessing.width} (NCHW, normalised), output "
                        f"{info.embedding_dim}-d L2-normalised embeddings; metadata key "
                        f"'{METADATA_KEY}' describes preprocessing and threshold.")


def refuse_run_files(run_dir: str | os.PathLike[str], out: str | os.PathLike[str],
                     engine: str | os.PathLike[str] | None = None) -> None:
    """Refuse outputs that are the run directory or files training wrote into it
    (``--out RUN/checkpoint.pt --overwrite`` replaced the run's model with the ONNX file):
    ``out`` and, when given, every file a build of ``engine`` writes.

    Raises:
        InvalidInputError: naming the file that writing there would destroy.
    """
    from siamese_edge.training.run_files import OUTPUT_FILES, RUN_FILES

    outputs = [(out, "--out")]
    if engine is not None:
        from siamese_edge.tensorrt.builder import written_paths

        outputs += [(path, "--engine") for path in written_paths(engine)]
    for path, option in outputs:
        if same_file(path, run_dir):
            raise InvalidInputError(f"{path}: is the run directory {run_dir}; {option} names "
                                    f"the file to write")
        for name in (*RUN_FILES, *OUTPUT_FILES):
            if same_file(path, Path(run_dir) / name):
                raise InvalidInputError(f"{path}: is the run's own {name}; writing {option} "
                                        f"there would destroy it, choose another file")


def export_run(run_dir: str | os.PathLike[str], out_path: str | os.PathLike[str],
               opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE,
               name: str | None = None, seed: int = 0) -> ExportReport:
    """Export a training run to ONNX and check it against PyTorch.

    Args:
        run_dir: a directory written by ``siamese-edge train``.
        out_path: the ONNX file to write (one file, weights inside).
        opset: ONNX opset; below 18 (the exporter's own) the graph is converted down.
        tolerance: largest allowed max-abs difference between ONNX Runtime and PyTorch.
        name: model name stored in the metadata (default: the run directory's name).
        seed: seed of the random parity batch.

    Raises:
        ExportError: the export failed or the parity check exceeded ``tolerance``.
        InvalidInputError: ``out_path`` is a file of the run (see :func:`refuse_run_files`).
    """
    try:
        import onnx
        import torch

        from siamese_edge.training.checkpoint import load_run
    except ImportError as exc:
        raise MissingDependencyError(f"export needs the train extra ({exc.name} missing): "
                                     f"pip install 'siamese-edge[train]'") from None
    from siamese_edge import __version__

    started = time.time()
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is below {MIN_OPSET}, the lowest supported")
    refuse_run_files(run_dir, out_path)
    out_path = Path(out_path)
    reason = create_folder(out_path.parent)
    if reason:
        raise ExportError(f"{out_path}: cannot create its folder {out_path.parent} "
                          f"({reason})")
    run = load_run(run_dir)
    pre = run.preprocessing
    model = run.model.eval()
    example = torch.from_numpy(_parity_inputs(pre, 2, seed))

    # The exporter logs about absent torchvision ops and deprecations: not the user's concern.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        fd, tmp_name = tempfile.mkstemp(suffix=".onnx.tmp", dir=out_path.parent)
    except OSError as exc:
        raise ExportError(f"{out_path}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dim = int(model(example).shape[1])  # the readout's length, not the projection's
            torch.onnx.export(
                model, (example,), str(tmp), dynamo=True, external_data=False,
                opset_version=max(opset, EXPORTER_OPSET), input_names=["images"],
                output_names=["embeddings"],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
                verbose=False)
        proto = onnx.load(str(tmp))
        if opset < EXPORTER_OPSET:
            proto = convert_opset(proto, opset)
        proto.ir_version = min(proto.ir_version, MAX_IR_VERSION)
        info = ModelInfo(
            preprocessing=pre,
            embedding_dim=dim,
            threshold=float(run.info["threshold"]),
            threshold_source=str(run.info.get("threshold_source", "")),
            fingerprint=graph_fingerprint(proto),
            name=name or Path(run_dir).resolve().name,
            training=_training_summary(run, __version__),
        )
        set_model_info(proto, info)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        diff, batches = _parity(model, tmp, pre, seed)
        if not diff <= tolerance:
            raise ExportError(f"ONNX Runtime and PyTorch disagree: max |diff| {diff:.3g} > "
                              f"tolerance {tolerance:g}; model not written")
        os.chmod(tmp, new_file_mode())  # mkstemp makes it private; a model is not
        os.replace(tmp, out_path)
    except ExportError:
        raise
    except Exception as exc:  # the exporter raises many types; report in one line
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                          ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(str(out_path), info, diff, tolerance, batches,
                        out_path.stat().st_size, time.time() - started)


_PASSTHROUGH = "siamese_edge.opset_passthrough"


def convert_opset(model, opset: int):
    """Convert an opset-18 graph down to ``opset`` with onnx's version converter.

    The converter moves the Reduce* ops' ``axes`` back to an attribute but leaves their
    ``noop_with_empty_axes`` attribute, which only exists from opset 18 (ReduceSum: 13) and
    makes the result invalid; at its default (0) it is dropped here. It also has no adapter
    for Pad, which the seed backbone's LRN uses (see below).
    """
    from onnx import helper, version_converter

    # onnx has no 18 -> 17 adapter for Pad; without the `axes` input opset 18 added, a Pad
    # means the same in both, so it is passed through the converter in a private domain
    model = copy.deepcopy(model)
    passthrough = [node for node in model.graph.node if node.op_type == "Pad"
                   and node.domain in ("", "ai.onnx") and (len(node.input) < 4
                                                           or not node.input[3])]
    for node in passthrough:
        node.domain = _PASSTHROUGH
    if passthrough:
        model.opset_import.append(helper.make_opsetid(_PASSTHROUGH, 1))
    converted = version_converter.convert_version(model, opset)
    for node in converted.graph.node:
        if node.domain == _PASSTHROUGH:
            node.domain = ""
    kept = [o for o in converted.opset_import if o.domain != _PASSTHROUGH]
    del converted.opset_import[:]
    converted.opset_import.extend(kept)
    for node in converted.graph.node:
        if node.op_type.startswith("Reduce") and not (node.op_type == "ReduceSum"
                                                      and opset >= 13):
            for attribute in list(node.attribute):
                if attribute.name == "noop_with_empty_axes":
                    if attribute.i:
                        raise ExportError(f"{node.op_type} with noop_with_empty_axes=1 cannot "
                                          f"be expressed in opset {opset}")
                    node.attribute.remove(attribute)
    return converted


def _parity_inputs(pre, batch: int, seed: int) -> np.ndarray:
    """Normalised inputs from smooth random uint8 images (closer to photos than noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (batch, max(2, pre.height // 4), max(2, pre.width // 4),
                                  pre.channels), dtype=np.uint8)
    images = np.stack([cv2.resize(s, (pre.width, pre.height), interpolation=cv2.INTER_LINEAR)
                       .reshape(pre.height, pre.width, pre.channels) for s in small])
    return normalize(images, pre.mean, pre.std)


def _parity(model, onnx_path: Path, pre, seed: int) -> tuple[float, tuple[int, ...]]:
    """Max |ONNX Runtime − PyTorch| over a batch of 1 and a full batch."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    batches = (1, PARITY_BATCH)
    for i, batch in enumerate(batches):
        x = _parity_inputs(pre, batch, seed + 1 + i)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        (got,) = session.run(["embeddings"], {"images": x})
        if got.shape != expected.shape:
            raise ExportError(f"ONNX output shape {got.shape} != PyTorch {expected.shape}")
        if not (np.all(np.isfinite(got)) and np.all(np.isfinite(expected))):
            # max() skips NaN: such a model "matched" with difference 0 and embedded nothing
            raise ExportError("the model outputs NaN or inf on the parity batch (are its "
                              "weights finite?); nothing exported")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst, batches


def _training_summary(run, version: str) -> dict:
    config = run.config.to_dict()
    info = run.info
    return {
        "data": os.path.basename(str(config.get("data", "")).rstrip("/")),
        "loss": config.get("loss"), "backbone": config.get("backbone"),
        "readout": config.get("readout"), "hog_weight": config.get("hog_weight"),
        "margin": config.get("margin"),
        "epochs": config.get("epochs"),
        "steps_per_epoch": config.get("steps_per_epoch"), "batch_size": config.get("batch_size"),
        "seed": config.get("seed"), "classes": info.get("class_names"),
        "num_train_images": info.get("num_train_images"),
        "val_eer": info.get("val_eer"), "val_auc": info.get("val_auc"),
        "trained_at": info.get("trained_at"), "torch_version": info.get("torch_version"),
        "siamese_edge_version": version,
    }
