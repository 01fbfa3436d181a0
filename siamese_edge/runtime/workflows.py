"""The runtime's whole jobs, one function each, for the CLI and for programs alike.

Each function opens what it needs, does one job and returns plain results; none prints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from siamese_edge.errors import GalleryError, ImageReadError, InvalidInputError
from siamese_edge.runtime.atomic_file import replaced_on_success
from siamese_edge.runtime.embedder import Embedder
from siamese_edge.runtime.gallery import DuplicateIdentityError, Gallery, validate_name
from siamese_edge.runtime.imageio import image_files, is_hidden, read_image
from siamese_edge.runtime.verifier import Decision, Verifier


#: unreadable files listed by name in an evaluation report (all are counted)
MAX_LISTED_SKIPS = 100


@dataclass
class EnrollReport:
    """What an enrolment stored and what it skipped."""

    enrolled: dict[str, int] = field(default_factory=dict)  # identity -> templates added
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    #: identity -> images not added again: the same file, giving the same embedding
    already: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"enrolled": self.enrolled, "already_enrolled": self.already,
                "failures": [{"file": f, "error": e} for f, e in self.failures]}


def list_images(root: Path, failures: list[tuple[str, str]] | None = None) -> list[Path]:
    """Image files directly inside ``root``, sorted by name, hidden ones left out; links
    to files that are gone are added to ``failures``."""
    files, broken = image_files(root)
    if failures is not None:
        failures.extend((str(path), f"{path}: a link to a file that is gone") for path in broken)
    return files


def read_images(paths: Sequence[str | os.PathLike[str]]) -> list[np.ndarray]:
    """Read every image, failing on the first bad one (nothing is half done)."""
    if not paths:
        raise InvalidInputError("no images given")
    return [read_image(p) for p in paths]


def _source_paths(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Template sources as absolute paths: ``gallery reembed`` reads them again later,
    likely from another working directory."""
    return [str(Path(p).resolve()) for p in paths]


@dataclass
class Enrolment:
    """One identity's templates, embedded and ready to store."""

    name: str
    embeddings: np.ndarray
    sources: list[str]
    metadata: dict | None = None
    origin: str = ""  # where it came from (a folder), for reports


def embed_files(embedder: Embedder, name: str, paths: Sequence[str | os.PathLike[str]],
                metadata: dict | None = None) -> Enrolment:
    """Read and embed ``paths`` as templates of ``name``, failing on the first bad image."""
    name = validate_name(name)
    images = read_images(paths)
    return Enrolment(name, embedder.embed(images), _source_paths(paths), metadata)


#: images read, fitted to the model's input and embedded at a time (rounded to a multiple of
#: the embedder's batch): memory holds one chunk at the model's size, not every decoded image
#: at full resolution until one embed call (12 links to one 8192x8192 PNG took 2.6 GB)
EMBED_CHUNK = 256


def _read_and_embed(embedder: Embedder, paths: Sequence[Path],
                    failures: list[tuple[str, str]]) -> tuple[np.ndarray | None, list[Path]]:
    """Embed the readable ``paths`` a chunk at a time; unreadable ones go to ``failures``.

    Returns the embeddings (None when nothing was readable) and the paths they belong to.
    Each image is fitted to the model's input as it is read, as ``embed`` would fit it
    (fitting twice changes nothing), and chunks hold whole batches, so the embeddings are
    the ones a single ``embed`` of every image gave.
    """
    from siamese_edge.runtime.preprocess import fit_image

    pre = embedder.info.preprocessing
    chunk = max(1, EMBED_CHUNK // embedder.batch_size) * embedder.batch_size
    parts: list[np.ndarray] = []
    images: list[np.ndarray] = []
    kept: list[Path] = []
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError as exc:
            failures.append((str(path), str(exc)))
            continue
        images.append(fit_image(image, pre.height, pre.width, pre.channels))
        del image  # the full-resolution image goes now, not when the next one is read
        kept.append(path)
        if len(images) == chunk:
            parts.append(embedder.embed(images))
            images = []
    if images:
        parts.append(embedder.embed(images))
    if not parts:
        return None, kept
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), kept


