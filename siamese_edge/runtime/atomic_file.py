"""Writing a file whole or not at all, and never over one it was made from."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from siamese_edge.errors import InvalidInputError

#: how an ``.npz`` (a zip archive) starts: a file's local header, or an empty archive's end
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")


@contextmanager
def replaced_on_success(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary handle on a new temporary file beside ``path`` that becomes exactly
    ``path`` (no suffix added, as ``np.savez`` would to a bare name) once the block ends
    without error. A failure leaves neither a half-written ``path`` nor the temporary file.

    The temporary file gets a fresh random name, created exclusively (``mkstemp``): a fixed
    name such as ``path.partial`` could be a symlink someone left, and writing through it
    destroyed the file it pointed at (a gallery). It gets the permissions a new file would.
    """
    path = Path(path)
    # a short prefix: a name near the file system's limit (255 bytes) must still fit
    fd, name = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".partial",
                                dir=path.parent)
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(partial, new_file_mode())  # mkstemp makes it 0600
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def new_file_mode() -> int:
    """The permissions a newly created file gets here (0666 less the umask): what a file
    made private by ``mkstemp`` is set to before it replaces an output."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def create_folder(folder: str | os.PathLike[str]) -> str | None:
    """Make ``folder`` and its parents; None when it exists now, else why it cannot
    (mkdir says "File exists" of a file where a folder is needed: said plainly)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
        return reason or str(exc)
    return None


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when writing ``a`` would write ``b``: the same path once resolved, or (where both
    exist) the same file through another link. Outputs check it against their inputs."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def starts_like_an_archive(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts as a zip file (an ``.npz``) does; False when unreadable."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in _ZIP_STARTS
    except OSError:
        return False


def check_replaceable_archive(out: str | os.PathLike[str], overwrite: bool = True) -> None:
    """Refuse ``out`` when it exists and is not an ``.npz`` archive (nor empty): a model, a
    gallery or an image there would be destroyed by an archive written over it; and, unless
    ``overwrite``, any existing file (a backup replaced unasked is a backup lost). Raises
    InvalidInputError; an unreadable file is left for the write to report."""
    out = Path(out)
    if not out.exists():
        return
    if out.is_dir():
        raise InvalidInputError(f"{out}: is a directory; name the output file")
    try:
        with open(out, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return
    if head and head not in _ZIP_STARTS:
        raise InvalidInputError(f"{out}: exists and is not an .npz archive (a model, a "
                                f"gallery, an image?); writing there would destroy it, "
                                f"choose another file")
    if not overwrite:
        raise InvalidInputError(f"{out} exists; --overwrite replaces it")
