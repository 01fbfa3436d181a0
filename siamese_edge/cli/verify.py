"""``siamese-edge verify``: 1:1 verification or 1:N identification of image files."""

from __future__ import annotations

import click

from siamese_edge.cli.options import (
    EXIT_PARTIAL, FiniteFloat, backend_options, batch_option, camera_json_option, check_roi,
    check_vote, gallery_option, model_option, open_embedder, parsed_by, print_json,
    print_json_line, threshold_origin, warn,
)


@click.command("verify")
@model_option
@gallery_option
@click.option("--identity", "-i", help="Claimed identity (1:1). Without it: 1:N identification.")
@click.option("--threshold", "-t", type=FiniteFloat(),
              help="Accept when score >= T (default: the model's calibrated threshold).")
@click.option("--top-k", "-k", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Candidates listed per probe in 1:N mode.")
@click.option("--aggregate", type=click.Choice(["max", "mean-top-k"]), default="max",
              show_default=True, help="An identity's score: its best template, or the mean "
              "of its --aggregate-k best.")
@click.option("--aggregate-k", default=3, show_default=True, type=click.IntRange(1),
              help="Templates averaged by --aggregate mean-top-k.")
@click.option("--margin", type=FiniteFloat(min=0),
              help="1:N: also answer 'unknown' unless best - second-best identity >= M.")
@click.option("--camera", help="Live: a device index, /dev/videoN, video file, rtsp:// or "
              "http(s):// URL, csi://N (Jetson), v4l2://N or a GStreamer pipeline.")
@click.option("--vote", default="3/5", show_default=True,
              callback=parsed_by(check_vote),
              help="Camera: accept an identity after k of the last n frames agree.")
@click.option("--roi", default="whole", show_default=True,
              callback=parsed_by(check_roi),
              help="Camera: region to embed: whole | face (Haar detector) | x,y,w,h "
              "(use the --roi the identities were enrolled with).")
@click.option("--show", is_flag=True, help="Camera: draw decisions in a window (needs a display).")
@click.option("--output", type=click.Path(dir_okay=False),
              help="Camera: write the annotated video here.")
@click.option("--max-frames", type=click.IntRange(1), help="Camera: stop after N frames.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True),
              help="Camera: stop after this many seconds.")
@backend_options
@batch_option
@camera_json_option
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
def verify(model: str, gallery: str, identity: str | None, threshold: float | None, top_k: int,
           aggregate: str, aggregate_k: int, margin: float | None, camera: str | None,
           vote: str, roi: str, show: bool, output: str | None,
           max_frames: int | None, duration: float | None, backend: str, engine: str | None,
           require_gpu: bool, rebuild_stale: bool, batch_size: int, as_json: bool,
           images: tuple[str, ...]) -> None:
    """Decide who each IMAGE is (1:N), or whether it is --identity (1:1).

    \b
    Examples:
      siamese-edge verify -m model.onnx -g gallery.sqlite probe.png
      siamese-edge verify -m model.onnx -g gallery.sqlite --identity alice probe.png

    \b
    Live, from a camera or stream (one line, or one JSON line with --json, per decision):
      siamese-edge verify -m model.onnx -g gallery.sqlite --camera 0 --roi face --vote 3/5
      siamese-edge verify -m model.onnx -g gallery.sqlite --camera rtsp://cam/stream

    A probe whose best score is below the threshold is answered 'unknown'. With --camera an
    identity is accepted only when k of the last n frames agree (--vote); Ctrl-C stops with
    a summary (frames, FPS, p50/p99 latency per stage).
    """
    from siamese_edge.runtime.gallery import Gallery
    from siamese_edge.runtime.matching import aggregation_from_name
    from siamese_edge.runtime.workflows import decide_files

    embedder = open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale)
    if camera is not None:
        if images:
            raise click.UsageError("give IMAGES or --camera, not both")
        _verify_camera(embedder, gallery, identity, threshold, camera, vote, roi, show, output,
                       max_frames, duration, as_json,
                       aggregation_from_name(aggregate, aggregate_k), margin)
        return
    if not images:
        raise click.UsageError("no IMAGES given (or use --camera SRC)")
    with embedder, \
            Gallery.open(gallery, embedder.info, create=False) as store:
        decisions = decide_files(embedder, store, images, identity, threshold, top_k,
                                 aggregation_from_name(aggregate, aggregate_k), margin)
    mode = "verify" if identity is not None else "identify"
    if as_json:
        print_json({"mode": mode, "model": model, "gallery": gallery,
                    "backend": embedder.device_description,
                    "threshold": decisions[0].threshold,
                    "threshold_source": threshold_origin(threshold, embedder.info),
                    "results": [{"image": path, **d.to_dict()}
                                for path, d in zip(images, decisions)]})
        return
    width = max(len(p) for p in images)
    for path, decision in zip(images, decisions):
        if mode == "verify":
            verdict = "MATCH" if decision.accepted else "NO MATCH"
            click.echo(f"{path:<{width}}  {verdict:<8}  {decision.identity}  "
                       f"score {decision.score:.3f}")  # the identity as stored
        else:
            click.echo(f"{path:<{width}}  {decision.answer:<12}  score {decision.score:.3f}"
                       + _identify_note(decision))
    click.echo(f"threshold {decisions[0].threshold:.3f}, backend {embedder.device_description}")


