"""``siamese-edge doctor``: what this machine can run, and the commands that fix the rest."""

from __future__ import annotations

import click

from siamese_edge.cli.options import json_option, print_json


@click.command("doctor")
@click.option("--no-cameras", is_flag=True, help="Do not probe cameras.")
@json_option
def doctor(no_cameras: bool, as_json: bool) -> None:
    """Check Python, ONNX Runtime providers (each tried for real), TensorRT, CUDA, OpenCV
    video I/O, cameras and the Jetson release; say what is missing per backend and how to
    install it. Exits 0 even when something is missing: read the report."""
    from siamese_edge.doctor import format_report, run_doctor

    report = run_doctor(skip=("cameras",) if no_cameras else ())
    if as_json:
        print_json(report)
    else:
        click.echo(format_report(report))
