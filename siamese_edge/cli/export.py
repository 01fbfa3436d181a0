"""``siamese-edge export``: a training run → one self-describing, parity-checked ONNX file."""

from __future__ import annotations

import click

from siamese_edge.cli.options import json_option, print_json


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write.")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(18, 30),
              help="ONNX opset (the exporter needs >= 18).")
@click.option("--tolerance", default=1e-4, show_default=True, type=float,
              help="Largest |ONNX Runtime - PyTorch| accepted on the embeddings.")
@click.option("--name", help="Model name stored in the metadata (default: RUN_DIR's name).")
@json_option
def export(run_dir: str, out: str, opset: int, tolerance: float, name: str | None,
           as_json: bool) -> None:
    """Export RUN_DIR (from 'siamese-edge train') to ONNX with a dynamic batch axis.

    \b
    Example:
      siamese-edge export runs/fashion --out model.onnx

    The model's metadata holds its preprocessing, embedding size, metric, threshold and a
    fingerprint. The file is kept only if ONNX Runtime matches PyTorch within --tolerance.
    """
    from siamese_edge.exporting.onnx_export import export_run

    if not as_json:
        click.echo(f"exporting {run_dir} (opset {opset}) ...", err=True)
    report = export_run(run_dir, out, opset=opset, tolerance=tolerance, name=name)
    if as_json:
        print_json(report.to_dict())
        return
    info = report.info
    click.echo(f"wrote {report.path} ({report.size_bytes / 1e6:.2f} MB, "
               f"{info.embedding_dim}-d embeddings, threshold {info.threshold:.3f})")
    click.echo(f"parity vs PyTorch: max |diff| {report.max_abs_diff:.2e} "
               f"(tolerance {report.tolerance:g}, batches {list(report.parity_batches)})")
    click.echo(f"fingerprint {info.fingerprint}")
