"""The runtime keeps to Python 3.8 (JetPack 5 ships it; ``requires-python = ">=3.8"``).

CI runs a newer Python, where 3.10-only code runs fine, so this reads the runtime's source
instead: the 3.8 grammar, and the newer library calls and run-time type expressions that
parse under 3.8 but fail when they run (``zip(strict=True)`` broke ``evaluate`` on 3.8).
Training and export need torch, hence a newer Python, and are not checked.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "siamese_edge"
NOT_RUNTIME = ("training", "exporting")
#: methods and functions newer than 3.8, by name
NEWER_CALLS = {"removeprefix": "3.9", "removesuffix": "3.9", "bit_count": "3.10",
               "lcm": "3.9", "cache": "3.9", "pairwise": "3.10", "to_thread": "3.9"}
#: keyword arguments newer than 3.8, by the function they go to
NEWER_KEYWORDS = {("zip", "strict"): "3.10", ("dataclass", "slots"): "3.10",
                  ("dataclass", "kw_only"): "3.10", ("map", "strict"): "3.10"}
#: subscripting these at run time (outside postponed annotations) needs 3.9
GENERIC_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "type", "Sequence",
                    "Mapping", "Iterable", "Iterator", "Callable", "MutableMapping"}


def runtime_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p.relative_to(PACKAGE).parts[0] not in NOT_RUNTIME)


def _annotations(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        roots = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        for root in roots:
            inside.update(id(n) for n in ast.walk(root))
    return inside


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def newer_than_38(source: str, filename: str) -> list[str]:
    """Where ``source`` needs a Python newer than 3.8, as ``line: what`` strings."""
    try:
        tree = ast.parse(source, filename, feature_version=(3, 8))
    except SyntaxError as exc:
        return [f"{exc.lineno}: syntax newer than 3.8 ({exc.msg})"]
    postponed = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                    and any(a.name == "annotations" for a in n.names) for n in tree.body)
    annotation_nodes = _annotations(tree) if postponed else set()
    from_typing = {alias.asname or alias.name for n in ast.walk(tree)
                   if isinstance(n, ast.ImportFrom) and n.module == "typing" for alias in n.names}

    def generic(node: ast.AST) -> bool:  # typing's generics are fine on 3.8
        if isinstance(node, ast.Attribute):
            return node.attr in GENERIC_BUILTINS and _name(node.value) != "typing"
        return _name(node) in GENERIC_BUILTINS and _name(node) not in from_typing

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = _name(node.func)
            if called in NEWER_CALLS:
                found.append(f"{node.lineno}: {called}() is Python {NEWER_CALLS[called]}")
            for keyword in node.keywords:
                version = NEWER_KEYWORDS.get((called, keyword.arg))
                if version:
                    found.append(f"{node.lineno}: {called}({keyword.arg}=) is Python {version}")
            if called in ("isinstance", "issubclass") and len(node.args) == 2 and any(
                    isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                    for n in ast.walk(node.args[1])):
                found.append(f"{node.lineno}: {called} with X | Y is Python 3.10")
        elif isinstance(node, ast.Subscript) and id(node) not in annotation_nodes \
                and generic(node.value):
            found.append(f"{node.lineno}: {_name(node.value)}[...] evaluated at run time is "
                         f"Python 3.9")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr) \
                and id(node) not in annotation_nodes \
                and all(generic(side) or _name(side) in {"str", "int", "float", "bool"}
                        or (isinstance(side, ast.Constant) and side.value is None)
                        for side in (node.left, node.right)):
            found.append(f"{node.lineno}: a type union X | Y evaluated at run time is 3.10")
    return found


@pytest.mark.skipif(sys.version_info < (3, 8), reason="ast feature_version needs 3.8+")
def test_the_checker_finds_what_broke_before():
    assert newer_than_38("pairs = zip(a, b, strict=True)\n", "x.py")
    assert newer_than_38("match x:\n    case 1:\n        pass\n", "x.py")
    assert newer_than_38("Alias = dict[str, int]\n", "x.py")
    assert newer_than_38("def f(x: list[int]) -> None: ...\n", "x.py")  # evaluated there
    assert newer_than_38("ok = isinstance(v, int | float)\n", "x.py")
    assert newer_than_38("name = s.removeprefix('a')\n", "x.py")
    postponed = "from __future__ import annotations\ndef f(x: list[int] | None) -> None: ...\n"
    assert newer_than_38(postponed, "x.py") == []
    assert newer_than_38("pairs = zip(a, b)\nv: int = d[0]\n", "x.py") == []
    assert newer_than_38("from typing import Callable\nEmit = Callable[[dict], None]\n",
                         "x.py") == []
    assert newer_than_38("from collections.abc import Callable\nE = Callable[[dict], None]\n",
                         "x.py")
    assert newer_than_38("Optional = int | None\n", "x.py")


@pytest.mark.parametrize("module", runtime_modules(),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_runtime_module_runs_on_python_38(module):
    problems = newer_than_38(module.read_text(encoding="utf-8"), str(module))
    assert not problems, f"{module.relative_to(PACKAGE)}: " + "; ".join(problems)
