"""Keep native libraries' prints off stdout, which ``--json`` reserves for its one document.

TensorRT-RTX prints builder warnings (``WARNING: in op ...``) from C++ straight to file
descriptor 1, past ``sys.stdout`` and any Python-level redirection; only moving fd 1 itself
keeps them out of the JSON. They are still shown, on stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


def _flush_c_stdio() -> None:
    """Flush the C library's stdout buffer, so nothing written under the redirection is
    emitted on the real stdout after it is restored."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # noqa: BLE001 - no libc to flush (Windows): nothing buffered there
        pass


@contextlib.contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Point fd 1 at stderr for the block (restored afterwards, also on exceptions)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = os.dup(1)
    except OSError:  # fd 1 is closed: there is no stdout to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
