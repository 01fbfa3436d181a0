"""``siamese-edge verify``: 1:1 verification or 1:N identification of image files."""

from __future__ import annotations

import click

from siamese_edge.cli.options import (
    backend_options, batch_option, gallery_option, json_option, model_option, open_embedder,
    print_json,
)


@click.command("verify")
@model_option
@gallery_option
@click.option("--identity", "-i", help="Claimed identity (1:1). Without it: 1:N identification.")
@click.option("--threshold", "-t", type=float,
              help="Accept when score >= T (default: the model's calibrated threshold).")
@click.option("--top-k", "-k", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Candidates listed per probe in 1:N mode.")
@backend_options
@batch_option
@json_option
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
def verify(model: str, gallery: str, identity: str | None, threshold: float | None, top_k: int,
           backend: str, engine: str | None, require_gpu: bool,
           rebuild_stale: bool, batch_size: int, as_json: bool, images: tuple[str, ...]) -> None:
    """Decide who each IMAGE is (1:N), or whether it is --identity (1:1).

    \b
    Examples:
      siamese-edge verify -m model.onnx -g gallery.sqlite probe.png
      siamese-edge verify -m model.onnx -g gallery.sqlite --identity alice probe.png

    A probe whose best score is below the threshold is answered 'unknown'.
    """
    from siamese_edge.runtime.gallery import Gallery
    from siamese_edge.runtime.workflows import decide_files

    embedder = open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale)
    with embedder, \
            Gallery.open(gallery, embedder.info, create=False) as store:
        decisions = decide_files(embedder, store, images, identity, threshold, top_k)
    mode = "verify" if identity is not None else "identify"
    if as_json:
        print_json({"mode": mode, "model": model, "gallery": gallery,
                    "backend": embedder.device_description,
                    "threshold": decisions[0].threshold,
                    "results": [{"image": path, **d.to_dict()}
                                for path, d in zip(images, decisions)]})
        return
    width = max(len(p) for p in images)
    for path, decision in zip(images, decisions):
        if mode == "verify":
            verdict = "MATCH" if decision.accepted else "NO MATCH"
            click.echo(f"{path:<{width}}  {verdict:<8}  {identity}  score {decision.score:.3f}")
        else:
            others = ", ".join(f"{c.identity} {c.score:.3f}" for c in decision.candidates[1:])
            click.echo(f"{path:<{width}}  {decision.answer:<12}  score {decision.score:.3f}"
                       + (f"  (next: {others})" if others else ""))
    click.echo(f"threshold {decisions[0].threshold:.3f}, backend {embedder.device_description}")