def _identify_note(decision) -> str:
    """What follows a 1:N line's score: the runners-up of an accepted answer, or for an
    ``unknown`` everything needed to see why: the nearest identities, the best included
    (its name is not on the line), and a margin rejection (otherwise only in --json)."""
    if decision.accepted:
        others = ", ".join(f"{c.identity} {c.score:.3f}" for c in decision.candidates[1:])
        return f"  (next: {others})" if others else ""
    notes = []
    nearest = ", ".join(f"{c.identity} {c.score:.3f}" for c in decision.candidates)
    if nearest:
        notes.append(f"nearest: {nearest}")
    if decision.margin is not None and decision.required_margin is not None \
            and decision.margin < decision.required_margin:
        notes.append(f"margin {decision.margin:.3f} < {decision.required_margin:g}")
    return f"  ({'; '.join(notes)})" if notes else ""


def _verify_camera(embedder, gallery: str, identity: str | None, threshold: float | None,
                   camera: str, vote: str, roi: str, show: bool, output: str | None,
                   max_frames: int | None, duration: float | None, as_json: bool,
                   aggregation, margin: float | None) -> None:
    from siamese_edge.camera.matcher import VerifierMatcher
    from siamese_edge.cli.camera import CameraOptions, format_event, format_summary, \
        run_camera_verify
    from siamese_edge.runtime.gallery import Gallery
    from siamese_edge.runtime.verifier import Verifier

    options = CameraOptions(vote=vote, roi=roi, show=show, output=output,
                            max_frames=max_frames, duration=duration, json=as_json)
    with Gallery.open(gallery, embedder.info, create=False) as store:
        # the same decision rule as for files: aggregation over templates and the margin
        matcher = VerifierMatcher(Verifier(embedder, store, threshold, aggregation=aggregation,
                                           margin=margin), identity)
        if identity is not None and identity not in store:
            from siamese_edge.errors import UnknownIdentityError

            raise UnknownIdentityError(f"no identity named {identity!r} in {gallery}")
        # text: warnings on stderr, as every command's, apart from the stream of decisions
        emit = print_json_line if as_json else (lambda event: click.echo(
            format_event(event), err=event.get("event") == "warning"))
        summary = run_camera_verify(embedder, matcher, camera, options, emit=emit)
    summary.update(threshold=matcher.verifier.threshold,
                   threshold_source=threshold_origin(threshold, embedder.info),
                   backend=embedder.device_description)
    if as_json:
        print_json_line({"event": "summary", **summary})
    else:
        click.echo(format_summary(summary))
    if "warning" in summary:  # on stderr as every warning, with --json too
        warn(summary["warning"])
    if summary["regions"] == 0:
        # Not 0: nothing was verified, which a script must tell from "verified, nobody
        # accepted". Not 1: the run itself worked and its summary (and --output video) is
        # valid. 3, "done with what could be read": every frame read was passed over.
        raise SystemExit(EXIT_PARTIAL)
