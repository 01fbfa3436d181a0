"""Moving a gallery's contents: export to / import from a file, re-embed with a new model.

Export format (``.npz``, readable with ``numpy.load(path, allow_pickle=False)``; no pickle,
nothing executable; every string array is fixed-width unicode)::

    format              "siamese-edge-gallery"
    format_version      1
    meta                JSON object: model_fingerprint, model_name, embedding_dim,
                        preprocessing, template_dtype, schema_version, exported (UNIX time)
    identity_names      (I,)   unicode
    identity_created    (I,)   float64
    identity_metadata   (I,)   unicode, one JSON object each
    template_identity   (T,)   int64, index into identity_names
    template_ids        (T,)   int64, ids in the exporting gallery (informational)
    template_embeddings (T, D) float32 or float16, L2-normalised
    template_sources    (T,)   unicode ("" when none; see template_has_source)
    template_has_source (T,)   bool
    template_created    (T,)   float64
    template_quality    (T,)   float64, NaN when none
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siamese_edge.errors import GalleryError, ImageReadError, InvalidInputError
from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime.atomic_file import check_replaceable_archive, replaced_on_success, \
    same_file, starts_like_an_archive
from siamese_edge.runtime.gallery import MAX_TEMPLATE_TIME, DuplicateIdentityError, Gallery, \
    reserved_warnings

FORMAT = "siamese-edge-gallery"
FORMAT_VERSION = 1


def export_gallery(gallery: Gallery, out: str | os.PathLike[str],
                   overwrite: bool = False) -> dict[str, int]:
    """Write every identity and template of ``gallery`` to ``out`` (.npz); returns counts.
    An existing ``out`` (an earlier export) is replaced only with ``overwrite``.

    Raises:
        InvalidInputError: ``out`` is a database (the gallery itself, or another one): an
            export written there would destroy it; or ``out`` cannot be written.
    """
    _check_export_target(gallery, Path(out), overwrite)
    dim = gallery.embedding_dim
    dtype = np.float16 if gallery.template_dtype == "float16" else np.float32
    with gallery.snapshot():  # one state, whatever other processes change meanwhile
        names = gallery.names()
        rows = {name: gallery.identity(name) for name in names}
        records = [t for name in names for t in rows[name].templates]
        embeddings = gallery.embeddings([t.id for t in records]).astype(dtype) if records \
            else np.empty((0, dim), dtype)
    position = {name: i for i, name in enumerate(names)}
    meta = {key: gallery.meta.get(key) for key in
            ("model_fingerprint", "model_name", "embedding_dim", "template_dtype",
             "schema_version")}
    meta["preprocessing"] = json.loads(gallery.meta.get("preprocessing", "{}"))
    meta["exported"] = time.time()
    arrays = {
        "format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION),
        "meta": np.array(json.dumps(meta)),
        "identity_names": np.array(names, dtype=str).reshape(-1),
        "identity_created": np.array([rows[n].created for n in names], np.float64),
        "identity_metadata": np.array([json.dumps(rows[n].metadata) for n in names],
                                      dtype=str).reshape(-1),
        "template_identity": np.array([position[t.identity] for t in records], np.int64),
        "template_ids": np.array([t.id for t in records], np.int64),
        "template_embeddings": embeddings,
        "template_sources": np.array([t.source or "" for t in records], dtype=str).reshape(-1),
        "template_has_source": np.array([t.source is not None for t in records], bool),
        "template_created": np.array([t.created for t in records], np.float64),
        "template_quality": np.array([np.nan if t.quality is None else t.quality
                                      for t in records], np.float64),
    }
    try:
        with replaced_on_success(out) as handle:
            np.savez(handle, **arrays)
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot write the export "
                                f"({exc.strerror or exc})") from None
    return {"identities": len(names), "templates": len(records)}


def _check_export_target(gallery: Gallery, out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if out.is_dir():
        raise InvalidInputError(f"{out}: is a directory; name the export file")
    same = same_file(out, gallery.path)
    try:
        with open(out, "rb") as handle:
            database = handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        database = False  # unreadable: writing will say why
    if same or database:
        raise InvalidInputError(f"{out}: is {'the gallery itself' if same else 'a database'}; "
                                f"an export written there would destroy it, choose another "
                                f"file")
    check_replaceable_archive(out, overwrite)


@dataclass
class GalleryExport:
    """An export file, read and checked."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def model_info(self) -> ModelInfo:
        """Enough of the exporting model's description to create a gallery bound to it."""
        pre = self.meta.get("preprocessing") or {}
        try:
            return ModelInfo(Preprocessing(int(pre["height"]), int(pre["width"]),
                                           int(pre["channels"]), tuple(pre["mean"]),
                                           tuple(pre["std"])),
                             embedding_dim=int(self.meta["embedding_dim"]), threshold=0.5,
                             fingerprint=str(self.meta["model_fingerprint"]),
                             name=str(self.meta.get("model_name") or "siamese-edge-model"))
        except (KeyError, TypeError, ValueError) as exc:
            raise GalleryError(f"export lacks the model description ({exc})") from None


