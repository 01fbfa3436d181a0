"""``siamese-edge embed``: embeddings of image files or folders, for analysis."""

from __future__ import annotations

import os
from pathlib import Path

import click

from siamese_edge.cli.options import (
    EXIT_PARTIAL, backend_options, batch_option, json_option, model_option, open_embedder,
    print_json, warn,
)
from siamese_edge.errors import InvalidInputError


@click.command("embed")
@model_option
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output .npz: embeddings, paths, labels (folder names), model_fingerprint.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists (an .npz).")
@backend_options
@batch_option
@json_option
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
def embed(model: str, out: str, overwrite: bool, backend: str, engine: str | None,
          require_gpu: bool, rebuild_stale: bool, batch_size: int, as_json: bool,
          inputs: tuple[str, ...]) -> None:
    """Embed every image in INPUTS (files, or folders searched recursively).

    \b
    Example:
      siamese-edge embed -m model.onnx --out embeddings.npz images/

    The .npz loads with numpy.load(..., allow_pickle=False). Unreadable images are reported
    and skipped, the rest is written, and the exit status is 3.
    """
    from siamese_edge.runtime.atomic_file import check_replaceable_archive
    from siamese_edge.runtime.workflows import embed_inputs

    out_path = Path(out)
    if not out_path.parent.is_dir():  # found out before the images are embedded, not after
        raise InvalidInputError(f"--out {out}: folder {out_path.parent} does not exist")
    check_replaceable_archive(out_path, overwrite)  # never over a model, gallery or image
    with open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale) as embedder:
        result = embed_inputs(embedder, inputs)
        _save(result, out_path, embedder.info.fingerprint)
    summary = {"out": out, "count": len(result.paths), "dim": int(result.embeddings.shape[1]),
               "backend": embedder.device_description,
               "failures": [{"file": f, "error": e} for f, e in result.failures]}
    if as_json:
        print_json(summary)
    else:
        for _, error in result.failures:
            warn(f"skipped {error}")
        click.echo(f"wrote {summary['count']} embeddings of size {summary['dim']} to {out}")
    if result.failures:  # as enroll --from-dir: the rest is written, the skips are signalled
        raise SystemExit(EXIT_PARTIAL)


def _save(result, out: Path, fingerprint: str) -> None:
    """Write the .npz (whole or not at all), never over one of the images it came from."""
    embedded = {os.path.realpath(p) for p in result.paths}
    embedded.update(os.path.realpath(f) for f, _ in result.failures)
    if os.path.realpath(out) in embedded:
        raise InvalidInputError(f"--out {out}: is one of the input images; choose another file")
    try:
        result.save(out, fingerprint)
    except OSError as exc:
        raise InvalidInputError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
