"""The enrolled gallery: identities and their templates in one embedded SQLite file.

A gallery is bound to the model that made its templates (its fingerprint, embedding size and
preprocessing are recorded at creation); opening it with another model is refused, because
embeddings of two models are not comparable. Every enrolment is one transaction, the file is
in WAL mode, and a file that is not a gallery (or a newer schema) is refused untouched.

Schema (version 2)::

    meta(key TEXT PRIMARY KEY, value TEXT)        -- schema_version, model_fingerprint,
                                                  -- template_dtype, revision, ...
    identities(id, name UNIQUE, created, metadata JSON)
    templates(id AUTOINCREMENT, identity_id -> identities.id, embedding BLOB, source,
              created, quality)

``embedding`` is little-endian float32 (default) or float16 (``template_dtype``), told apart
by its length. Version 2 differs from 1 by template ids that are never reused (AUTOINCREMENT)
and by ``meta.revision``, bumped by every change other than an append, so that an open
gallery can bring its in-memory :class:`~siamese_edge.runtime.search_index.SearchIndex` up
to date incrementally when other processes write. Older files are migrated on open
(:data:`MIGRATIONS`, one transaction each); newer ones are refused untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from siamese_edge.errors import GalleryError, InvalidInputError, ModelMismatchError, \
    UnknownIdentityError
from siamese_edge.model_info import ModelInfo
from siamese_edge.runtime import sqlite_files
from siamese_edge.runtime.search_index import SearchIndex
from siamese_edge.runtime.sqlite_files import (
    SQLITE_BUSY, check_is_sqlite, file_uri, gallery_error, primary_code,
    read_only_error, refused_as_read_only, sqlite_errors_as_gallery_errors,
)

SCHEMA_VERSION = 2
TEMPLATE_DTYPES = ("float32", "float16")
#: what ``enroll`` does when the identity already exists: add templates, or refuse.
DUPLICATE_POLICIES = ("add", "refuse")
MAX_NAME_LENGTH = 200
#: template times are UNIX seconds; past this (the year 5138) a value is damage, not a date
MAX_TEMPLATE_TIME = 1e11
#: an embedding this close to unit length is stored unchanged (float32 normalisation leaves
#: norms within ~1e-7 of 1); others are normalised
UNIT_NORM_TOLERANCE = 1e-5

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    source TEXT,
    created REAL NOT NULL,
    quality REAL
);
CREATE INDEX templates_by_identity ON templates(identity_id);
"""


class DuplicateIdentityError(GalleryError):
    """Enrolment refused: the identity exists and the policy is ``refuse``."""


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Template ids never reused (AUTOINCREMENT); ``revision`` and ``template_dtype`` in meta."""
    db.execute("""CREATE TABLE templates_v2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
        embedding BLOB NOT NULL,
        source TEXT,
        created REAL NOT NULL,
        quality REAL)""")
    db.execute("INSERT INTO templates_v2 SELECT id, identity_id, embedding, source, created, "
               "quality FROM templates")
    db.execute("DROP TABLE templates")
    db.execute("ALTER TABLE templates_v2 RENAME TO templates")
    db.execute("CREATE INDEX templates_by_identity ON templates(identity_id)")
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                   [("revision", "0"), ("template_dtype", "float32")])


#: ``MIGRATIONS[v]`` turns schema ``v`` into ``v + 1`` inside one transaction.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2}


@dataclass(frozen=True)
class TemplateRecord:
    """One stored template, without its vector."""

    id: int
    identity: str
    source: str | None
    created: float
    quality: float | None

    def to_dict(self) -> dict:
        return {"id": self.id, "identity": self.identity, "source": self.source,
                "created": self.created, "quality": self.quality}


@dataclass(frozen=True)
class IdentityRecord:
    name: str
    created: float
    metadata: dict[str, Any]
    templates: list[TemplateRecord]

    def to_dict(self) -> dict:
        return {"name": self.name, "created": self.created, "metadata": self.metadata,
                "templates": [t.to_dict() for t in self.templates]}


@dataclass(frozen=True)
class GalleryMatrix:
    """All templates as one contiguous matrix, ordered by identity.

    ``embeddings[i]`` belongs to ``names[owner[i]]``; ``starts`` holds the first row of each
    identity (rows of one identity are contiguous), for per-identity reductions.
    """

    embeddings: np.ndarray  # float32 (T, D)
    owner: np.ndarray  # int64 (T,)
    names: list[str]
    starts: np.ndarray  # int64 (len(names),)


def normalize_name(name: str) -> str:
    """``name`` as the gallery stores it (NFC, no surrounding blanks); look names up by this,
    so that 'café' typed decomposed, or ' bob', finds what was enrolled."""
    return unicodedata.normalize("NFC", name.strip())


#: the answer for a probe no identity matches; no identity may be called that (in any case)
UNKNOWN = "unknown"


def is_reserved(name: str) -> bool:
    """``unknown`` in any case: the answer for nobody, so never a new identity's name."""
    return name.casefold() == UNKNOWN