_REQUIRED = ("format", "format_version", "meta", "identity_names", "identity_created",
             "identity_metadata", "template_identity", "template_embeddings",
             "template_sources", "template_has_source", "template_created",
             "template_quality")


def _read_members(path: Path) -> dict[str, np.ndarray]:
    """The export's known arrays, each read only after its ``.npy`` header says it holds
    no more than its zip member does: a few-KB member declaring 10**12 values, or a zip
    bomb among members nobody reads, used to be inflated (gigabytes) before any check."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for key in _REQUIRED:
            name = f"{key}.npy"
            if name not in names:
                continue
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = header(member)
                if dtype.hasobject:
                    raise ValueError(f"{key} holds Python objects")
                declared = math.prod(shape) * dtype.itemsize
                if declared > archive.getinfo(name).file_size:
                    raise ValueError(f"{key} declares {declared} bytes, more than it holds")
            with archive.open(name) as member:
                arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def read_export(path: str | os.PathLike[str]) -> GalleryExport:
    """Load and validate an export file (never unpickles anything)."""
    if Path(path).is_file() and not starts_like_an_archive(path):
        # numpy would call any other file "pickled data": say what it is not
        raise GalleryError(f"{path}: not a gallery export (not an .npz archive)")
    try:
        arrays = _read_members(Path(path))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise GalleryError(f"{path}: not a gallery export ({exc})") from None
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing or str(arrays.get("format")) != FORMAT:
        raise GalleryError(f"{path}: not a siamese-edge gallery export"
                           + (f" (lacks {', '.join(missing)})" if missing else ""))
    try:
        version = int(arrays["format_version"])
        meta = json.loads(str(arrays["meta"]))
        if not isinstance(meta, dict):
            raise ValueError("meta is not a JSON object")
        dim = int(meta.get("embedding_dim", 0))
    except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise GalleryError(f"{path}: damaged export ({exc})") from None
    except RecursionError:
        raise GalleryError(f"{path}: damaged export (meta nested too deeply)") from None
    if version > FORMAT_VERSION:
        raise GalleryError(f"{path}: export format {version} is newer than this "
                           f"siamese-edge reads ({FORMAT_VERSION})")
    problem = _inconsistency(arrays, dim)
    if problem:  # found before anything is imported: an import is never left half done
        raise GalleryError(f"{path}: inconsistent export ({problem})")
    return GalleryExport(meta, arrays)


#: (array, dtype kinds accepted, length: "identities" or "templates")
_SHAPES = (("identity_names", "U", "identities"), ("identity_created", "f", "identities"),
           ("identity_metadata", "U", "identities"), ("template_identity", "iu", "templates"),
           ("template_sources", "U", "templates"), ("template_has_source", "b", "templates"),
           ("template_created", "f", "templates"), ("template_quality", "f", "templates"))


def _inconsistency(a: dict[str, np.ndarray], dim: int) -> str | None:
    """What is wrong with an export's arrays, or None."""
    counts = {"identities": a["identity_names"].size, "templates": a["template_identity"].size}
    for key, kinds, length in _SHAPES:
        if a[key].ndim != 1 or a[key].dtype.kind not in kinds or len(a[key]) != counts[length]:
            unit = "identity" if length == "identities" else "template"
            return f"{key} is not one {'/'.join(kinds)} value per {unit}"
    embeddings = a["template_embeddings"]
    if embeddings.shape != (counts["templates"], dim) or embeddings.dtype.kind != "f" \
            or not np.all(np.isfinite(embeddings)):
        return f"template_embeddings are not {counts['templates']} finite rows of {dim}"
    owners = a["template_identity"]
    if len(owners) and (owners.min() < 0 or owners.max() >= counts["identities"]):
        return "template owner out of range"
    for key in ("identity_created", "template_created"):
        if not np.all(np.isfinite(a[key]) & (a[key] >= 0) & (a[key] < MAX_TEMPLATE_TIME)):
            return f"{key} holds times that are not dates"
    for text in a["identity_metadata"].tolist():
        try:
            if not isinstance(json.loads(text), (dict, type(None))):
                return "identity_metadata holds a value that is not a JSON object"
        except ValueError:
            return "identity_metadata holds text that is not JSON"
        except RecursionError:
            return "identity_metadata is nested too deeply"
    return None


