"""The enrolled gallery: identities and their templates in one embedded SQLite file.

A gallery is bound to the model that made its templates (its fingerprint, embedding size and
preprocessing are recorded at creation); opening it with another model is refused, because
embeddings of two models are not comparable. Every enrolment is one transaction, the file is
in WAL mode, and a file that is not a gallery (or a newer schema) is refused untouched.

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)        -- schema_version, model_fingerprint, ...
    identities(id, name UNIQUE, created, metadata JSON)
    templates(id, identity_id -> identities.id, embedding BLOB float32, source, created, quality)
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siamese_edge.errors import GalleryError, InvalidInputError, ModelMismatchError, \
    UnknownIdentityError
from siamese_edge.model_info import ModelInfo

SCHEMA_VERSION = 1
MAX_NAME_LENGTH = 200
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    source TEXT,
    created REAL NOT NULL,
    quality REAL
);
CREATE INDEX templates_by_identity ON templates(identity_id);
"""


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


def validate_name(name: str) -> str:
    """An identity name: non-empty, printable, no path separators, at most 200 characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("identity name is empty")
    name = unicodedata.normalize("NFC", name.strip())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"identity name longer than {MAX_NAME_LENGTH} characters")
    if any(c in "/\\" for c in name):
        raise InvalidInputError(f"identity name {name!r} contains a path separator")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidInputError(f"identity name {name!r} contains control characters")
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
        self._matrix: GalleryMatrix | None = None

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], model: ModelInfo, create: bool = True,
             read_only: bool = False) -> Gallery:
        """Open (or create) the gallery at ``path`` for ``model``.

        Raises:
            GalleryError: not a gallery, corrupt, newer schema, or missing with create=False.
            ModelMismatchError: the gallery was made with another model.
        """
        path = Path(path)
        exists = path.exists()
        if exists:
            _check_is_sqlite(path)
        elif not create or read_only:
            raise GalleryError(f"{path}: no such gallery (enroll identities first)")
        try:
            if read_only:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0,
                                     isolation_level=None)
            else:
                db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
            db.execute("PRAGMA foreign_keys = ON")
            gallery = cls(db, path, read_only)
            if exists:
                gallery._check_schema_and_model(model)
            else:
                gallery._create(model)
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{path}: not a usable gallery ({exc})") from None
        return gallery

    def _create(self, model: ModelInfo) -> None:
        self._db.execute("PRAGMA journal_mode = WAL")
        pre = model.preprocessing
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "model_fingerprint": model.fingerprint,
            "model_name": model.name,
            "embedding_dim": str(model.embedding_dim),
            "preprocessing": json.dumps({"height": pre.height, "width": pre.width,
                                         "channels": pre.channels, "mean": list(pre.mean),
                                         "std": list(pre.std)}),
            "created": str(time.time()),
        }
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        self.meta = meta

    def _check_schema_and_model(self, model: ModelInfo) -> None:
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            raise GalleryError(f"{self.path}: an SQLite file, but not a siamese-edge "
                               f"gallery") from None
        version = int(meta.get("schema_version", "0") or 0)
        if version < 1:
            raise GalleryError(f"{self.path}: not a siamese-edge gallery")
        if version > SCHEMA_VERSION:
            raise GalleryError(f"{self.path}: gallery schema {version} is newer than this "
                               f"siamese-edge supports ({SCHEMA_VERSION}); upgrade siamese-edge")
        theirs = meta.get("model_fingerprint", "")
        if theirs != model.fingerprint:
            raise ModelMismatchError(
                f"{self.path} was enrolled with model {theirs[:23]}… "
                f"({meta.get('model_name', '?')}), not {model.fingerprint[:23]}… "
                f"({model.name}); use that model or re-enroll")
        self.meta = meta

    # -- context management -----------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self._db)

    # -- writing --------------------------------------------------------------------------
    def enroll(self, name: str, embeddings: np.ndarray, sources: list[str] | None = None,
               metadata: dict[str, Any] | None = None) -> list[int]:
        """Add templates to ``name`` (created if new) in one transaction; returns their ids.

        Raises:
            InvalidInputError: bad name, wrong embedding size, NaN/inf values, zero vectors.
        """
        if self.read_only:
            raise GalleryError(f"{self.path}: opened read-only")
        name = validate_name(name)
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim == 1:
            embeddings = embeddings[None, :]
        dim = int(self.meta_value("embedding_dim"))
        if embeddings.ndim != 2 or embeddings.shape[1] != dim or len(embeddings) == 0:
            raise InvalidInputError(f"expected embeddings of shape (N, {dim}), got "
                                    f"{embeddings.shape}")
        if not np.all(np.isfinite(embeddings)):
            raise InvalidInputError("embeddings contain NaN or inf; refusing to store them")
        norms = np.linalg.norm(embeddings, axis=1)
        if np.any(norms < 1e-6):
            raise InvalidInputError("an embedding is all zeros; refusing to store it")
        embeddings = embeddings / norms[:, None]
        sources = list(sources) if sources is not None else [None] * len(embeddings)
        if len(sources) != len(embeddings):
            raise InvalidInputError("one source per embedding expected")
        now = time.time()
        with self._transaction():
            row = self._db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                cursor = self._db.execute(
                    "INSERT INTO identities (name, created, metadata) VALUES (?, ?, ?)",
                    (name, now, json.dumps(metadata or {})))
                identity_id = cursor.lastrowid
            else:
                identity_id = row[0]
            ids = []
            for vector, source in zip(embeddings, sources):
                cursor = self._db.execute(
                    "INSERT INTO templates (identity_id, embedding, source, created) "
                    "VALUES (?, ?, ?, ?)", (identity_id, vector.astype("<f4").tobytes(),
                                            source, now))
                ids.append(int(cursor.lastrowid))
        self._matrix = None
        return ids

    def remove(self, name: str) -> int:
        """Remove an identity and its templates; returns how many templates went."""
        if self.read_only:
            raise GalleryError(f"{self.path}: opened read-only")
        with self._transaction():
            row = self._db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"no identity named {name!r} in {self.path}")
            count = self._db.execute("SELECT COUNT(*) FROM templates WHERE identity_id = ?",
                                     (row[0],)).fetchone()[0]
            self._db.execute("DELETE FROM identities WHERE id = ?", (row[0],))
        self._matrix = None
        return int(count)

    # -- reading --------------------------------------------------------------------------
    def meta_value(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise GalleryError(f"{self.path}: gallery metadata lacks {key!r}")
        return row[0]

    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM identities ORDER BY name")]

    def counts(self) -> dict[str, int]:
        """Templates per identity."""
        rows = self._db.execute(
            "SELECT i.name, COUNT(t.id) FROM identities i LEFT JOIN templates t "
            "ON t.identity_id = i.id GROUP BY i.id ORDER BY i.name")
        return {name: int(n) for name, n in rows}

    def __contains__(self, name: object) -> bool:
        return self._db.execute("SELECT 1 FROM identities WHERE name = ?",
                                (name,)).fetchone() is not None

    def matrix(self) -> GalleryMatrix:
        """All templates as one contiguous float32 matrix (loaded once, cached)."""
        if self._matrix is None:
            dim = int(self.meta_value("embedding_dim"))
            rows = self._db.execute(
                "SELECT i.name, t.embedding FROM templates t JOIN identities i "
                "ON t.identity_id = i.id ORDER BY i.name, t.id").fetchall()
            embeddings = np.empty((len(rows), dim), np.float32)
            owner = np.empty(len(rows), np.int64)
            names: list[str] = []
            starts: list[int] = []
            for i, (name, blob) in enumerate(rows):
                if len(blob) != 4 * dim:
                    raise GalleryError(f"{self.path}: a template of {name!r} is corrupt")
                embeddings[i] = np.frombuffer(blob, "<f4")
                if not names or names[-1] != name:
                    names.append(name)
                    starts.append(i)
                owner[i] = len(names) - 1
            if not np.all(np.isfinite(embeddings)):
                raise GalleryError(f"{self.path}: gallery holds non-finite templates")
            self._matrix = GalleryMatrix(embeddings, owner, names, np.asarray(starts, np.int64))
        return self._matrix


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _check_is_sqlite(path: Path) -> None:
    """Refuse, without writing, a file that is not an SQLite database."""
    if path.is_dir():
        raise GalleryError(f"{path}: is a directory, not a gallery file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise GalleryError(f"{path}: cannot read ({exc.strerror})") from None
    if header != _SQLITE_HEADER:
        raise GalleryError(f"{path}: not a gallery (not an SQLite file)")
