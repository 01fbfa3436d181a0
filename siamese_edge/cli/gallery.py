"""``siamese-edge gallery``: inspect and maintain a gallery file."""

from __future__ import annotations

import click

from siamese_edge.cli.options import (
    EXIT_PARTIAL, batch_option, gallery_option, json_option, new_model_backend_options,
    open_embedder, parse_metadata, print_json, printable, warn,
)



def _open(gallery: str, writable: bool = False):
    from siamese_edge.runtime.gallery import Gallery

    return Gallery.open(gallery, None, create=False, read_only=not writable)


@click.group("gallery")
def gallery() -> None:
    """List, show, rename, remove, export, import, re-embed gallery identities.

    \b
    Examples:
      siamese-edge gallery list -g gallery.sqlite
      siamese-edge gallery remove -g gallery.sqlite alice --template 12
      siamese-edge gallery export -g gallery.sqlite backup.npz
      siamese-edge gallery reembed -g old.sqlite --model new.onnx --from-images --out new.sqlite
    """


@gallery.command("list")
@gallery_option
@json_option
def list_identities(gallery: str, as_json: bool) -> None:
    """Identities and their template counts."""
    with _open(gallery) as store:
        counts = store.counts()
    if as_json:
        print_json({"gallery": gallery, "identities": counts})
        return
    for name, count in counts.items():
        click.echo(f"{name}\t{count}")
    click.echo(f"{len(counts)} identities, {sum(counts.values())} templates")


@gallery.command("show")
@gallery_option
@json_option
@click.argument("name")
def show(gallery: str, as_json: bool, name: str) -> None:
    """NAME's metadata and templates (id, source, time, quality)."""
    import json
    import time

    with _open(gallery) as store:
        record = store.identity(name)
    if as_json:
        print_json(record.to_dict())
        return
    click.echo(f"{record.name}: {len(record.templates)} template(s), metadata "
               f"{json.dumps(record.metadata)}")
    for t in record.templates:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.created))
        quality = "" if t.quality is None else f"  quality {t.quality:.3f}"
        click.echo(f"  #{t.id}  {when}  {printable(t.source or '-')}{quality}")


@gallery.command("rename")
@gallery_option
@json_option
@click.argument("old")
@click.argument("new")
def rename(gallery: str, as_json: bool, old: str, new: str) -> None:
    """Rename identity OLD to NEW."""
    from siamese_edge.runtime.gallery import normalize_name

    with _open(gallery, writable=True) as store:
        new = store.rename(old, new)
    old = normalize_name(old)  # the stored spelling, as `new` is
    if as_json:
        print_json({"renamed": {"from": old, "to": new}})
    else:
        click.echo(f"renamed {old} -> {new}")


@gallery.command("set-metadata")
@gallery_option
@json_option
@click.argument("name")
@click.argument("metadata")
def set_metadata(gallery: str, as_json: bool, name: str, metadata: str) -> None:
    """Replace NAME's free-form metadata with the JSON object METADATA."""
    from siamese_edge.runtime.gallery import normalize_name

    value = parse_metadata(metadata)
    with _open(gallery, writable=True) as store:
        store.set_metadata(name, value)
    name = normalize_name(name)  # echo the identity as stored, not as typed
    if as_json:
        print_json({"identity": name, "metadata": value})
    else:
        click.echo(f"{name}: metadata set")


@gallery.command("remove")
@gallery_option
@click.option("--template", "template", type=click.IntRange(1, 2**63 - 1),
              help="Remove only this template id (see 'gallery show').")
@json_option
@click.argument("name")
def remove(gallery: str, template: int | None, as_json: bool, name: str) -> None:
    """Remove identity NAME, or one of its templates."""
    from siamese_edge.runtime.gallery import normalize_name

    with _open(gallery, writable=True) as store:
        if template is None:
            removed = store.remove(name)
        else:
            store.remove_template(template, name)
            removed = 1
    name = normalize_name(name)  # echo the identity as stored, not as typed
    if as_json:
        print_json({"identity": name, "templates_removed": removed,
                    "identity_removed": template is None})
    else:
        click.echo(f"removed {name}: {removed} template(s)" if template is None
                   else f"removed template #{template} of {name}")


