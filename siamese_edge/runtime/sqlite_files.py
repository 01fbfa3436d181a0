"""What SQLite says about a gallery file, in the gallery's terms.

The file checks and URI a gallery opens with, and the one-line :class:`GalleryError` that
replaces an ``sqlite3.Error`` (read-only file or storage, a lock held too long, a damaged
page, a full disk), so that no SQLite traceback reaches the user.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any, Callable

from siamese_edge.errors import GalleryError

#: how long a write waits for another process's write lock before giving up
BUSY_TIMEOUT_S = 30.0
SQLITE_HEADER = b"SQLite format 3\x00"
# primary SQLite result codes (https://www.sqlite.org/rescode.html)
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_CORRUPT, SQLITE_FULL, \
    SQLITE_CANTOPEN, SQLITE_NOTADB = 5, 6, 8, 11, 13, 14, 26
_CODES_BY_MESSAGE = {"readonly": SQLITE_READONLY, "locked": SQLITE_BUSY,
                     "malformed": SQLITE_CORRUPT, "not a database": SQLITE_NOTADB,
                     "disk is full": SQLITE_FULL}


def sqlite_errors_as_gallery_errors(method: Callable) -> Callable:
    """Make a gallery method raise :class:`GalleryError` (naming the file and the
    cause) instead of the ``sqlite3.Error`` a read-only, locked or damaged file raises."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise gallery_error(self.path, exc) from None

    return guarded


def file_uri(path: Path, mode: str) -> str:
    """An SQLite URI for ``path``: escaped, so that '?', '#' or '%' in a file name are part of
    the name instead of starting a query or fragment, or being decoded. ``mode`` is ``ro``,
    ``rw`` or ``rwc``, optionally followed by more parameters (``ro&immutable=1``)."""
    return f"{path.resolve().as_uri()}?mode={mode}"


def check_is_sqlite(path: Path) -> None:
    """Refuse, without writing, a file that is not an SQLite database."""
    if path.is_dir():
        raise GalleryError(f"{path}: is a directory, not a gallery file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise GalleryError(f"{path}: cannot read ({exc.strerror})") from None
    if header and header != SQLITE_HEADER:  # empty: being created, or an empty database
        raise GalleryError(f"{path}: not a gallery (not an SQLite file)")


def primary_code(exc: sqlite3.Error) -> int:
    """The primary result code of ``exc`` (from its message before Python 3.11)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    return next((c for words, c in _CODES_BY_MESSAGE.items() if words in str(exc)), 0)


def refused_as_read_only(exc: sqlite3.Error) -> bool:
    """Whether SQLite could not open or read a file for want of write permission."""
    return primary_code(exc) in (SQLITE_READONLY, SQLITE_CANTOPEN)


def read_only_error(path: Path) -> GalleryError:
    return GalleryError(f"{path}: the gallery is read-only (no write permission on the file "
                        f"or its folder)")


def gallery_error(path: Path, exc: sqlite3.Error) -> GalleryError:
    """A one-line error for an SQLite failure on the gallery at ``path``."""
    code = primary_code(exc)
    text = str(exc)
    if code == SQLITE_READONLY:
        return read_only_error(path)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return GalleryError(f"{path}: the gallery is locked by another process (waited "
                            f"{BUSY_TIMEOUT_S:g} s); try again when it is done")
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return GalleryError(f"{path}: not a usable gallery, the file is corrupt ({text})")
    if code == SQLITE_FULL:
        return GalleryError(f"{path}: the disk is full; the gallery is unchanged")
    return GalleryError(f"{path}: gallery error ({text})")