def embed_directory(embedder: Embedder, root: str | os.PathLike[str]
                    ) -> tuple[list[Enrolment], list[tuple[str, str]]]:
    """Read and embed ``root/<identity>/*.png|jpg…``, one :class:`Enrolment` per folder.

    Unreadable files and folders are returned as ``(path, why)`` failures and skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"{root}: not a directory")
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p))
    except OSError as exc:
        raise InvalidInputError(f"{root}: cannot list the folder ({exc.strerror})") from None
    if not folders:
        raise InvalidInputError(f"{root}: no identity subfolders (expected DIR/<name>/*.png)")
    enrolments: list[Enrolment] = []
    failures: list[tuple[str, str]] = []
    for folder in folders:
        try:
            name = validate_name(folder.name)
        except InvalidInputError as exc:
            failures.append((str(folder), str(exc)))
            continue
        try:
            paths = list_images(folder, failures)
        except OSError as exc:  # e.g. no permission: skip it like an unreadable file
            failures.append((str(folder), f"cannot list the folder ({exc.strerror})"))
            continue
        embeddings, read = _read_and_embed(embedder, paths, failures)
        if embeddings is None:
            failures.append((str(folder), "no readable images"))
            continue
        enrolments.append(Enrolment(name, embeddings, _source_paths(read),
                                     origin=str(folder)))
    return enrolments, failures


def store_enrolments(gallery: Gallery, enrolments: Sequence[Enrolment],
                     on_duplicate: str = "add",
                     failures: Sequence[tuple[str, str]] = ()) -> EnrollReport:
    """Store each enrolment in its own transaction. With ``on_duplicate="refuse"`` an
    identity already enrolled is reported in ``failures`` and skipped."""
    report = EnrollReport(failures=list(failures))
    for enrolment in enrolments:
        new = _not_yet_enrolled(gallery, enrolment) if on_duplicate == "add" else None
        if new is not None:
            report.already[enrolment.name] = len(enrolment.embeddings) - len(new)
            if not len(new):
                continue
            enrolment = Enrolment(enrolment.name, enrolment.embeddings[new],
                                  [enrolment.sources[i] for i in new], enrolment.metadata,
                                  enrolment.origin)
        try:
            gallery.enroll(enrolment.name, enrolment.embeddings, sources=enrolment.sources,
                           metadata=enrolment.metadata, on_duplicate=on_duplicate)
        except DuplicateIdentityError as exc:
            report.failures.append((enrolment.origin or enrolment.name, str(exc)))
            continue
        report.enrolled[enrolment.name] = len(enrolment.embeddings)
    return report


#: a stored template and a new embedding this close are the same image, embedded again
SAME_IMAGE_SCORE = 0.99999


def _not_yet_enrolled(gallery: Gallery, enrolment: Enrolment) -> list[int] | None:
    """Indices of ``enrolment``'s images that are not already templates of its identity
    (same source file, same embedding): enrolling a folder again after adding photos adds
    only the new ones, instead of a second copy of every template, which would skew
    mean-of-top-k scores. None when the identity is new. A file replaced by another photo
    embeds differently and is added; camera frames (no file) are always added."""
    with gallery.snapshot():  # the records and their vectors from one state of the file
        if enrolment.name not in gallery:
            return None
        present = already_stored(gallery, enrolment.name, enrolment.sources,
                                 enrolment.embeddings, files_only=True)
    return [i for i in range(len(enrolment.sources)) if not present[i]]


def already_stored(gallery: Gallery, name: str, sources: Sequence[str | None],
                   embeddings: np.ndarray, files_only: bool = False) -> np.ndarray:
    """Which of ``(sources, embeddings)`` are already templates of ``name``: the same source
    and a cosine of at least :data:`SAME_IMAGE_SCORE` (float16 storage and re-normalising
    move a vector by ~1e-4, so bytes cannot be compared). ``files_only``: sources that are
    not files (camera frames, ``v.avi#3``) never count as stored."""
    by_source: dict = {}  # None too: a template stored without a source
    for template in gallery.templates(name):
        if files_only and not (template.source and Path(template.source).is_file()):
            continue
        by_source.setdefault(template.source, []).append(template.id)
    present = np.zeros(len(sources), bool)
    for i, source in enumerate(sources):
        ids = by_source.get(source)
        if ids:
            scores = gallery.embeddings(ids) @ np.asarray(embeddings[i], np.float32)
            present[i] = float(np.max(scores)) >= SAME_IMAGE_SCORE
    return present


def enroll_files(embedder: Embedder, gallery: Gallery, name: str,
                 paths: Sequence[str | os.PathLike[str]],
                 on_duplicate: str = "add",
                 metadata: dict | None = None) -> EnrollReport:
    """Enroll ``paths`` as templates of ``name``: all of them in one transaction, or none.

    ``on_duplicate``: ``add`` to an existing identity, or ``refuse`` (DuplicateIdentityError).
    ``metadata``: free-form JSON kept with a new identity.
    """
    enrolment = embed_files(embedder, name, paths, metadata)
    gallery.enroll(enrolment.name, enrolment.embeddings, sources=enrolment.sources,
                   metadata=metadata, on_duplicate=on_duplicate)
    return EnrollReport(enrolled={enrolment.name: len(enrolment.embeddings)})


def enroll_directory(embedder: Embedder, gallery: Gallery,
                     root: str | os.PathLike[str], on_duplicate: str = "add") -> EnrollReport:
    """Enroll ``root/<identity>/*.png|jpg…``, one transaction per identity.

    Unreadable files and folders (and, with ``on_duplicate="refuse"``, identities already
    enrolled) are reported in ``failures`` and skipped; the good ones are kept.
    """
    enrolments, failures = embed_directory(embedder, root)
    return store_enrolments(gallery, enrolments, on_duplicate, failures)


def enroll_into_gallery(embedder: Embedder, gallery_path: str | os.PathLike[str],
                        prepare: Callable[[], tuple[Sequence[Enrolment],
                                                    Sequence[tuple[str, str]]]],
                        on_duplicate: str = "add", template_dtype: str = "float32",
                        refuse_first: Sequence[str] = ()) -> tuple[EnrollReport, dict[str, int]]:
    """Run ``prepare`` (read and embed, or capture) and store what it gives in the gallery.

    An existing gallery is checked first (the model it is bound to, that it can be
    written; with ``on_duplicate="refuse"``, the names in ``refuse_first``), so nobody poses
    for a camera or waits for a folder to be embedded only to be refused. A gallery that
    does not exist yet is created only once there is something to store: a failed enrolment
    (a mistyped folder, unreadable images, a camera that gave too few frames) leaves no
    empty gallery bound to the model behind.

    Returns:
        The report, and the gallery's template count per identity afterwards.
    """
    path = Path(gallery_path)
    if not path.exists():  # it will be created: make sure it can be, before any work
        folder = path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise GalleryError(f"{path}: cannot create it ({folder} is not a writable "
                               f"folder)")
    else:
        # an empty file counts as a gallery being created, as Gallery.open has it
        with Gallery.open(path, embedder.info, template_dtype=template_dtype) as existing:
            existing.require_writable()
            for name in refuse_first if on_duplicate == "refuse" else ():
                if validate_name(name) in existing:
                    raise DuplicateIdentityError(f"{name!r} is already enrolled in {path} "
                                                 f"(duplicate policy: refuse)")
    enrolments, failures = prepare()
    if not enrolments and not path.exists():
        return EnrollReport(failures=list(failures)), {}
    with Gallery.open(path, embedder.info, template_dtype=template_dtype) as store:
        report = store_enrolments(store, enrolments, on_duplicate, failures)
        return report, store.counts()


def decide_files(embedder: Embedder, gallery: Gallery, paths: Sequence[str | os.PathLike[str]],
                 identity: str | None = None, threshold: float | None = None,
                 top_k: int = 3, aggregation=None,
                 margin: float | None = None) -> list[Decision]:
    """1:1 against ``identity`` when given, else 1:N; one decision per file.

    ``aggregation`` (a :class:`~siamese_edge.runtime.matching.Aggregation`, default max) and
    ``margin`` (best - second-best identity, 1:N) go to the :class:`Verifier`.
    """
    images = read_images(paths)
    verifier = Verifier(embedder, gallery, threshold, aggregation=aggregation, margin=margin)
    if identity is not None:
        return verifier.verify(images, identity)
    return verifier.identify(images, top_k)


@dataclass
class EmbeddingSet:
    embeddings: np.ndarray
    paths: list[str]
    labels: list[str]
    failures: list[tuple[str, str]]

    def save(self, out: str | os.PathLike[str], fingerprint: str) -> None:
        """Write an ``.npz`` at exactly ``out``, whole or not at all, readable without pickle
        (strings stored as unicode arrays)."""
        with replaced_on_success(out) as handle:
            np.savez(handle, embeddings=self.embeddings,
                     paths=np.array(self.paths, dtype=str),
                     labels=np.array(self.labels, dtype=str),
                     model_fingerprint=np.array(fingerprint))


def embed_inputs(embedder: Embedder, inputs: Sequence[str | os.PathLike[str]]) -> EmbeddingSet:
    """Embed image files and folders (recursively); a file's label is its folder's name."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found, broken = image_files(item, recursive=True)
            files.extend(found)
            files.extend(broken)  # read, so that they are named among the failures
        elif item.exists():
            files.append(item)
        else:
            raise InvalidInputError(f"{item}: no such file or directory")
    failures: list[tuple[str, str]] = []
    embeddings, kept = _read_and_embed(embedder, files, failures)
    if embeddings is None:
        raise InvalidInputError("no readable images in the inputs")
    return EmbeddingSet(embeddings, [str(p) for p in kept],
                        [p.parent.name for p in kept], failures)


def evaluate_model(embedder: Embedder, data: str | os.PathLike[str],
                   labels: str | os.PathLike[str] | None = None,
                   classes: Sequence[str] | None = None, target_far: float = 1e-3,
                   n_way: int = 5, seed: int = 0, progress=None, bootstrap: int = 0,
                   label_means: str = "similar"):
    """Embed a labelled dataset and evaluate verification on it.

    ``bootstrap``: replicates of the bootstrap over identities for 95 % intervals (0: none).
    A pairs CSV is a protocol: exactly its pairs are scored (``label_means``: what its label 1
    means), not every pair among the identities it implies.

    Returns:
        ``(EvaluationReport, genuine_scores, impostor_scores)``.
    """
    from siamese_edge.data.loading import load_dataset
    from siamese_edge.evaluation import evaluate_embeddings, evaluate_listed_pairs

    pre = embedder.info.preprocessing
    dataset = load_dataset(data, labels=labels, height=pre.height, width=pre.width,
                           channels=pre.channels, classes=list(classes) if classes else None,
                           label_means=label_means)
    embeddings = np.empty((len(dataset.labels), embedder.info.embedding_dim), np.float32)
    step = 1024
    for start in range(0, len(embeddings), step):
        embeddings[start:start + step] = embedder.embed(dataset.images[start:start + step])
        if progress:
            progress(min(start + step, len(embeddings)), len(embeddings))
    try:
        if dataset.pairs is not None:
            report, genuine, impostor = evaluate_listed_pairs(
                embeddings, dataset.pairs, dataset.labels, target_far=target_far,
                bootstrap=bootstrap, seed=seed)
        else:
            report, genuine, impostor = evaluate_embeddings(
                embeddings, dataset.labels, target_far=target_far, n_way=n_way, seed=seed,
                names=dataset.class_names, bootstrap=bootstrap)
    except ValueError as exc:
        skipped = (f" ({len(dataset.warnings)} unreadable file(s) left out, first "
                   f"{dataset.warnings[0]})" if dataset.warnings else "")
        raise InvalidInputError(f"{data}: {exc}{skipped}") from None
    report.extras["data"] = str(data)
    # unreadable files were left out of every number: say so, rather than measure quietly
    # on fewer images than the user gave
    report.extras["skipped_count"] = len(dataset.warnings)
    report.extras["skipped"] = dataset.warnings[:MAX_LISTED_SKIPS]
    report.extras["classes"] = [dataset.class_names[c] for c in np.unique(dataset.labels)]
    return report, genuine, impostor


def write_threshold(model_path: str | os.PathLike[str], threshold: float, far: float,
                    tar: float, data: str, impostor_pairs: int,
                    classes: Sequence[str] | None = None) -> None:
    """Store a calibrated threshold in the model's metadata; ``verify`` then uses it.

    ``classes``: the classes of ``data`` it was calibrated on, when not all of them.
    """
    from siamese_edge.model_info import METADATA_KEY
    from siamese_edge.onnx_metadata import write_metadata_entry
    from siamese_edge.runtime.model_file import read_model_info

    info = read_model_info(model_path)
    calibration = {"far": far, "tar": tar, "data": data, "impostor_pairs": impostor_pairs}
    where = data
    if classes is not None:
        calibration["classes"] = list(classes)
        where = f"{data} (classes {','.join(classes)})"
    updated = info.with_threshold(threshold, f"FAR {far:g} on {where}", calibration)
    write_metadata_entry(model_path, METADATA_KEY, updated.to_json())
