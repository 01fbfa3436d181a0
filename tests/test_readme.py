"""The README's commands are the ones CI runs and the ones that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```(?:sh|bash)\n(.*?)```", section, re.S)]


def test_quickstart_is_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)


def test_ci_runs_the_readme_test_command():
    test_command = quickstart_commands()[1]
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_quickstart_uses_shipped_files():
    demo = quickstart_commands()[0]
    for path in re.findall(r"models/[\w./*-]+", demo):
        matches = list(ROOT.glob(path))
        assert matches, f"README names {path}, which is not in the repository"


def test_python_example_runs_and_prints_what_its_comments_say(tmp_path):
    """The README's library example, run as written (from a folder holding ``models``): each
    ``print`` line's comment, up to any colon, is what it must print."""
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Use it from Python.*?```python\n(.*?)```", text, re.S).group(1)
    expected = [line.split("# ", 1)[1].split(":")[0].strip()
                for line in code.splitlines() if line.lstrip().startswith("print(")]
    assert len(expected) == 2
    (tmp_path / "models").symlink_to(ROOT / "models")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == expected
    assert (tmp_path / "app.sqlite").is_file()  # the gallery it created, not the checkout's
