"""``siamese-edge enroll``: add identities to a gallery."""

from __future__ import annotations

from pathlib import Path

import click

from siamese_edge.cli.options import (
    EXIT_PARTIAL, backend_options, batch_option, camera_json_option, check_roi, gallery_option,
    model_option, open_embedder, parse_metadata, parsed_by, print_json, print_json_line, warn,
)


@click.command("enroll")
@model_option
@gallery_option
@click.option("--from-dir", "from_dir", type=click.Path(file_okay=False),
              help="Enroll DIR/<identity>/*.png|jpg… (one subfolder per identity).")
@click.option("--camera", help="Enroll --name from a camera or stream (see verify --camera).")
@click.option("--name", "camera_name", help="With --camera: the identity to enroll.")
@click.option("--samples", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="With --camera: distinct good frames to capture.")
# The same default as verify --roi: templates and probes must be cut the same way, and the
# whole frame suits any subject (face, signature, product); 'face' is asked for explicitly.
@click.option("--roi", default="whole", show_default=True,
              callback=parsed_by(check_roi),
              help="With --camera: region to enroll, as verify --camera --roi cuts it: "
              "whole | face (Haar detector) | x,y,w,h.")
@click.option("--on-duplicate", type=click.Choice(["add", "refuse"]), default="add",
              show_default=True, help="NAME already enrolled: add the new templates, or "
              "refuse (with --from-dir: skip that folder).")
@click.option("--metadata", help="With NAME: a JSON object stored with a new identity "
              "(e.g. '{\"employee\": 42}').")
@click.option("--template-dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True, help="How a NEW gallery stores templates (float16: half the "
              "size; an existing gallery keeps its own).")
@backend_options
@batch_option
@camera_json_option
@click.argument("name", required=False)
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
def enroll(model: str, gallery: str, from_dir: str | None, camera: str | None,
           camera_name: str | None, samples: int, roi: str, on_duplicate: str,
           metadata: str | None, template_dtype: str, backend: str, engine: str | None,
           require_gpu: bool, rebuild_stale: bool, batch_size: int, as_json: bool,
           name: str | None, images: tuple[str, ...]) -> None:
    """Enroll NAME from IMAGE... (or every identity folder of --from-dir) into the gallery.

    \b
    Examples:
      siamese-edge enroll -m model.onnx -g gallery.sqlite alice a1.png a2.png
      siamese-edge enroll -m model.onnx -g gallery.sqlite --from-dir people/
      siamese-edge enroll -m model.onnx -g gallery.sqlite --camera 0 --name alice --samples 5

    A gallery is bound to the model that created it. With NAME, all images are stored in one
    transaction or none is. With --from-dir, unreadable files and folders are reported and
    skipped, the rest is stored, and the exit status is 3.
    """
    from siamese_edge.runtime.workflows import embed_directory, embed_files, \
        enroll_into_gallery

    if camera is not None:
        if not camera_name or name or from_dir:
            raise click.UsageError("--camera needs --name NAME (and no NAME IMAGE... or "
                                   "--from-dir)")
        _enroll_camera(model, gallery, camera, camera_name, samples, roi, as_json,
                       template_dtype, open_embedder(model, backend, batch_size, engine,
                                                     require_gpu, rebuild_stale),
                       parse_metadata(metadata) if metadata is not None else None,
                       on_duplicate)
        return
    if bool(from_dir) == bool(name):
        raise click.UsageError("give either NAME IMAGE... or --from-dir DIR (or --camera)")
    if name and not images:
        raise click.UsageError(f"no images given for {name!r}")
    if metadata is not None and not name:
        raise click.UsageError("--metadata goes with NAME IMAGE...")
    parsed = parse_metadata(metadata) if metadata is not None else None
    embedder = open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale)
    with embedder:
        report, counts = enroll_into_gallery(
            embedder, gallery,
            (lambda: embed_directory(embedder, from_dir)) if from_dir
            else (lambda: ([embed_files(embedder, name, images, parsed)], [])),
            on_duplicate, template_dtype, refuse_first=[] if from_dir else [name])
    if as_json:
        # gallery_exists: an empty "identities" alone looked like an existing empty gallery
        print_json({**report.to_dict(), "gallery": gallery, "backend":
                    embedder.device_description, "identities": counts,
                    "gallery_exists": bool(report.enrolled) or Path(gallery).exists()})
    else:
        for identity, added in report.enrolled.items():
            click.echo(f"enrolled {identity}: {added} template(s) "
                       f"({counts.get(identity, added)} in gallery)")
        for identity, count in report.already.items():
            if count:
                click.echo(f"{identity}: {count} image(s) already enrolled from the same "
                           f"file(s), not added again")
        for path, error in report.failures:
            warn(f"skipped {error}" if error.startswith(path) else f"skipped {path}: {error}")
        # the last line names the backend that embedded, as every command's result does
        backend = f"backend {embedder.device_description}"
        if report.enrolled or Path(gallery).exists():
            click.echo(f"{gallery}: {len(counts)} identities, {sum(counts.values())} "
                       f"templates, {backend}")
        else:
            click.echo(f"nothing enrolled; {gallery} was not created, {backend}")
    if report.failures:
        raise SystemExit(EXIT_PARTIAL)


def _enroll_camera(model: str, gallery: str, camera: str, name: str, samples: int, roi: str,
                   as_json: bool, template_dtype: str, embedder, metadata: dict | None,
                   on_duplicate: str) -> None:
    from siamese_edge.cli.camera import capture_identity
    from siamese_edge.runtime.gallery import DuplicateIdentityError
    from siamese_edge.runtime.workflows import enroll_into_gallery

    emit = print_json_line if as_json else None
    report, counts = enroll_into_gallery(
        embedder, gallery,
        lambda: ([capture_identity(embedder, name, camera, samples, roi, emit=emit,
                                   metadata=metadata)], []),
        on_duplicate, template_dtype, refuse_first=[name])
    if report.failures:  # refused: enrolled by someone else while the camera ran
        raise DuplicateIdentityError(report.failures[0][1])
    added = sum(report.enrolled.values())
    stored = next(iter(report.enrolled))
    if as_json:  # one JSON line, after the capture's event lines
        print_json_line({"event": "enrolled", "enrolled": report.enrolled, "gallery": gallery,
                         "source": camera, "backend": embedder.device_description,
                         "identities": counts})
    else:  # the backend that embedded, as every command's result names it
        click.echo(f"enrolled {stored}: {added} template(s) from {camera} "
                   f"({counts.get(stored, added)} in gallery), backend "
                   f"{embedder.device_description}")
