"""What ``--resume`` checks before continuing a run: its options and the data it trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.errors import InvalidInputError

#: options that may differ on --resume: they do not change what is trained
RESUMABLE_CHANGES = frozenset({"out", "threads", "device", "patience"})
#: options naming files, compared resolved: ``digits/``, ``digits`` and its absolute path are
#: one folder, and a relative path is resolved where the run began (recorded in the data)
PATH_OPTIONS = ("data", "labels")


def _resolved(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def saved_options(run_dir: str | Path) -> dict | None:
    """The options a run in ``run_dir`` was started with (its ``config.json``), or None when
    there is none to read."""
    try:
        saved = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def describe_data(data: LabelledImages, paths: dict) -> dict:
    """What a run trains on, saved in ``last.pt``: the resolved ``paths`` (option -> path),
    the identities and the number of images."""
    return {**{name: _resolved(paths.get(name)) for name in PATH_OPTIONS},
            "class_names": [str(data.class_names[i]) for i in np.unique(data.labels)],
            "images": int(len(data))}


def changed_options(saved: dict, current: dict, saved_data: dict | None) -> list[str]:
    """``name (old -> new)`` of each option that differs and may not on --resume."""
    changed = []
    for name, value in current.items():
        if name in RESUMABLE_CHANGES:
            continue
        if name in PATH_OPTIONS:
            # runs saved before the data was described resolve their path here
            before = saved_data[name] if saved_data else _resolved(saved.get(name))
            if before != _resolved(value):
                changed.append(f"{name} ({before!r} -> {_resolved(value)!r})")
        elif saved.get(name) != value:
            changed.append(f"{name} ({saved.get(name)!r} -> {value!r})")
    return changed


def check_same_data(where: Path, saved: dict | None, current: dict) -> None:
    """Refuse data at the run's path that is no longer what it trained on (a class folder
    removed or added, images added or deleted). Runs saved before the data was described
    (``saved`` None) are not checked."""
    if saved is None:
        return
    before, now = saved["class_names"], current["class_names"]
    differences = []
    removed = [name for name in before if name not in now]
    added = [name for name in now if name not in before]
    if removed:
        differences.append(f"identities gone: {_names(removed)}")
    if added:
        differences.append(f"identities added: {_names(added)}")
    if saved["images"] != current["images"]:
        differences.append(f"{saved['images']} images then, {current['images']} now")
    if differences:
        raise InvalidInputError(f"{where}: --resume needs the data the run trained on, and "
                                f"{current['data']} has changed ({'; '.join(differences)}); "
                                f"train again with --overwrite or another --out")


def _names(names: list[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
