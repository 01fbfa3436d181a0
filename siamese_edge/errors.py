"""Errors a user can cause. The CLI shows each as one line and exits non-zero."""

from __future__ import annotations


class SiameseEdgeError(Exception):
    """Base class of every error caused by user input or environment, shown in one line."""

    exit_code = 1


class InvalidInputError(SiameseEdgeError):
    """A file, image, option or value given by the user cannot be used."""


class ImageReadError(InvalidInputError):
    """An image file is missing, empty, truncated or not an image."""


class DatasetError(InvalidInputError):
    """A training or evaluation dataset cannot be read or is unusable."""


class ModelError(SiameseEdgeError):
    """A model file is missing, unreadable, or lacks siamese-edge metadata."""


class GalleryError(SiameseEdgeError):
    """A gallery file is unreadable, corrupt, or from an unsupported schema."""


class ModelMismatchError(GalleryError):
    """A gallery was enrolled with another model than the one given."""


class UnknownIdentityError(GalleryError):
    """An identity named by the user is not in the gallery."""


class ExportError(SiameseEdgeError):
    """Export failed, e.g. the exported model disagrees with PyTorch beyond tolerance."""


class MissingDependencyError(SiameseEdgeError):
    """An optional dependency (torch, onnx, TensorRT...) needed by this command is absent."""


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 240 characters of it): a probe's or a
    backend's failure in one line of a report."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:240]}" if text else type(exc).__name__