@gallery.command("export")
@gallery_option
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists (an earlier export).")
@json_option
@click.argument("file", type=click.Path(dir_okay=False))
def export(gallery: str, overwrite: bool, as_json: bool, file: str) -> None:
    """Write every identity and template to FILE (.npz, no pickle; see gallery_io)."""
    from siamese_edge.runtime.gallery_io import export_gallery

    with _open(gallery) as store:
        counts = export_gallery(store, file, overwrite)
    if as_json:
        print_json({"file": file, **counts})
    else:
        click.echo(f"exported {counts['identities']} identities, {counts['templates']} "
                   f"templates to {file}")


@gallery.command("import")
@gallery_option
@click.option("--on-duplicate", type=click.Choice(["refuse", "add"]), default="refuse",
              show_default=True, help="An identity already in the gallery: skip it, or add "
              "the imported templates to it.")
@json_option
@click.argument("file", type=click.Path(dir_okay=False))
def import_(gallery: str, on_duplicate: str, as_json: bool, file: str) -> None:
    """Add the identities of export FILE (creates the gallery if missing)."""
    from siamese_edge.runtime.gallery_io import import_gallery

    report = import_gallery(gallery, file, on_duplicate=on_duplicate)
    if as_json:
        print_json({"file": file, **report.to_dict()})
    else:
        for name, count in report.imported.items():
            click.echo(f"imported {name}: {count} template(s)"
                       + (f" ({report.already[name]} already there, not added again)"
                          if report.already.get(name) else ""))
        for name, error in report.failures:
            warn(f"skipped {name}: {error}")
        for line in report.warnings:
            warn(line)
    if report.failures:
        raise SystemExit(EXIT_PARTIAL)


@gallery.command("stats")
@gallery_option
@json_option
def stats(gallery: str, as_json: bool) -> None:
    """Counts, sizes, schema and the model the gallery is bound to."""
    with _open(gallery) as store:
        numbers = store.stats()
    if as_json:
        print_json(numbers)
        return
    per = numbers["templates_per_identity"]
    click.echo(f"{numbers['path']}: schema {numbers['schema_version']}, model "
               f"{numbers['model_name']} ({numbers['model_fingerprint'][:23]}…)\n"
               f"{numbers['identities']} identities, {numbers['templates']} templates "
               f"(per identity {per['min']}–{per['max']}, mean {per['mean']:.1f}), "
               f"dim {numbers['embedding_dim']} {numbers['template_dtype']}\n"
               f"file {numbers['file_bytes'] / 2**20:.1f} MiB, in memory "
               f"{numbers['index_bytes'] / 2**20:.1f} MiB")


@gallery.command("reembed")
@gallery_option
@click.option("--model", "-m", "model", required=True, type=click.Path(dir_okay=False),
              help="The NEW model.")
@click.option("--from-images", is_flag=True, required=True,
              help="Re-embed each template's recorded source image (the only method).")
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="The new gallery, bound to --model.")
@new_model_backend_options
@batch_option
@json_option
def reembed(gallery: str, model: str, from_images: bool, out: str, backend: str,
            engine: str | None, require_gpu: bool, rebuild_stale: bool, batch_size: int,
            as_json: bool) -> None:
    """Rebuild the gallery for a new model from the templates' source images.

    Templates whose source image is unknown or no longer readable are listed and skipped
    (exit status 3); enroll those identities again.
    """
    from siamese_edge.runtime.gallery_io import reembed_gallery

    embedder = open_embedder(model, backend, batch_size, engine, require_gpu, rebuild_stale)
    with embedder, _open(gallery) as store:
        report = reembed_gallery(embedder, store, out)
    if as_json:  # "gallery" is the new one; "source" the one it was made from
        print_json({"gallery": out, "source": gallery,
                    "backend": embedder.device_description, **report.to_dict()})
    else:
        for name, count in report.reembedded.items():
            click.echo(f"re-embedded {name}: {count} template(s)")
        for name, template, error in report.missing:
            warn(f"template #{template} of {name}: {error}")
        for line in report.warnings:
            warn(line)
        # the last line names the backend that embedded, as every command's result does
        click.echo(f"wrote {out} from {gallery}, backend {embedder.device_description}")
    if report.missing:
        raise SystemExit(EXIT_PARTIAL)
