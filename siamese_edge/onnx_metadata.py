"""Rewriting an ONNX file's metadata without the onnx package (the runtime lacks it).

An ONNX file is one serialized ``ModelProto``; its ``metadata_props`` are the repeated
field 14, each a ``StringStringEntryProto`` (key = field 1, value = field 2). Protobuf lets
top-level fields appear in any order, so replacing one entry is: copy every top-level field
except the old entry, append the new one. The graph bytes are untouched, so the model's
fingerprint (a hash of the graph) does not change.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from siamese_edge.errors import ModelError

_METADATA_FIELD = 14
_OPSET_IMPORT_FIELD = 8  # ModelProto.opset_import: OperatorSetIdProto (domain 1, version 2)
_LENGTH_DELIMITED = 2
_VARINT = 0
#: the domains of ONNX's own operators, whose opset is "the" opset
DEFAULT_DOMAINS = ("", "ai.onnx")


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ModelError("truncated ONNX file")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ModelError("malformed ONNX file (bad varint)")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(data: bytes):
    """Yield ``(field_number, wire_type, start, end, payload_start)`` of top-level fields."""
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        payload = pos
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == _LENGTH_DELIMITED:
            length, payload = _read_varint(data, pos)
            pos = payload + length
        elif wire == 5:
            pos += 4
        else:
            raise ModelError(f"malformed ONNX file (wire type {wire})")
        if pos > len(data):
            raise ModelError("truncated ONNX file")
        yield number, wire, start, pos, payload


def _entry(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    body = b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(len(v)) + v
    return _varint(_METADATA_FIELD << 3 | _LENGTH_DELIMITED) + _varint(len(body)) + body


def _entry_key(data: bytes, payload: int, end: int) -> str | None:
    for number, wire, _, field_end, inner in _fields(data[payload:end]):
        if number == 1 and wire == _LENGTH_DELIMITED:
            return data[payload:end][inner:field_end].decode("utf-8", "replace")
    return None


@contextmanager
def _naming(path: str | os.PathLike[str]) -> Iterator[None]:
    """Parse errors name the file: "truncated ONNX file" alone did not say which."""
    try:
        yield
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """All metadata entries of an ONNX file.

    Raises:
        ModelError: the file is not an ONNX protobuf (the message names it).
    """
    data = Path(path).read_bytes()
    out = {}
    with _naming(path):
        for number, wire, _, end, payload in _fields(data):
            if number == _METADATA_FIELD and wire == _LENGTH_DELIMITED:
                entry = data[payload:end]
                values = {n: entry[p:e].decode("utf-8", "replace")
                          for n, w, _, e, p in _fields(entry) if w == _LENGTH_DELIMITED}
                out[values.get(1, "")] = values.get(2, "")
    return out


def read_opset(path: str | os.PathLike[str]) -> int | None:
    """The model's default-domain opset, read without the onnx package (a Jetson image has
    none), or None when it declares none.

    Raises:
        ModelError: the file is not an ONNX protobuf (the message names it).
    """
    data = Path(path).read_bytes()
    opset = None
    with _naming(path):
        for number, wire, _, end, payload in _fields(data):
            if number != _OPSET_IMPORT_FIELD or wire != _LENGTH_DELIMITED:
                continue
            entry = data[payload:end]
            domain, version = "", None
            for n, w, _, e, p in _fields(entry):
                if n == 1 and w == _LENGTH_DELIMITED:
                    domain = entry[p:e].decode("utf-8", "replace")
                elif n == 2 and w == _VARINT:
                    version = _read_varint(entry, p)[0]
            if domain in DEFAULT_DOMAINS and version is not None:
                opset = max(opset or 0, version)
    return opset


def write_metadata_entry(path: str | os.PathLike[str], key: str, value: str) -> None:
    """Set metadata ``key`` to ``value`` in place (atomically: temp file + rename).

    The file keeps its permissions, and a symbolic link keeps pointing at the rewritten
    model (the model behind the link is rewritten, not replaced by a copy).
    """
    path = Path(os.path.realpath(path))
    data = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode)
    kept = bytearray()
    with _naming(path):
        for number, wire, start, end, payload in _fields(data):
            if number == _METADATA_FIELD and wire == _LENGTH_DELIMITED \
                    and _entry_key(data, payload, end) == key:
                continue
            kept += data[start:end]
    kept += _entry(key, value)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(kept)
        os.chmod(tmp, mode)  # mkstemp makes it private: a service user could no longer read it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
