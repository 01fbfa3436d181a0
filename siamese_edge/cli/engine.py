"""``siamese-edge engine``: build a TensorRT engine (with its sidecar JSON) from an ONNX model.

The engine options and the build call are shared with ``siamese-edge export --engine``.
"""

from __future__ import annotations

import click

from siamese_edge.cli.options import json_option, parsed_by, print_json, warn


def _check_batch(text: str) -> None:
    from siamese_edge.tensorrt.builder import BatchProfile

    BatchProfile.parse(text)


def _check_target(text: str) -> None:
    from siamese_edge.tensorrt.targets import load_target

    load_target(text)


def engine_build_options(function):
    """``--precision --batch --workspace --calib --target --no-parity``."""
    options = [
        click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None,
                     help="Engine precision [default: fp32, or the target's]."),
        click.option("--batch", default=None, metavar="MIN:OPT:MAX",
                     callback=parsed_by(_check_batch),
                     help="Batch-axis optimization profile [default: 1:8:32, or the "
                          "target's]."),
        click.option("--workspace", "workspace_mb", default=None,
                     type=click.IntRange(1, 1 << 20), metavar="MB",
                     help="Builder workspace limit in MB [default: 1024, or the target's]."),
        click.option("--calib", "calib_dir", default=None, type=click.Path(file_okay=False),
                     help="Folder of images for INT8 calibration (and the parity sample)."),
        click.option("--target", default=None, callback=parsed_by(_check_target),
                     help="Target profile name (export/*.json) or path bundling the options "
                          "above."),
        click.option("--no-parity", is_flag=True,
                     help="Skip the post-build comparison with ONNX Runtime FP32."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def build_from_options(model: str, out: str, precision: str | None, batch: str | None,
                       workspace_mb: int | None, calib_dir: str | None, target: str | None,
                       no_parity: bool):
    """Resolve the options (a target profile, overridden by explicit ones) and build."""
    from siamese_edge.tensorrt.builder import build_engine
    from siamese_edge.tensorrt.targets import resolve_engine_options

    options = resolve_engine_options(precision, batch, workspace_mb, calib_dir, target,
                                     no_parity)
    return build_engine(model, out, options)


def echo_engine_report(report) -> None:
    for note in report.notes:
        warn(note)
    click.echo(f"wrote {report.engine_path} ({report.engine_bytes} bytes, {report.precision}: "
               f"{report.precision_mode}, batch {report.batch}) with {report.tensorrt_version} "
               f"in {report.build_seconds:.1f} s; sidecar {report.sidecar_path}")
    if report.parity:
        click.echo(f"parity vs ONNX Runtime FP32: max |diff| "
                   f"{report.parity['max_abs_diff']:.2g}, decisions flipped "
                   f"{report.parity['flip_fraction']:.3%}")


@click.command("engine")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", default=None, type=click.Path(dir_okay=False),
              help="Engine file to write [default: MODEL with suffix .engine]; its sidecar "
                   "OUT.json is written beside it.")
@engine_build_options
@json_option
def build_engine_command(model: str, out: str | None, precision: str | None, batch: str | None,
                         workspace_mb: int | None, calib_dir: str | None, target: str | None,
                         no_parity: bool, as_json: bool) -> None:
    """Build a TensorRT engine for MODEL (an exported .onnx) on this device.

    \b
    Example:
      siamese-edge engine model.onnx --out model.engine --precision fp16 --batch 1:8:32
      siamese-edge engine model.onnx --target desktop-int8 --calib photos/

    Engines only load on the TensorRT version and GPU that built them: build on the device.
    """
    from pathlib import Path

    out_path = out or str(Path(model).with_suffix(".engine"))
    report = build_from_options(model, out_path, precision, batch, workspace_mb, calib_dir,
                                target, no_parity)
    if as_json:
        print_json(report.to_dict())
    else:
        echo_engine_report(report)
