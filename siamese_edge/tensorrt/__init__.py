"""TensorRT engines: build (ONNX → engine), check freshness, run, compare with ONNX Runtime.

Nothing here imports TensorRT, cuda-python, torch or onnx at module level: runtime installs
(Jetson) have no torch or onnx, and a CPU-only machine has no TensorRT. :func:`load_tensorrt`
finds whichever TensorRT Python package is installed.
"""

from __future__ import annotations

import warnings
from types import ModuleType

from siamese_edge.tensorrt.errors import TensorRTUnavailableError

#: module names tried in order: the full TensorRT (JetPack, desktop), then TensorRT for RTX
#: (builds on a CPU-only machine; strongly typed). Never both in one process.
TENSORRT_MODULES = ("tensorrt", "tensorrt_rtx")


def load_tensorrt(preferred: str | None = None) -> ModuleType:
    """The TensorRT Python module available here.

    Args:
        preferred: ``tensorrt`` or ``tensorrt_rtx`` to force one; default tries both.

    Raises:
        TensorRTUnavailableError: none imports.
    """
    import importlib
    import sys

    names = (preferred,) if preferred else TENSORRT_MODULES
    for name in names:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "Builder"):  # never mix two in a process
            return module
    failures = []
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = importlib.import_module(name)
            if not hasattr(module, "Builder"):  # e.g. a namespace package: a folder named so
                raise ImportError(f"{getattr(module, '__path__', module)} is not TensorRT")
            return module
        except Exception as exc:  # ImportError, or a library that fails to load (OSError)
            failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise TensorRTUnavailableError(
        "TensorRT is not installed here (" + "; ".join(failures) + "); on Jetson it comes "
        "with JetPack, on a desktop 'pip install tensorrt'")


def tensorrt_version(trt: ModuleType) -> str:
    """``tensorrt 10.3.0`` / ``tensorrt_rtx 1.7.1.116``: the module name matters (engines of
    one never load in the other)."""
    return f"{trt.__name__} {getattr(trt, '__version__', '?')}"
