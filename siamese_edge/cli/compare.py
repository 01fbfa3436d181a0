"""``siamese-edge compare``: are two images the same identity? No gallery needed."""

from __future__ import annotations

import click

from siamese_edge.cli.options import (
    EXIT_PARTIAL, FiniteFloat, backend_options, batch_option, json_option, model_option,
    open_embedder, print_json, threshold_origin, warn,
)


@click.command("compare")
@model_option
@click.option("--pairs", "pairs_file", type=click.Path(dir_okay=False),
              help="A list of pairs instead of IMAGE_A IMAGE_B: two paths per line, tab- or "
                   "comma-separated, relative to the list's folder (a labelled pairs CSV "
                   "works too; evaluate measures it).")
@click.option("--threshold", "-t", type=FiniteFloat(),
              help="Same identity when score >= T (default: the model's calibrated "
                   "threshold).")
@backend_options
@batch_option
@json_option
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
def compare(model: str, pairs_file: str | None, threshold: float | None, backend: str,
            engine: str | None, require_gpu: bool, rebuild_stale: bool, batch_size: int,
            as_json: bool, images: tuple[str, ...]) -> None:
    """Score IMAGE_A against IMAGE_B (1:1, no gallery): MATCH when the cosine score reaches
    the threshold.

    \b
    Examples:
      siamese-edge compare -m model.onnx questioned.png reference.png
      siamese-edge compare -m model.onnx --pairs pairs.tsv --json

    With --pairs, each distinct image is embedded once; pairs with an unreadable image are
    reported and skipped, the rest are decided, and the exit status is 3.
    """
    from siamese_edge.runtime.pairs import compare_pairs, read_pair_list

    if pairs_file is not None and images:
        raise click.UsageError("give IMAGE_A IMAGE_B or --pairs FILE, not both")
    if pairs_file is None and len(images) != 2:
        raise click.UsageError(f"give two images (IMAGE_A IMAGE_B), not {len(images)}, or "
                               f"--pairs FILE")
    pairs = read_pair_list(pairs_file) if pairs_file else [(images[0], images[1])]
    with open_embedder(model, backend, batch_size, engine, require_gpu,
                       rebuild_stale) as embedder:
        # two named images: an unreadable one is an error, not a skipped pair
        report = compare_pairs(embedder, pairs, threshold, skip_unreadable=bool(pairs_file))
    if as_json:
        print_json({"model": model, "backend": embedder.device_description,
                    "threshold_source": threshold_origin(threshold, embedder.info),
                    **report.to_dict()})
    else:
        for d in report.decisions:
            verdict = "MATCH" if d.accepted else "NO MATCH"
            click.echo(f"{verdict:<8}  score {d.score:.3f}  {d.first}  {d.second}")
        for file, error in report.failures:
            warn(f"{error if error.startswith(file) else f'{file}: {error}'}; its pairs were "
                 f"skipped")
        click.echo(f"threshold {report.threshold:.3f}, backend {embedder.device_description}")
    if report.failures:
        raise SystemExit(EXIT_PARTIAL)
