"""Writing a file whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replaced_on_success(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary handle on ``path.partial`` that becomes exactly ``path`` (no suffix added, as
    ``np.savez`` would to a bare name) once the block ends without error. A failure leaves
    neither a half-written ``path`` nor the partial file."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
