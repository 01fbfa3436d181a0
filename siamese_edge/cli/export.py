"""``siamese-edge export``: a training run → one self-describing, parity-checked ONNX file,
and optionally a TensorRT engine built from it."""

from __future__ import annotations

from pathlib import Path

import click

from siamese_edge.cli.engine import build_from_options, echo_engine_report, engine_build_options
from siamese_edge.cli.options import FiniteFloat, json_option, print_json, warn


@click.command("export")
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="ONNX file to write (required when SOURCE is a run directory).")
@click.option("--opset", default=None, type=click.IntRange(17, 30),
              help="ONNX opset; below 18 the exported graph is converted down (TensorRT 8.5 "
                   "reads up to 17) [default: 18, or the target's].")
@click.option("--tolerance", default=1e-4, show_default=True, type=FiniteFloat(min=0),
              help="Largest |ONNX Runtime - PyTorch| accepted on the embeddings.")
@click.option("--name", help="Model name stored in the metadata (default: RUN_DIR's name).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out model (galleries enrolled with it then need "
                   "'gallery reembed').")
@click.option("--engine", type=click.Path(dir_okay=False),
              help="Also build a TensorRT engine here (needs TensorRT and a GPU).")
@engine_build_options
@json_option
def export(source: str, out: str | None, opset: int | None, tolerance: float, name: str | None,
           overwrite: bool, engine: str | None, precision: str | None, batch: str | None,
           workspace_mb: int | None, calib_dir: str | None, target: str | None,
           no_parity: bool, as_json: bool) -> None:
    """Export SOURCE (a run directory from 'siamese-edge train') to ONNX, and/or build a
    TensorRT engine (SOURCE may then be an exported .onnx).

    \b
    Examples:
      siamese-edge export runs/fashion --out model.onnx
      siamese-edge export runs/fashion --out model.onnx --engine model.engine --precision fp16
      siamese-edge export model.onnx --engine model.engine --target jetson-orin-fp16

    The ONNX file has a dynamic batch axis and metadata holding its preprocessing, embedding
    size, metric, threshold and fingerprint. It is kept only if ONNX Runtime matches PyTorch
    within --tolerance. An engine gets a sidecar JSON and a decision-parity check.
    """
    document: dict = {}
    unused = [flag for flag, value in (("--precision", precision), ("--batch", batch),
                                       ("--workspace", workspace_mb), ("--calib", calib_dir))
              if value is not None]
    if unused and not engine:
        raise click.UsageError(f"{', '.join(unused)} set(s) the TensorRT engine: add "
                               f"--engine OUT.engine, or drop it")
    if target and not engine:  # only its opset applies to the ONNX (stderr: JSON stays clean)
        from siamese_edge.tensorrt.targets import load_target

        if load_target(target).backend == "tensorrt":  # cpu-onnx has no engine settings
            warn(f"--target {target}: its engine settings apply with --engine OUT.engine; "
                 f"without it only the target's opset is used")
    if Path(source).is_dir():
        if not out:
            raise click.UsageError("--out MODEL.onnx is required to export a run directory")
        from siamese_edge.exporting.onnx_export import (DEFAULT_OPSET, export_run,
                                                        refuse_run_files)

        refuse_run_files(source, out, engine)
        if Path(out).exists() and not overwrite:
            from siamese_edge.errors import InvalidInputError

            raise InvalidInputError(f"{out} exists; --overwrite replaces it (galleries enrolled "
                                    f"with it then need 'gallery reembed')")
        if opset is None and target:
            from siamese_edge.tensorrt.targets import load_target

            opset = load_target(target).opset
        # before the export, not after it: the engine would replace the model, and options
        # that build no engine would fail only once the ONNX file was written
        if engine:
            from siamese_edge.tensorrt.targets import resolve_engine_options
            from siamese_edge.tensorrt.builder import refuse_output_over_model

            refuse_output_over_model(out, engine)
            resolve_engine_options(precision, batch, workspace_mb, calib_dir, target, no_parity)
            from siamese_edge.tensorrt import load_tensorrt

            load_tensorrt()  # no TensorRT here: say so before the ONNX is written
        if not as_json:
            click.echo(f"exporting {source} ...", err=True)
        report = export_run(source, out, opset=opset or DEFAULT_OPSET, tolerance=tolerance,
                            name=name)
        document["onnx"] = report.to_dict()
        onnx_path = out
        if not as_json:
            info = report.info
            click.echo(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, "
                       f"{info.embedding_dim}-d embeddings, threshold {info.threshold:.3f})")
            click.echo(f"parity vs PyTorch: max |diff| {report.max_abs_diff:.2e} "
                       f"(tolerance {report.tolerance:g}, batches {list(report.parity_batches)})")
            click.echo(f"fingerprint {info.fingerprint}")
    else:
        if not engine:
            raise click.UsageError("SOURCE is a model file: give --engine OUT.engine to build "
                                   "an engine (or a run directory to export)")
        onnx_path = source
    if engine:
        engine_report = build_from_options(onnx_path, engine, precision, batch, workspace_mb,
                                           calib_dir, target, no_parity)
        document["engine"] = engine_report.to_dict()
        if not as_json:
            echo_engine_report(engine_report)
    if as_json:
        print_json(document if engine else document["onnx"])
