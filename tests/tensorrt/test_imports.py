"""Every TensorRT-path module imports with no torch, onnx, TensorRT or cuda-python installed
(a Jetson runtime install, a CPU CI box), and parses as Python 3.8 (JetPack 5)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import siamese_edge

PACKAGE = Path(siamese_edge.__file__).parent
MODULES = sorted(f"siamese_edge.tensorrt.{p.stem}" for p in (PACKAGE / "tensorrt").glob("*.py")
                 if p.stem != "__init__") + ["siamese_edge.tensorrt", "siamese_edge.cli.engine",
                                             "siamese_edge.runtime.backends"]


def test_modules_import_with_heavy_packages_hidden():
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        HIDDEN = ("torch", "onnx", "onnxscript", "tensorrt", "tensorrt_rtx", "cuda")
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == h or name.startswith(h + ".") for h in HIDDEN):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Block())
        for module in {MODULES!r}:
            importlib.import_module(module)
        from siamese_edge.tensorrt import load_tensorrt
        try:
            load_tensorrt()
        except Exception as exc:
            print(type(exc).__name__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "TensorRTUnavailableError"


@pytest.mark.parametrize("folder", ["tensorrt", "runtime"])
def test_python_3_8_syntax(folder):
    for path in sorted((PACKAGE / folder).glob("*.py")):
        ast.parse(path.read_text(), str(path), feature_version=(3, 8))
