"""What the benchmark scripts (and ``models/make_samples.py``) share: errors in one line.

They are commands like ``siamese-edge`` and fail like it: a missing model, data set or file,
or a missing optional package, is one line ``SCRIPT: ...`` on stderr and exit status 1, not a
traceback. Anything else is a bug and keeps its traceback.

Each script imports it with ``sys.path.insert(0, <this folder>)`` first: run as
``python benchmarks/X.py`` the folder is on the path anyway, but not under ``runpy`` or
from ``models/``.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Callable, Optional

from siamese_edge.errors import SiameseEdgeError

TRAIN = "siamese-edge[train]"
#: what to ``pip install`` for an import name, where the two differ
PROVIDERS = {"torch": TRAIN, "onnx": TRAIN, "onnxscript": TRAIN,
             "faiss": "siamese-edge[faiss]", "matplotlib": "siamese-edge[plot]",
             "cv2": "opencv-python-headless", "sklearn": "scikit-learn",
             "skimage": "scikit-image"}


def missing_message(exc: ModuleNotFoundError) -> Optional[str]:
    """What to install for a missing module; None when it is not an optional package (one
    of siamese_edge's own modules missing is a bug, not a user's error)."""
    module = (exc.name or "").partition(".")[0]
    if not module or module == "siamese_edge":
        return None
    provider = PROVIDERS.get(module, module)
    what = (f"the {provider[len('siamese-edge['):-1]} extra"
            if provider.startswith("siamese-edge[") else provider)
    return f"needs {what} ({module} missing): pip install '{provider}'"


def run_main(main: Callable[[], Optional[int]], script: str, train_hint: str = "") -> None:
    """Exit with ``main()``'s status, or with one line for a user's error.

    Args:
        main: the script's main function.
        script: the script's ``__file__``; its name starts the line.
        train_hint: added when a package of the train extra is missing (e.g. that
            ``--model`` avoids building a test model with torch).
    """
    name = Path(script).stem
    try:
        status = main()
    except SiameseEdgeError as exc:  # a missing or unusable model, data set or option
        sys.exit(f"{name}: {exc}")
    except ModuleNotFoundError as exc:
        message = missing_message(exc)
        if message is None:
            raise
        if train_hint and TRAIN in message:
            message += f"; {train_hint}"
        sys.exit(f"{name}: {message}")
    except OSError as exc:  # a path that cannot be read or written, as the CLI shows it
        if exc.errno == errno.EPIPE:  # `| head` closed the pipe
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        sys.exit(f"{name}: {where}{exc.strerror or exc}")
    sys.exit(status)
