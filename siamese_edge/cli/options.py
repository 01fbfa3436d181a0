"""Options shared by several commands, and printing helpers."""

from __future__ import annotations

import json

import click

model_option = click.option("--model", "-m", "model", required=True,
                            type=click.Path(dir_okay=False),
                            help="Exported ONNX model (siamese-edge export).")
gallery_option = click.option("--gallery", "-g", "gallery", required=True,
                              type=click.Path(dir_okay=False),
                              help="Gallery file (SQLite); created by enroll.")
backend_option = click.option("--backend", default="auto", show_default=True,
                              help="Inference backend: auto, onnxruntime or tensorrt.")
batch_option = click.option("--batch-size", default=64, show_default=True,
                            type=click.IntRange(1, 4096), help="Images per inference call.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document instead of text.")


def print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False))


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
