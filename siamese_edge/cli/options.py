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


def backend_options(function):
    """``--backend``, ``--engine``, ``--require-gpu``, ``--rebuild-stale``: how to run a model."""
    options = [
        click.option("--backend", type=click.Choice(["auto", "onnxruntime", "tensorrt"]),
                     default="auto", show_default=True,
                     help="auto: a fresh TensorRT engine if one is here, else ONNX Runtime "
                          "with the best execution provider that works."),
        click.option("--engine", type=click.Path(dir_okay=False), envvar="SIAMESE_EDGE_ENGINE",
                     help="TensorRT engine built from --model [default: $SIAMESE_EDGE_ENGINE, "
                          "else MODEL.engine]."),
        click.option("--require-gpu", is_flag=True,
                     help="Fail instead of falling back to the CPU."),
        click.option("--rebuild-stale", is_flag=True,
                     help="Rebuild an engine made by another TensorRT, GPU or model."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def open_embedder(model: str, backend: str, batch_size: int, engine: str | None = None,
                  require_gpu: bool = False, rebuild_stale: bool = False):
    """The embedder the backend options ask for (not yet entered)."""
    from siamese_edge.runtime.backends import create_embedder

    return create_embedder(model, backend=backend, batch_size=batch_size, engine=engine,
                           require_gpu=require_gpu, rebuild_stale=rebuild_stale)
batch_option = click.option("--batch-size", default=64, show_default=True,
                            type=click.IntRange(1, 4096), help="Images per inference call.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document instead of text.")


def print_json(document: object) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False))


def parse_metadata(text: str) -> dict:
    """A ``--metadata`` value: a JSON object, else a usage error."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg})", param_hint="metadata") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object ({...})", param_hint="metadata")
    return value


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)
