"""Running Python as a user that file permissions bind (root ignores them), or skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def unprivileged_python() -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that run this interpreter, with this checkout
    importable, as an unprivileged user; skips the test when there is no such user or it
    cannot read the checkout or the virtualenv (a clone in a private temp folder)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop the privilege")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    probe = subprocess.run([*prefix, sys.executable, "-c", "import numpy, siamese_edge"],
                           capture_output=True, text=True, env=env, cwd="/")
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"an unprivileged user cannot import the package from here ({reason})")
    return [*prefix, sys.executable], env
