"""``siamese-edge embed``: embeddings of image files or folders, for analysis."""

from __future__ import annotations

import click

from siamese_edge.cli.options import (
    backend_options, batch_option, json_option, model_option, open_embedder, print_json,
    warn,
)


@click.command("embed")
@model_option
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output .npz: embeddings, paths, labels (folder names), model_fingerprint.")
@backend_options
@batch_option
@json_option
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
def embed(model: str, out: str, backend: str, engine: str | None, require_gpu: bool,
           rebuild_stale: bool, batch_size: int, as_json: bool,
          inputs: tuple[str, ...]) -> None:
    """Embed every image in INPUTS (files, or folders searched recursively).

    \b
    Example:
      siamese-edge embed -m model.onnx --out embeddings.npz images/

    The .npz loads with numpy.load(..., allow_pickle=False).
    """
    from siamese_edge.runtime.workflows import embed_inputs

    with open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale) as embedder:
        result = embed_inputs(embedder, inputs)
        result.save(out, embedder.info.fingerprint)
    summary = {"out": out, "count": len(result.paths), "dim": int(result.embeddings.shape[1]),
               "backend": embedder.device_description,
               "failures": [{"file": f, "error": e} for f, e in result.failures]}
    if as_json:
        print_json(summary)
    else:
        for _, error in result.failures:
            warn(f"skipped {error}")
        click.echo(f"wrote {summary['count']} embeddings of size {summary['dim']} to {out}")