def _reserved(name: str, stored: bool = False) -> InvalidInputError:
    """The refusal of the reserved ``name``; ``stored``: an identity an earlier version
    stored under it exists, and renaming it is the way out."""
    hint = (f"; rename the identity an earlier version stored under it: siamese-edge gallery "
            f"rename {name} NEW_NAME" if stored else "")
    return InvalidInputError(f"identity name {name!r} is reserved: it is the answer for a "
                             f"probe that matches nobody{hint}")


def reserved_warnings(names) -> list[str]:
    """What import and reembed say for each identity they carry over under the reserved
    name (stored by an earlier version)."""
    return [f"identity {name!r} kept under a name now reserved: verify answers "
            f"'{UNKNOWN}' for a match with it and for nobody alike; rename it: siamese-edge "
            f"gallery rename {name} NEW_NAME" for name in names if is_reserved(name)]


def validate_name(name: str, reserved_ok: bool = False) -> str:
    """An identity name: non-empty, printable, no path separators, at most 200 characters,
    and not ``unknown``, which would make the answer ``unknown`` mean two things (unless
    ``reserved_ok``: an identity stored under it before it was reserved keeps its name
    through an export, import or reembed)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("identity name is empty")
    name = normalize_name(name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"identity name longer than {MAX_NAME_LENGTH} characters")
    if any(c in "/\\" for c in name):
        raise InvalidInputError(f"identity name {name!r} contains a path separator")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidInputError(f"identity name {name!r} contains control characters")
    if is_reserved(name) and not reserved_ok:
        raise _reserved(name)
    return name


class Gallery:
    """An SQLite gallery bound to one model. Use :meth:`open`; close it (or use ``with``).

    Example:
        >>> with Gallery.open("gallery.sqlite", model_info) as gallery:   # doctest: +SKIP
        ...     gallery.enroll("alice", embeddings, sources=["a1.png", "a2.png"])
    """

    def __init__(self, connection: sqlite3.Connection, path: Path, read_only: bool) -> None:
        self._db = connection
        self.path = path
        self.read_only = read_only
        self.meta: dict[str, str] = {}
        self._matrix: GalleryMatrix | None = None
        self._matrix_version: int | None = None  # PRAGMA data_version it was read at
        self._index: SearchIndex | None = None
        self._label_names: dict[int, str] = {}
        self._seen_revision = ""
        self._seen_template = 0
        self._data_version = -1
        self._dirty = False
        self._read_only_error = GalleryError(f"{path}: opened read-only")

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], model: ModelInfo | None, create: bool = True,
             read_only: bool = False, template_dtype: str = "float32") -> Gallery:
        """Open (or create) the gallery at ``path`` for ``model``.

        Args:
            model: the model whose embeddings go in and out; ``None`` to manage records
                only (list, rename, remove, export): no model check, no creation.
            template_dtype: ``float32`` or ``float16``; how a new gallery stores templates.

        Raises:
            GalleryError: not a gallery, corrupt, newer schema, or missing with create=False.
            ModelMismatchError: the gallery was made with another model.
        """
        if template_dtype not in TEMPLATE_DTYPES:
            raise InvalidInputError(f"template dtype {template_dtype!r}: use one of "
                                    f"{', '.join(TEMPLATE_DTYPES)}")
        path = Path(path)
        exists = path.exists()
        may_create = create and not read_only and model is not None
        if exists:
            check_is_sqlite(path)
        elif not may_create:
            raise GalleryError(f"{path}: no such gallery (enroll identities first)")
        mode = "ro" if read_only else "rwc" if may_create else "rw"
        try:
            return cls._connect(path, mode, model, template_dtype, create=may_create)
        except sqlite3.Error as exc:
            if not exists or not refused_as_read_only(exc):
                raise gallery_error(path, exc) from None
        return cls._open_read_only_storage(path, model, try_read_only=mode != "ro")

    @classmethod
    def _open_read_only_storage(cls, path: Path, model: ModelInfo | None,
                                try_read_only: bool) -> Gallery:
        """Open a read-only file, or one on read-only storage where SQLite cannot create the
        -shm file WAL readers share: without that file if need be (immutable: nobody writes),
        unless committed changes wait in the -wal file, which an immutable reader would miss.
        """
        if try_read_only:
            try:
                return cls._connect(path, "ro", model, "float32", writable=False)
            except sqlite3.Error as exc:
                if not refused_as_read_only(exc):
                    raise gallery_error(path, exc) from None
        wal = Path(f"{path}-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            raise GalleryError(f"{path}: on read-only storage with changes still in its -wal "
                               f"file; open it once where it can be written")
        try:
            return cls._connect(path, "ro&immutable=1", model, "float32", writable=False)
        except sqlite3.Error as exc:
            raise gallery_error(path, exc) from None

    @classmethod
    def _connect(cls, path: Path, mode: str, model: ModelInfo | None, template_dtype: str,
                 create: bool = False, writable: bool = True) -> Gallery:
        """Connect in URI ``mode``; ``writable=False``: the file or its storage is read-only,
        so read-only ``mode`` is all there is."""
        db = sqlite3.connect(file_uri(path, mode), uri=True, timeout=sqlite_files.BUSY_TIMEOUT_S,
                             isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            gallery = cls(db, path, read_only=mode.startswith("ro"))
            if not writable:
                gallery._read_only_error = read_only_error(path)
            if create:
                gallery._create_if_empty(model, template_dtype)
            gallery._check_schema_and_model(model)
        except BaseException:
            db.close()
            raise
        return gallery

    def _is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is None

    def _create_if_empty(self, model: ModelInfo, template_dtype: str) -> None:
        """Give a new (or empty) file the schema. Processes that race to create one gallery
        take turns at the write lock, and those that come later find the schema made."""
        if not self._is_empty():
            return
        self._use_wal()
        pre = model.preprocessing
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "model_fingerprint": model.fingerprint,
            "model_name": model.name,
            "embedding_dim": str(model.embedding_dim),
            "preprocessing": json.dumps({"height": pre.height, "width": pre.width,
                                         "channels": pre.channels, "mean": list(pre.mean),
                                         "std": list(pre.std)}),
            "template_dtype": template_dtype,
            "revision": "0",
            "created": str(time.time()),
        }
        with self._transaction():
            if not self._is_empty():
                return
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())

    def _use_wal(self) -> None:
        """Switch to WAL. That takes an exclusive lock, and SQLite answers "busy" at once,
        without waiting, when another process switching at the same time holds the lock."""
        deadline = time.monotonic() + sqlite_files.BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if primary_code(exc) != SQLITE_BUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _read_meta(self) -> dict[str, str]:
        try:
            return dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            if self._is_empty():
                raise GalleryError(f"{self.path}: an empty file, not a gallery (enroll "
                                   f"identities first)") from None
            raise GalleryError(f"{self.path}: an SQLite file, but not a siamese-edge "
                               f"gallery") from None

    def _check_schema_and_model(self, model: ModelInfo | None) -> None:
        meta = self._read_meta()
        try:
            version = int(meta.get("schema_version", "0") or 0)
        except ValueError:
            version = 0
        if version < 1:
            raise GalleryError(f"{self.path}: not a siamese-edge gallery")
        if version > SCHEMA_VERSION:
            raise GalleryError(f"{self.path}: gallery schema {version} is newer than this "
                               f"siamese-edge supports ({SCHEMA_VERSION}); upgrade siamese-edge")
        theirs = meta.get("model_fingerprint", "")
        if model is not None and theirs != model.fingerprint:
            raise ModelMismatchError(
                f"{self.path} was enrolled with model {theirs[:23]}… "
                f"({meta.get('model_name', '?')}), not {model.fingerprint[:23]}… "
                f"({model.name}); use that model, or 'siamese-edge gallery reembed'")
        if version < SCHEMA_VERSION and not self.read_only:
            self._migrate(version)
            meta = self._read_meta()
        dim = meta.get("embedding_dim", "")
        if not dim.isdecimal() or int(dim) < 1 or \
                meta.get("template_dtype", "float32") not in TEMPLATE_DTYPES or \
                not meta.get("revision", "0").isdecimal() or \
                not isinstance(_json_or_none(meta.get("preprocessing", "{}")), dict):
            raise GalleryError(f"{self.path}: damaged gallery (its recorded embedding size, "
                               f"template type, revision or preprocessing is unreadable)")
        self.meta = meta

    def _migrate(self, version: int) -> None:
        """Run every migration from ``version`` up, each in its own transaction."""
        while version < SCHEMA_VERSION:
            with self._transaction():
                # another process may have migrated since ``version`` was read: read it again
                # under the write lock, or a migration would run twice (resetting the
                # revision, reusing template ids)
                current = int(self._db.execute("SELECT value FROM meta WHERE key = "
                                               "'schema_version'").fetchone()[0])
                if current > version:
                    version = current
                    continue
                MIGRATIONS[version](self._db)
                version += 1
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                 (str(version),))

    @property
    def schema_version(self) -> int:
        return int(self.meta["schema_version"])

    @property
    def model_fingerprint(self) -> str:
        return self.meta.get("model_fingerprint", "")

    @property
    def embedding_dim(self) -> int:
        return int(self.meta["embedding_dim"])

    @property
    def template_dtype(self) -> str:
        return self.meta.get("template_dtype", "float32")

    # -- context management -----------------------------------------------------------------
    @sqlite_errors_as_gallery_errors
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self._db)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the file, whatever other processes commit meanwhile
        (a read transaction; in WAL mode it blocks no writer). ``gallery export`` reads
        through one, so an export is never half before and half after someone's change."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            if self._db.in_transaction:
                self._db.execute("COMMIT")

    def require_writable(self) -> None:
        """Raise GalleryError when this gallery cannot be written (opened read-only, or a
        read-only file)."""
        if self.read_only:
            raise self._read_only_error

    def _bump_revision(self) -> str:
        """Within a write transaction: the revision before this change (then bump it)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        before = row[0] if row else "0"
        if not before.isdecimal():
            raise GalleryError(f"{self.path}: damaged gallery (revision {before!r})")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('revision', ?)",
                         (str(int(before) + 1),))
        return before

    # -- writing --------------------------------------------------------------------------
    @sqlite_errors_as_gallery_errors
    def enroll(self, name: str, embeddings: np.ndarray, sources: Sequence[str | None] | None = None,
               metadata: dict[str, Any] | None = None, *,
               qualities: Sequence[float | None] | None = None,
               created: Sequence[float] | None = None,
               on_duplicate: str = "add", identity_created: float | None = None,
               allow_empty: bool = False, reserved_ok: bool = False) -> list[int]:
        """Add templates to ``name`` (created if new) in one transaction; returns their ids.

        Args:
            sources: per template, where it came from (an image path: ``reembed`` reads it).
            metadata: free-form JSON for a new identity (an existing one keeps its own).
            qualities: per template, an optional quality score.
            created: per template, a UNIX time (default now; import keeps the original).
            identity_created: a new identity's UNIX time (default now; import keeps it).
            on_duplicate: ``add`` templates to an existing identity, or ``refuse``.
            allow_empty: accept no embeddings at all: the identity alone (import restores
                one whose templates were all removed, with its metadata).
            reserved_ok: accept the reserved name ``unknown`` (import and reembed carry over
                an identity an earlier version stored under it).

        Raises:
            InvalidInputError: bad name, wrong embedding size, NaN/inf values, zero vectors.
            DuplicateIdentityError: ``name`` exists and ``on_duplicate`` is ``refuse``.
        """
        self.require_writable()
        if on_duplicate not in DUPLICATE_POLICIES:
            raise InvalidInputError(f"duplicate policy {on_duplicate!r}: use one of "
                                    f"{', '.join(DUPLICATE_POLICIES)}")
        stored = normalize_name(name) if isinstance(name, str) else name
        if not reserved_ok and isinstance(stored, str) and is_reserved(stored) \
                and stored in self:  # stored by an earlier version: say how to move it
            raise _reserved(stored, stored=True)
        name = validate_name(name, reserved_ok)
        embeddings = self._check_embeddings(embeddings, allow_empty)
        n = len(embeddings)
        sources = list(sources) if sources is not None else [None] * n
        qualities = list(qualities) if qualities is not None else [None] * n
        now = time.time()
        created = [float(t) for t in created] if created is not None else [now] * n
        if not len(sources) == len(qualities) == len(created) == n:
            raise InvalidInputError("one source, quality and time per embedding expected")
        for quality in qualities:
            if quality is not None and not np.isfinite(quality):
                raise InvalidInputError("a template quality is NaN or inf")
        identity_time = now if identity_created is None else float(identity_created)
        if not all(0 <= when < MAX_TEMPLATE_TIME for when in [*created, identity_time]):
            raise InvalidInputError("a template or identity time is not a UNIX time (NaN, "
                                    "negative or beyond the year 5000)")
        metadata_json = _metadata_json(metadata)
        dtype = "<f2" if self.template_dtype == "float16" else "<f4"
        with self._transaction():
            row = self._db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                cursor = self._db.execute(
                    "INSERT INTO identities (name, created, metadata) VALUES (?, ?, ?)",
                    (name, identity_time, metadata_json))
                identity_id = cursor.lastrowid
            elif on_duplicate == "refuse":
                raise DuplicateIdentityError(f"{name!r} is already enrolled in {self.path} "
                                             f"(duplicate policy: refuse)")
            else:
                identity_id = row[0]
            ids = []
            for vector, source, quality, when in zip(embeddings, sources, qualities, created):
                cursor = self._db.execute(
                    "INSERT INTO templates (identity_id, embedding, source, created, quality) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (identity_id, vector.astype(dtype).tobytes(),
                     None if source is None else str(source), when,
                     None if quality is None else float(quality)))
                ids.append(int(cursor.lastrowid))
        self._matrix = None
        self._dirty = True
        return ids

    def _check_embeddings(self, embeddings: np.ndarray, allow_empty: bool = False) -> np.ndarray:
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim == 1:
            embeddings = embeddings[None, :]
        dim = self.embedding_dim
        if allow_empty and embeddings.size == 0:
            return np.empty((0, dim), np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != dim or len(embeddings) == 0:
            raise InvalidInputError(f"expected embeddings of shape (N, {dim}), got "
                                    f"{embeddings.shape}")
        if not np.all(np.isfinite(embeddings)):
            raise InvalidInputError("embeddings contain NaN or inf; refusing to store them")
        norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
        if np.any(norms < 1e-6):
            raise InvalidInputError("an embedding is all zeros; refusing to store it")
        # Rows already of unit length (an embedder's output) are stored as they are: dividing
        # again moves some values by an ulp, and the template would then score a probe a
        # few ulps away from what `compare` gives for the same two images.
        unit = np.abs(norms - 1.0) <= UNIT_NORM_TOLERANCE
        if np.all(unit):
            return embeddings
        return np.where(unit[:, None], embeddings,
                        embeddings / norms[:, None]).astype(np.float32)

    def _identity_id(self, name: str) -> int:
        name = normalize_name(name)
        row = self._db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
        return int(row[0])

    @sqlite_errors_as_gallery_errors
    def remove(self, name: str) -> int:
        """Remove an identity and its templates; returns how many templates went."""
        self.require_writable()
        with self._transaction():
            identity_id = self._identity_id(name)
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM templates WHERE identity_id = ?", (identity_id,))]
            self._db.execute("DELETE FROM identities WHERE id = ?", (identity_id,))
            revision = self._bump_revision()
        self._after_change(revision, lambda index: index.remove(ids),
                           forget_label=identity_id)
        return len(ids)

    @sqlite_errors_as_gallery_errors
    def remove_template(self, template_id: int, name: str | None = None) -> str:
        """Remove one template (of ``name``, when given); returns its identity's name.

        An identity left without templates stays, with its metadata, until removed.
        """
        self.require_writable()
        if name is not None:
            name = normalize_name(name)
        with self._transaction():
            row = self._db.execute(
                "SELECT i.name FROM templates t JOIN identities i ON t.identity_id = i.id "
                "WHERE t.id = ?", (int(template_id),)).fetchone()
            if row is None or (name is not None and row[0] != name):
                owner = f" of {name!r}" if name is not None else ""
                raise UnknownIdentityError(f"no template {template_id}{owner} in {self.path}")
            self._db.execute("DELETE FROM templates WHERE id = ?", (int(template_id),))
            revision = self._bump_revision()
        self._after_change(revision, lambda index: index.remove([int(template_id)]))
        return row[0]

    @sqlite_errors_as_gallery_errors
    def rename(self, old: str, new: str) -> str:
        """Rename identity ``old`` to ``new`` (which must not exist); returns the new name as
        stored."""
        self.require_writable()
        old, new = normalize_name(old), validate_name(new)
        with self._transaction():
            identity_id = self._identity_id(old)
            if new != old and new in self:
                raise DuplicateIdentityError(f"{new!r} already exists in {self.path}")
            self._db.execute("UPDATE identities SET name = ? WHERE id = ?", (new, identity_id))
            revision = self._bump_revision()
        self._after_change(revision, lambda index: None, rename=(identity_id, new))
        return new

    @sqlite_errors_as_gallery_errors
    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        """Replace the free-form JSON metadata of ``name``."""
        self.require_writable()
        text = _metadata_json(metadata)
        with self._transaction():
            identity_id = self._identity_id(name)
            self._db.execute("UPDATE identities SET metadata = ? WHERE id = ?",
                             (text, identity_id))
            revision = self._bump_revision()
        self._after_change(revision, lambda index: None)

    def _after_change(self, revision_before: str, apply: Callable[[SearchIndex], Any],
                      forget_label: int | None = None,
                      rename: tuple[int, str] | None = None) -> None:
        """Apply our own committed change to the in-memory index, or drop it if stale."""
        self._matrix = None
        self._dirty = True
        if self._index is None:
            return
        if revision_before != self._seen_revision:  # someone else changed it too: reload
            self._index = None
            return
        apply(self._index)
        if forget_label is not None:
            self._label_names.pop(forget_label, None)
        if rename is not None:
            self._label_names[rename[0]] = rename[1]
        self._seen_revision = str(int(revision_before) + 1)

    # -- reading --------------------------------------------------------------------------
    @sqlite_errors_as_gallery_errors
    def meta_value(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise GalleryError(f"{self.path}: gallery metadata lacks {key!r}")
        return row[0]

    @sqlite_errors_as_gallery_errors
    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM identities ORDER BY name")]

    @sqlite_errors_as_gallery_errors
    def counts(self) -> dict[str, int]:
        """Templates per identity."""
        rows = self._db.execute(
            "SELECT i.name, COUNT(t.id) FROM identities i LEFT JOIN templates t "
            "ON t.identity_id = i.id GROUP BY i.id ORDER BY i.name")
        return {name: int(n) for name, n in rows}

    @sqlite_errors_as_gallery_errors
    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self._db.execute("SELECT 1 FROM identities WHERE name = ?",
                                (normalize_name(name),)).fetchone() is not None

    @sqlite_errors_as_gallery_errors
    def templates(self, name: str | None = None) -> list[TemplateRecord]:
        """Template records (of ``name``, or all), ordered by identity then id."""
        query = ("SELECT t.id, i.name, t.source, t.created, t.quality FROM templates t "
                 "JOIN identities i ON t.identity_id = i.id")
        if name is not None:
            name = normalize_name(name)
            self._identity_id(name)
            rows = self._db.execute(query + " WHERE i.name = ? ORDER BY t.id", (name,))
        else:
            rows = self._db.execute(query + " ORDER BY i.name, t.id")
        records = []
        for i, n, s, c, q in rows:
            try:
                records.append(TemplateRecord(int(i), n, s, float(c),
                                              None if q is None else float(q)))
            except (TypeError, ValueError):
                raise GalleryError(f"{self.path}: template {i} is damaged (time {c!r}, "
                                   f"quality {q!r})") from None
        return records

    @sqlite_errors_as_gallery_errors
    def identity(self, name: str) -> IdentityRecord:
        """One identity: its metadata and template records."""
        name = normalize_name(name)
        row = self._db.execute("SELECT name, created, metadata FROM identities WHERE name = ?",
                               (name,)).fetchone()
        if row is None:
            raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
        try:
            created = float(row[1])
        except (TypeError, ValueError):
            raise GalleryError(f"{self.path}: identity {name!r} is damaged (time "
                               f"{row[1]!r})") from None
        return IdentityRecord(row[0], created, _parse_metadata(row[2]), self.templates(name))

    @sqlite_errors_as_gallery_errors
    def embeddings(self, template_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``template_ids`` as float32 ``(N, D)``, in that order."""
        out = np.empty((len(template_ids), self.embedding_dim), np.float32)
        for i, template_id in enumerate(template_ids):
            row = self._db.execute("SELECT embedding FROM templates WHERE id = ?",
                                   (int(template_id),)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"no template {template_id} in {self.path}")
            out[i] = self._decode(row[0], str(template_id))
        return out

    @sqlite_errors_as_gallery_errors
    def stats(self) -> dict[str, Any]:
        """Counts, sizes and the model binding, for ``gallery stats``."""
        counts = self.counts()
        per = list(counts.values())
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"))
                   if p.exists())
        return {"path": str(self.path), "schema_version": self.schema_version,
                "model_fingerprint": self.model_fingerprint,
                "model_name": self.meta.get("model_name", ""),
                "embedding_dim": self.embedding_dim, "template_dtype": self.template_dtype,
                "identities": len(counts), "templates": sum(per),
                "templates_per_identity": {"min": min(per, default=0),
                                           "max": max(per, default=0),
                                           "mean": (sum(per) / len(per)) if per else 0.0},
                "file_bytes": size,
                "index_bytes": sum(per) * self.embedding_dim * 4}

    def _decode(self, blob: bytes, what: str) -> np.ndarray:
        dim = self.embedding_dim
        if len(blob) == 4 * dim:
            vector = np.frombuffer(blob, "<f4")
        elif len(blob) == 2 * dim:
            vector = np.frombuffer(blob, "<f2").astype(np.float32)
        else:
            raise GalleryError(f"{self.path}: template {what} is corrupt "
                               f"({len(blob)} bytes for dimension {dim})")
        if not np.all(np.isfinite(vector)):
            raise GalleryError(f"{self.path}: template {what} holds non-finite values")
        if len(blob) == 2 * dim:  # rounded to float16, no longer unit length: cosines > 1
            norm = np.linalg.norm(vector)
            if norm < 1e-3:
                raise GalleryError(f"{self.path}: template {what} is corrupt (all zeros)")
            vector = vector / norm
        return vector

    @sqlite_errors_as_gallery_errors
    def matrix(self) -> GalleryMatrix:
        """All templates as one contiguous float32 matrix, ordered by identity (cached, and
        rebuilt when this or another process has changed the gallery since)."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if self._matrix is None or version != self._matrix_version:
            self._matrix_version = version
            dim = self.embedding_dim
            rows = self._db.execute(
                "SELECT i.name, t.embedding FROM templates t JOIN identities i "
                "ON t.identity_id = i.id ORDER BY i.name, t.id").fetchall()
            embeddings = np.empty((len(rows), dim), np.float32)
            owner = np.empty(len(rows), np.int64)
            names: list[str] = []
            starts: list[int] = []
            for i, (name, blob) in enumerate(rows):
                embeddings[i] = self._decode(blob, f"of {name!r}")
                if not names or names[-1] != name:
                    names.append(name)
                    starts.append(i)
                owner[i] = len(names) - 1
            self._matrix = GalleryMatrix(embeddings, owner, names, np.asarray(starts, np.int64))
        return self._matrix

    # -- the in-memory search index -------------------------------------------------------
    @sqlite_errors_as_gallery_errors
    def index(self) -> SearchIndex:
        """The templates as a :class:`SearchIndex` (labels are identity keys, see
        :meth:`label_names`): loaded once, then brought up to date incrementally with our
        own and other processes' commits."""
        if self._index is None:
            self._load_index(full=True)
        else:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if self._dirty or version != self._data_version:
                self._load_index(full=False)
        assert self._index is not None
        return self._index

    def label_names(self) -> dict[int, str]:
        """Index label -> identity name (call after :meth:`index`)."""
        return self._label_names

    def _load_index(self, full: bool) -> None:
        self._db.execute("BEGIN")  # one snapshot for the revision, names and templates
        try:
            self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]
            row = self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
            revision = row[0] if row else "0"
            if revision != self._seen_revision:
                full = True
            after = 0 if full else self._seen_template
            rows = self._db.execute("SELECT id, identity_id, embedding FROM templates "
                                    "WHERE id > ? ORDER BY id", (after,)).fetchall()
            names = dict(self._db.execute("SELECT id, name FROM identities").fetchall())
        finally:
            self._db.execute("COMMIT")
        index = SearchIndex(self.embedding_dim) if full or self._index is None else self._index
        if rows:
            vectors = np.empty((len(rows), self.embedding_dim), np.float32)
            for i, (template_id, _, blob) in enumerate(rows):
                vectors[i] = self._decode(blob, str(template_id))
            index.add(vectors, [r[0] for r in rows], [r[1] for r in rows])
            self._seen_template = max(self._seen_template if not full else 0, rows[-1][0])
        elif full:
            self._seen_template = 0
        self._index, self._label_names = index, {int(k): v for k, v in names.items()}
        self._seen_revision = revision
        self._dirty = False


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        """Undo what is left of the transaction, without hiding the error that ended it."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


#: identity metadata nested deeper than this is refused: printing JSON recurses once per
#: level, and Python stops at about 1,000 (metadata stored by older versions at any depth up
#: to this still imports and re-embeds)
MAX_METADATA_DEPTH = 256


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, counted up to ``limit + 1`` (no deeper recursion)."""
    if limit < 0 or not isinstance(value, (dict, list)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(child, limit - 1) for child in children), default=0)


def _metadata_json(metadata: dict[str, Any] | None) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise InvalidInputError("identity metadata must be a JSON object")
    if _depth(metadata, MAX_METADATA_DEPTH) > MAX_METADATA_DEPTH:
        raise InvalidInputError(f"identity metadata is nested deeper than "
                                f"{MAX_METADATA_DEPTH} levels")
    try:
        return json.dumps(metadata, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"identity metadata is not JSON-serialisable ({exc})") from None


def _parse_metadata(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except (json.JSONDecodeError, RecursionError):
        return {"_unparsed": text}  # kept whole: an export carries it on
    return value if isinstance(value, dict) else {"_value": value}