@dataclass
class ImportReport:
    imported: dict[str, int] = field(default_factory=dict)  # identity -> templates added
    failures: list[tuple[str, str]] = field(default_factory=list)  # (identity, why)
    #: identity -> templates not added again: already there (same source and vector)
    already: dict[str, int] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return reserved_warnings(self.imported)

    def to_dict(self) -> dict:
        return {"imported": self.imported, "already_present": self.already,
                "failures": [{"identity": i, "error": e} for i, e in self.failures],
                "warnings": self.warnings}



def import_gallery(target: str | os.PathLike[str], path: str | os.PathLike[str],
                   on_duplicate: str = "refuse") -> ImportReport:
    """Import an export file into the gallery ``target`` (created, bound to the export's
    model, if missing). One transaction per identity; refused ones are reported.

    Raises:
        ModelMismatchError: ``target`` is bound to another model than the export.
    """
    export = read_export(path)
    info = export.model_info()
    dtype = export.meta.get("template_dtype")  # a new gallery stores templates as the old one
    with Gallery.open(target, info, template_dtype=dtype if dtype in ("float32", "float16")
                      else "float32") as gallery:
        a = export.arrays
        report = ImportReport()
        for i, name in enumerate(a["identity_names"].tolist()):
            rows = np.flatnonzero(a["template_identity"] == i)  # none: all were removed
            if on_duplicate == "add" and name in gallery:
                # importing a backup into the gallery it came from doubled every template
                present = _present_rows(gallery, name, a, rows)
                if present.any():
                    report.already[name] = int(present.sum())
                    rows = rows[~present]
            sources = [s if has else None for s, has in
                       zip(a["template_sources"][rows].tolist(),
                           a["template_has_source"][rows].tolist())]
            qualities = [None if np.isnan(q) else q for q in a["template_quality"][rows]]
            try:
                metadata = json.loads(str(a["identity_metadata"][i]))
                gallery.enroll(name, a["template_embeddings"][rows].astype(np.float32),
                               sources, metadata if isinstance(metadata, dict) else None,
                               qualities=qualities, created=a["template_created"][rows],
                               on_duplicate=on_duplicate,
                               identity_created=float(a["identity_created"][i]),
                               allow_empty=True, reserved_ok=True)
            except (InvalidInputError, DuplicateIdentityError, ValueError) as exc:
                report.failures.append((name, str(exc)))
                continue
            report.imported[name] = len(rows)
    return report


