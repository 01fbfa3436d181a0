"""Loading a training run back: the model in eval mode, its config and its summary."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from siamese_edge.errors import ModelError
from siamese_edge.model_info import Preprocessing
from siamese_edge.training.config import TrainConfig
from siamese_edge.training.one_line import describe


@dataclass
class LoadedRun:
    model: nn.Module
    config: TrainConfig
    info: dict
    preprocessing: Preprocessing


def load_run(run_dir: str | os.PathLike[str]) -> LoadedRun:
    """Load ``RUN_DIR/checkpoint.pt`` (with ``weights_only=True``: nothing is unpickled).

    Raises:
        ModelError: no run there, or the checkpoint is corrupt or of another format.
    """
    import torch

    from siamese_edge.training.embedding_net import build_embedding_net

    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        if (Path(run_dir) / "last.pt").is_file():  # stopped before its last epoch
            raise ModelError(f"{run_dir}: an unfinished training run (no checkpoint.pt yet); "
                             f"finish it with 'siamese-edge train DATA --out {run_dir} "
                             f"--resume'")
        raise ModelError(f"{run_dir}: not a training run (no checkpoint.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(state["config"])
        info = dict(state["run"])
        pre = info["preprocessing"]
        preprocessing = Preprocessing(int(pre["height"]), int(pre["width"]),
                                      int(pre["channels"]), tuple(pre["mean"]),
                                      tuple(pre["std"]))
        model = build_embedding_net(config, preprocessing.channels, preprocessing.height,
                                    preprocessing.width)
        model.load_state_dict(state["state_dict"])
    except ModelError:
        raise
    except Exception as exc:  # unpickling errors, missing keys, shape mismatches
        raise ModelError(f"{path}: unreadable checkpoint ({describe(exc)})") from None
    return LoadedRun(model.eval(), config, info, preprocessing)


def read_run_summary(run_dir: str | os.PathLike[str]) -> dict:
    """``run.json`` of a run, without torch."""
    try:
        return json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{run_dir}: no readable run.json ({exc})") from None
