"""Exceptions from torch as one line of text, for the one-line errors the CLI shows."""

from __future__ import annotations

import pickle
import re

_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")
#: where torch's weights-only refusal names its cause; the lines before advise loading the
#: file unsafely, which this project never does
_WEIGHTS_ONLY_CAUSE = "WeightsUnpickler error:"


def describe(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` on one line, at most about ``limit`` characters. torch's messages
    span lines: a state_dict mismatch opens with "Error(s) in loading state_dict for ..."
    and names each mismatching tensor on a line of its own."""
    lines = [_ESCAPES.sub("", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    if isinstance(exc, pickle.UnpicklingError):
        for i, line in enumerate(lines):
            if _WEIGHTS_ONLY_CAUSE in line:
                cause = line.split(_WEIGHTS_ONLY_CAUSE, 1)[1].strip()
                if not cause and i + 1 < len(lines):
                    cause = lines[i + 1]
                lines = [f"weights-only loading refused it: {cause.split('. Please')[0]}"]
                break
    if len(lines) > 1 and lines[0].endswith(":"):  # a heading: what follows is the cause
        lines = lines[1:]
    text = " ".join(lines)
    if len(text) > limit:
        text = text[:limit - 3].rstrip() + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