def _present_rows(gallery: Gallery, name: str, arrays: dict[str, np.ndarray],
                  rows: np.ndarray) -> np.ndarray:
    """Which of the export's ``rows`` are already templates of ``name`` (same source, same
    vector up to float16 rounding: :func:`~siamese_edge.runtime.workflows.already_stored`)."""
    from siamese_edge.runtime.workflows import already_stored

    sources = [str(arrays["template_sources"][r]) if arrays["template_has_source"][r] else None
               for r in rows]
    vectors = arrays["template_embeddings"][rows].astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    with gallery.snapshot():
        return already_stored(gallery, name, sources, vectors)


@dataclass
class ReembedReport:
    reembedded: dict[str, int] = field(default_factory=dict)  # identity -> templates
    missing: list[tuple[str, int, str]] = field(default_factory=list)  # (identity, id, why)

    @property
    def warnings(self) -> list[str]:
        return reserved_warnings(self.reembedded)

    def to_dict(self) -> dict:
        return {"reembedded": self.reembedded,
                "missing": [{"identity": n, "template": t, "error": e}
                            for n, t, e in self.missing], "warnings": self.warnings}


def reembed_gallery(embedder, source: Gallery, target: str | os.PathLike[str],
                    on_duplicate: str = "refuse") -> ReembedReport:
    """Re-embed the stored source image of every template with ``embedder``'s model into a
    new gallery ``target``: the only way across a model change, since embeddings of two
    models are not comparable. Templates whose source is unknown or unreadable are reported
    in ``missing``; identity metadata and template qualities carry over. The gallery is
    built next to ``target`` and appears there only when complete.

    Raises:
        InvalidInputError: ``target`` exists (it is never written into).
    """
    target = Path(target)
    if same_file(target, source.path):
        raise InvalidInputError("reembed writes a new gallery; give another --out path")
    if target.exists():
        raise InvalidInputError(f"{target}: already exists; reembed writes a new gallery, "
                                f"give an --out path that does not exist")
    # a name of its own, so two reembeds to one --out cannot delete each other's work; not
    # made here (mkstemp would make it 0600, and the published gallery with it): SQLite
    # creates it with the usual permissions
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        report = _reembed_into(embedder, source, partial, on_duplicate)
    except BaseException:
        _remove_gallery_file(partial)
        raise
    _publish(partial, target)
    return report


def _reembed_into(embedder, source: Gallery, target: Path, on_duplicate: str) -> ReembedReport:
    from siamese_edge.runtime.imageio import read_image

    report = ReembedReport()
    with Gallery.open(target, embedder.info) as out:
        for name in source.names():
            record = source.identity(name)
            images, kept = [], []
            for template in record.templates:
                if template.source is None:
                    report.missing.append((name, template.id, "no source image recorded"))
                    continue
                if _captured_frame(template.source):
                    report.missing.append((name, template.id, f"{template.source}: a camera "
                                           f"frame, not kept as an image; enroll {name!r} "
                                           f"again"))
                    continue
                try:
                    images.append(read_image(template.source))
                    kept.append(template)
                except ImageReadError as exc:
                    report.missing.append((name, template.id, str(exc)))
            # an identity whose images are all gone keeps its record and metadata, with no
            # templates, as gallery export keeps it; times carry over
            out.enroll(name, embedder.embed(images) if images else np.empty((0, 0)),
                       [t.source for t in kept], record.metadata,
                       qualities=[t.quality for t in kept], created=[t.created for t in kept],
                       on_duplicate=on_duplicate, identity_created=record.created,
                       allow_empty=True, reserved_ok=True)
            report.reembedded[name] = len(kept)
    return report


def _captured_frame(source: str) -> bool:
    """``SRC#N``: frame N of a camera or video (``enroll --camera``), not an image file."""
    base, sep, frame = source.rpartition("#")
    return bool(sep) and frame.isdecimal() and not Path(source).is_file()


def _remove_gallery_file(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def _publish(partial: Path, target: Path) -> None:
    """Move the finished gallery to ``target``, never over a file that appeared meanwhile."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise GalleryError(f"{target}: appeared while re-embedding; the new gallery is left "
                           f"in {partial}") from None
    except OSError:  # no hard links on this file system: the check at the start must do
        os.replace(partial, target)
        return
    partial.unlink()
