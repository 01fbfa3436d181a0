"""The training loop: one shared-weight embedding network, contrastive or mined triplet loss.

Deterministic for a given seed on the CPU. Writes into the run directory:

- ``checkpoint.pt``: the best epoch (lowest validation EER, see ``selection_key``) —
  ``{"format", "state_dict", "config", "run"}``, loadable with
  ``torch.load(..., weights_only=True)``;
- ``last.pt``: everything needed by ``--resume`` (optimizer, schedule, RNG states);
- ``config.json``, ``log.jsonl`` (one line per epoch), ``run.json`` (summary, threshold);
- ``curves.png`` when matplotlib is installed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from siamese_edge.data.labelled import LabelledImages
from siamese_edge.data.loading import load_dataset
from siamese_edge.errors import DatasetError, InvalidInputError, SiameseEdgeError
from siamese_edge.metrics import equal_error_rate, pair_scores, roc_auc
from siamese_edge.runtime.atomic_file import create_folder, replaced_on_success
from siamese_edge.runtime.preprocess import normalize
from siamese_edge.training.augment import Augmenter
from siamese_edge.training.config import TrainConfig
from siamese_edge.training.embedding_net import build_embedding_net
from siamese_edge.training.losses import ContrastiveLoss, TripletLoss
from siamese_edge.training.miners import MINERS, violating_fraction
from siamese_edge.training.one_line import describe
from siamese_edge.training.oriented_gradients import check_input_size
from siamese_edge.training.resume import changed_options, check_same_data, describe_data
from siamese_edge.training.run_files import OUTPUT_FILES, RUN_FILES
from siamese_edge.training.samplers import BalancedPairSampler, PKSampler

CHECKPOINT_FORMAT = 1
MAX_VALIDATION_IMAGES = 2000
# mean genuine minus mean impostor cosine on validation pairs below which the embedding
# counts as collapsed: every image maps to (almost) one direction, scores of same and
# different identities crowd together, and float16 templates or an FP16 engine (steps of
# ~0.0005 near 1) flip decisions. Batch-hard's projection collapses this way (gap ~0.001);
# a working embedding keeps a gap of several hundredths even when all its scores sit high
# (batch-hard's features readout: 0.99 against 0.95, unchanged by float16 templates)
COLLAPSED_SCORE_GAP = 0.01

Progress = Callable[[dict], None]


class TrainingDivergedError(SiameseEdgeError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    run_dir: Path
    info: dict
    log: list[dict]


def split_validation(data: LabelledImages, config: TrainConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and validation indices, by identity or by sample (stratified).

    Validation needs a genuine pair: identities held out are drawn among those with two or
    more images, and a class of four or more images gives at least two. When no genuine pair
    can be held out, everything trains and the mode is ``"none"``.
    """
    classes, counts = np.unique(data.labels, return_counts=True)
    if config.val_fraction == 0:
        return np.arange(len(data)), np.array([], np.int64), "none"
    mode = config.val_split
    if mode == "auto":
        mode = "identity" if len(classes) * config.val_fraction >= 2 else "sample"
    if mode == "identity":
        n_val = max(2, int(round(len(classes) * config.val_fraction)))
        if len(classes) - n_val < 2:
            raise DatasetError(f"{len(classes)} identities are too few to hold {n_val} out "
                               f"for validation; use --val-split sample")
        paired = classes[counts >= 2]
        held = rng.choice(paired if len(paired) >= n_val else classes, n_val, replace=False)
        is_val = np.isin(data.labels, held)
    else:
        is_val = np.zeros(len(data), bool)
        for c in classes:
            members = rng.permutation(np.nonzero(data.labels == c)[0])
            take = int(len(members) * config.val_fraction)
            if take < 2 and len(members) >= 4:
                take = 2
            elif take == 0 and len(members) >= 3:
                take = 1
            is_val[members[:take]] = True
    if not np.any(np.unique(data.labels[is_val], return_counts=True)[1] >= 2):
        return np.arange(len(data)), np.array([], np.int64), "none"
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0], mode


def threshold_caveat(info: dict) -> str | None:
    """What to tell a user whose threshold was not measured on identities held out of
    training: there it sits far too low for strangers (on held-out digits, one model's EER
    threshold from trained identities accepted 48 % of impostors)."""
    if info.get("val_split") == "identity":
        return None
    where = ("images of the identities it trained on" if info.get("val_split") == "sample"
             else "its own training images")
    return (f"the threshold {info['threshold']:.3f} is the EER on {where}; on people or items "
            f"it never saw it accepts far more impostors. Calibrate it on held-out identities "
            f"before deploying: siamese-edge evaluate -m MODEL.onnx HELD_OUT --far 1e-3 "
            f"--write-threshold")


def is_collapsed(scores: dict) -> bool:
    gap = scores["val_genuine_mean"] - scores["val_impostor_mean"]
    return bool(gap < COLLAPSED_SCORE_GAP)  # NaN (a single identity) is not collapse


def collapse_message(scores: dict, config: TrainConfig) -> str:
    # only what would change the run: advice to use the options in effect misleads
    remedies = [option for option, applies in (
        ("--readout features", config.readout != "features" and config.backbone != "seed"),
        ("--miner semi-hard", config.loss == "triplet" and config.miner != "semi-hard"),
        ("--loss contrastive", config.loss != "contrastive")) if applies]
    advice = ""
    if remedies:
        listed = (", ".join(remedies[:-1]) + " or " + remedies[-1] if len(remedies) > 1
                  else remedies[0])
        advice = f"; try {listed}"
    return (f"the embedding has collapsed: validation pairs of different identities score "
            f"{scores['val_impostor_mean']:.4f} on average (same identity "
            f"{scores['val_genuine_mean']:.4f}), so same and different identities score "
            f"almost alike and no threshold separates them{advice}")


class Trainer:
    """One training run. Use :func:`train` unless you need the pieces."""

    def __init__(self, config: TrainConfig, progress: Progress | None = None) -> None:
        self.config = config
        self.progress = progress or (lambda event: None)
        self.run_dir = Path(config.out)

    # -- setup ------------------------------------------------------------------------------
    def _load(self) -> None:
        c = self.config
        data = load_dataset(c.data, c.labels, c.height, c.width, c.channels, c.classes,
                            c.label_means)
        self.rng = np.random.default_rng(c.seed)
        train_idx, val_idx, self.val_mode = split_validation(data, c, self.rng)
        self.train = data.subset(train_idx)
        self.val = data.subset(val_idx) if len(val_idx) else None
        if self.val is not None and len(np.unique(self.val.labels)) < 2:
            # one identity has no impostor pairs to validate on: its images train instead
            # of being dropped, and validation falls back to the training images
            self.train, self.val, self.val_mode = data, None, "none"
        self._check_validation_pairs(self.val if self.val is not None else self.train)
        self.data = data
        height, width, channels = data.shape
        if c.mean is not None and c.std is not None:
            if len(c.mean) != channels:
                raise InvalidInputError(f"mean/std have {len(c.mean)} values but the images "
                                        f"have {channels} channel(s)")
            self.mean, self.std = list(c.mean), list(c.std)
        else:
            pixels = self.train.images.reshape(-1, channels).astype(np.float64) / 255.0
            self.mean = [float(v) for v in pixels.mean(0)]
            self.std = [float(max(v, 1e-3)) for v in pixels.std(0)]
        self.shape = (height, width, channels)

    @staticmethod
    def _check_validation_pairs(data: LabelledImages) -> None:
        """Validation scores genuine and impostor pairs; without both it cannot measure."""
        counts = np.unique(data.labels, return_counts=True)[1]
        if len(counts) < 2 or counts.max() < 2:
            raise DatasetError("the data cannot be validated: it needs two identities and "
                               "two images of one identity (a pairs CSV: a genuine pair of "
                               "two different images, and an impostor pair)")

    def _build(self) -> None:
        c = self.config
        torch.manual_seed(c.seed)
        height, width, channels = self.shape
        if c.deployed_hog_weight > 0:
            check_input_size(height, width)
        self.model = build_embedding_net(c, channels, height, width)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=c.lr,
                                           weight_decay=c.weight_decay)
        total = c.epochs * c.steps_per_epoch
        if c.schedule == "onecycle" and total >= 4:
            # warm-up is at least two steps: shorter phases divide by zero inside torch
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=c.lr, total_steps=total,
                pct_start=min(0.5, max(0.2, 2.0 / total)))
        elif c.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total)
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        self.generator = torch.Generator().manual_seed(c.seed)
        self.augmenter = Augmenter(hflip=c.hflip) if c.augment else None
        self.mean_t = torch.tensor(self.mean).view(1, -1, 1, 1)
        self.std_t = torch.tensor(self.std).view(1, -1, 1, 1)
        instances = (self._instance_identities() if c.loss == "triplet" else
                      int(round(c.instance_fraction * self._pairs_per_batch())))
        if instances > len(self.train):
            raise DatasetError(f"--instance-fraction {c.instance_fraction} asks for {instances} "
                               f"distinct images per batch; the training set has "
                               f"{len(self.train)}: lower it")
        if c.loss == "triplet":
            self.sampler = PKSampler(self.train.labels, c.batch_size // c.k_per_identity,
                                     c.k_per_identity, self.rng)
            miner_type = MINERS.get(c.miner)
            if miner_type is None:
                raise InvalidInputError(f"unknown miner {c.miner!r} ({', '.join(MINERS)})")
            self.miner = miner_type(c.loss_margin) if c.miner == "semi-hard" else miner_type()
            self.loss_fn = TripletLoss(c.loss_margin, "mean_active" if c.miner == "batch-all"
                                       else "mean")
        else:
            self.sampler = BalancedPairSampler(self.train.labels, self.rng, self.train.pairs)
            self.loss_fn = ContrastiveLoss(c.loss_margin)

    # -- steps ------------------------------------------------------------------------------
    def _inputs(self, indices: np.ndarray, augment: bool) -> torch.Tensor:
        x = torch.from_numpy(self.train.images[indices]).permute(0, 3, 1, 2).float() / 255.0
        if augment and self.augmenter is not None:
            x = self.augmenter(x, self.generator)
        return (x - self.mean_t) / self.std_t

    def _triplet_batch(self) -> tuple[np.ndarray, torch.Tensor]:
        """Image indices and labels of one P×K batch, plus the instance pseudo-identities."""
        indices = self.sampler.sample()
        labels = self.train.labels[indices].astype(np.int64)
        k = self.config.k_per_identity
        n_instances = self._instance_identities()
        if n_instances:
            # pseudo-identities: K augmented views of one image, labels below every class
            chosen = self.rng.choice(len(self.train), n_instances, replace=False)
            indices = np.concatenate([indices, np.repeat(chosen, k)])
            labels = np.concatenate([labels, -1 - np.repeat(np.arange(n_instances), k)])
        return indices, torch.from_numpy(labels)

    def _instance_identities(self) -> int:
        """How many instance pseudo-identities (K views of one image each) a P×K batch adds."""
        c = self.config
        return int(round(c.instance_fraction * c.batch_size / c.k_per_identity))

    def _pairs_per_batch(self) -> int:
        """Contrastive batches: ``batch_size`` counts images, as for triplets."""
        return max(1, self.config.batch_size // 2)

    def batch_shape(self) -> dict:
        """What one training batch really holds. A P×K batch has at most as many identities
        as the data: Fashion-MNIST's six training classes make ``--batch-size 64`` batches of
        6 × 4 = 24 images (plus any instance pseudo-identities)."""
        if isinstance(self.sampler, PKSampler):
            instances = self._instance_identities()
            return {"identities": self.sampler.p, "per_identity": self.sampler.k,
                    "instance_identities": instances,
                    "images": (self.sampler.p + instances) * self.sampler.k}
        pairs = self._pairs_per_batch()
        return {"pairs": pairs, "images": 2 * pairs}

    def _step(self) -> tuple[float, float, float | None]:
        """One optimisation step; returns (loss, fraction of active pairs/triplets among those
        the loss used, fraction of all the batch's triplets violating the margin or None)."""
        violating = None
        if self.config.loss == "triplet":
            indices, labels = self._triplet_batch()
            embeddings = self.model.training_embedding(self._inputs(indices, True))
            a, p, n = self.miner(embeddings, labels)
            per = self.loss_fn.per_triplet(embeddings[a], embeddings[p], embeddings[n])
            loss = self.loss_fn(embeddings[a], embeddings[p], embeddings[n])
            active = float((per > 0).float().mean()) if len(per) else 0.0
            violating = violating_fraction(embeddings, labels, self.config.loss_margin)
        else:
            # batch_size counts images, as for triplets: half as many pairs
            first, second, same = self.sampler.sample(self._pairs_per_batch())
            n_instances = int(round(self.config.instance_fraction * int(same.sum())))
            if n_instances:
                # some genuine pairs become two augmented views of one image
                chosen = self.rng.choice(len(self.train), n_instances, replace=False)
                genuine = np.nonzero(same == 1)[0][:n_instances]
                first, second = first.copy(), second.copy()
                first[genuine] = second[genuine] = chosen
            # both branches in one batch: the same network, shared batch-norm statistics
            embeddings = self.model.training_embedding(
                self._inputs(np.concatenate([first, second]), True))
            e1, e2 = embeddings[:len(first)], embeddings[len(first):]
            same_t = torch.from_numpy(same)
            loss = self.loss_fn(e1, e2, same_t)
            with torch.no_grad():
                d = (e1 - e2).norm(dim=1)
                active = float(((same_t == 1) & (d > 0) | (same_t == 0) &
                                (d < self.loss_fn.margin)).float().mean())
        if not torch.isfinite(loss):
            raise TrainingDivergedError("the loss became NaN/inf; lower --lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step_lr = float(self.optimizer.param_groups[0]["lr"])  # the rate this step used
        self.scheduler.step()
        return float(loss.detach()), active, violating

    def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings in eval mode through the runtime's own normalisation: the deployed
        readout and the embedding the loss is computed on (the same array for the
        projection readout)."""
        self.model.eval()
        deployed, trained = [], []
        with torch.no_grad():
            for start in range(0, len(images), 512):
                x = normalize(images[start:start + 512], self.mean, self.std)
                d, t = self.model.deployed_and_training(torch.from_numpy(x))
                deployed.append(d.numpy())
                trained.append(t.numpy())
        self.model.train()
        return np.concatenate(deployed), np.concatenate(trained)

    def validate(self) -> dict:
        data = self.val if self.val is not None else self.train
        rng = np.random.default_rng(self.config.seed + 1)
        keep = np.arange(len(data))
        if len(keep) > MAX_VALIDATION_IMAGES:
            keep = np.sort(rng.choice(keep, MAX_VALIDATION_IMAGES, replace=False))
        embeddings, trained = self.embed(data.images[keep])
        if not np.all(np.isfinite(embeddings)):
            raise TrainingDivergedError("the model's outputs became NaN/inf; lower --lr or "
                                        "check the data")
        genuine, impostor = pair_scores(embeddings, data.labels[keep])
        eer, threshold = equal_error_rate(genuine, impostor)
        scores = {"val_eer": eer, "val_auc": roc_auc(genuine, impostor),
                  "threshold": threshold,
                  "val_genuine_mean": float(np.mean(genuine)) if len(genuine) else math.nan,
                  "val_impostor_mean": float(np.mean(impostor)) if len(impostor) else math.nan}
        if self.selection_key == "val_eer_training":
            scores["val_eer_training"] = equal_error_rate(
                *pair_scores(trained, data.labels[keep]))[0]
        return scores

    @property
    def selection_key(self) -> str:
        """The validation EER that picks the best epoch (and stops early).

        Held-out identities test what is deployed on identities never trained on: the
        deployed readout's EER. Held-out images of the trained identities test how well
        training fits them, which is what the loss's own embedding shows; the features
        readout is not trained on them and its EER there stays flat while its accuracy on
        new identities rises (Fashion-MNIST, batch-hard: 0.21-0.24 over ten epochs while
        unseen-class AUC went 0.86 -> 0.93), so picking on it keeps an arbitrary epoch.
        """
        if self.config.readout == "projection" or self.val_mode == "identity":
            return "val_eer"
        return "val_eer_training"

    # -- the run ----------------------------------------------------------------------------
    def run(self, resume: bool = False, overwrite: bool = False) -> RunResult:
        c = self.config
        started = time.time()
        held = [name for name in RUN_FILES if (self.run_dir / name).exists()]
        if held and not (resume or overwrite):
            raise InvalidInputError(f"{self.run_dir} already holds a run ({', '.join(held)}); "
                                    f"use --resume to continue it, --overwrite to replace "
                                    f"it, or another --out")
        if not resume:
            c.check_new_run()
        if c.threads:
            torch.set_num_threads(int(c.threads))
        self._refuse_out_inside_data()
        created = not self.run_dir.exists()
        self._make_run_dir()
        try:
            return self._train(resume, overwrite, started)
        except BaseException:
            # a failure before anything was written (bad data, Ctrl-C while reading) leaves
            # no empty run folder behind
            if created and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
                self.run_dir.rmdir()
            raise

    def _train(self, resume: bool, overwrite: bool, started: float) -> RunResult:
        c = self.config
        self.progress({"event": "status", "message": f"reading {c.data}", "transient": True})
        self._load()
        height, width, channels = self.shape
        self.progress({"event": "status", "message": (
            f"read {len(self.data)} images of {len(np.unique(self.data.labels))} identities "
            f"({height}x{width}, {channels} channel{'s' if channels > 1 else ''}); "
            f"{len(self.val) if self.val is not None else 0} held out for validation")})
        if c.val_fraction > 0 and self.val_mode == "none":
            self.progress({"event": "warning", "message": "no validation split with genuine "
                           "and impostor pairs could be held out: validating on the training "
                           "images"})
        self._build()
        # an old run is replaced only once the new one has trained and validated an epoch:
        # bad input, or a failure in the first steps, must not cost it
        replace_old = overwrite and not resume
        log: list[dict] = []
        key = self.selection_key
        best: dict = {key: math.inf}
        best_state = None
        start_epoch, stale, stopped = 0, 0, False
        validated: tuple[int, dict] | None = None  # (epoch, its validation) of this process
        if resume:
            start_epoch, log, best, best_state, stale = self._restore()
            # --patience may change on resume: whether the run is over is decided again
            stopped = bool(c.patience and stale >= c.patience)
            if stopped or start_epoch >= c.epochs:
                self.progress({"event": "nothing_to_train",
                               "message": self._finished_message(start_epoch, stale)})
        if not replace_old:
            self._write_config()
        for epoch in range(start_epoch, start_epoch if stopped else c.epochs):
            epoch_start = time.time()
            self.model.train()
            losses, actives, violating = [], [], []
            for step in range(c.steps_per_epoch):
                loss, active, violated = self._step()
                losses.append(loss)
                actives.append(active)
                if violated is not None:
                    violating.append(violated)
                self.progress({"event": "step", "epoch": epoch + 1, "epochs": c.epochs,
                               "step": step + 1, "steps": c.steps_per_epoch, "loss": loss})
            validated = (epoch + 1, self.validate())
            record = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
                      "active_fraction": float(np.mean(actives)),
                      **({"violating_fraction": float(np.mean(violating))} if violating else {}),
                      "lr": self.step_lr, **validated[1],
                      "seconds": round(time.time() - epoch_start, 2)}
            log.append(record)
            improved = record[key] < best.get(key, math.inf) - 1e-6
            if improved:
                best = dict(record)
                best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                stale = 0
            else:
                stale += 1
            if replace_old:  # the first write of the new run
                for name in (*RUN_FILES, *OUTPUT_FILES):
                    (self.run_dir / name).unlink(missing_ok=True)
                self._write_config()
                replace_old = False
            self._write("log.jsonl", "".join(json.dumps(r) + "\n" for r in log))
            self.progress({"event": "epoch", **record, "epochs": c.epochs,
                           "best": improved})
            stopped = bool(c.patience and stale >= c.patience)
            self._save_last(epoch + 1, log, best, best_state, stale, stopped)
            if stopped:
                self.progress({"event": "early_stop", "epoch": epoch + 1,
                               "best_epoch": best["epoch"]})
                break
        if validated is not None and best.get("epoch") == validated[0]:
            final = validated[1]  # the model is the best epoch's: validated a moment ago
        else:
            if best_state is not None:
                self.model.load_state_dict(best_state)
            self.progress({"event": "status", "message": f"validating the best epoch "
                                                         f"({best.get('epoch')})"})
            final = self.validate()
        info = self._run_info(final, best, time.time() - started)
        if info["collapsed"]:
            self.progress({"event": "warning", "message": collapse_message(final, c)})
        self._save_checkpoint(info)
        self._write("run.json", json.dumps(info, indent=2) + "\n")
        self._plot(log)
        return RunResult(self.run_dir, info, log)

    def _refuse_out_inside_data(self) -> None:
        """A run directory inside an image folder is read back as data by the next run: its
        curves.png became an image of an identity (and turned a gray set into colour)."""
        data = Path(self.config.data).resolve()
        if data.is_dir() and (data == self.run_dir.resolve()
                              or data in self.run_dir.resolve().parents):
            raise InvalidInputError(f"--out {self.run_dir} is inside the image folder {data}: "
                                    f"the run's files would be read as training images; "
                                    f"write it elsewhere")

    def _make_run_dir(self) -> None:
        """Before the data is read: a path that cannot hold the run is refused at once, not
        after loading and building everything."""
        reason = create_folder(self.run_dir)
        if reason:
            raise InvalidInputError(f"{self.run_dir}: cannot create the run directory "
                                    f"({reason})")
        if not os.access(self.run_dir, os.W_OK | os.X_OK):
            raise InvalidInputError(f"{self.run_dir}: the run directory is not writable")

    def _write_config(self) -> None:
        self._write("config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")

    def _write(self, name: str, content) -> None:
        """Replace ``name`` in the run directory whole: a crash or Ctrl-C in the middle of a
        write leaves the previous file, which --resume and export still read."""
        with replaced_on_success(self.run_dir / name) as handle:
            if isinstance(content, str):
                handle.write(content.encode())
            else:
                torch.save(content, handle)

    def _run_info(self, final: dict, best: dict, seconds: float) -> dict:
        height, width, channels = self.shape
        if self.val is None:
            source = "the training images (no validation split)"
        elif self.val_mode == "identity":
            source = f"{len(np.unique(self.val.labels))} held-out identities"
        else:  # the real share, not --val-fraction: small classes give two images each
            source = f"{len(self.val) / len(self.data):.0%} of the images held out"
        return {
            "threshold": final["threshold"],
            "threshold_source": f"EER on validation data of {Path(self.config.data).name}: "
                                f"{source}",
            "val_eer": final["val_eer"], "val_auc": final["val_auc"],
            "val_genuine_mean": final["val_genuine_mean"],
            "val_impostor_mean": final["val_impostor_mean"],
            "collapsed": is_collapsed(final),
            "val_split": self.val_mode, "batch": self.batch_shape(),
            "best_epoch": best.get("epoch"),
            "best_epoch_by": self.selection_key,
            "class_names": [self.data.class_names[i] for i in np.unique(self.train.labels)],
            "num_train_images": int(len(self.train)),
            "num_val_images": int(len(self.val)) if self.val is not None else 0,
            "preprocessing": {"height": height, "width": width, "channels": channels,
                              "mean": self.mean, "std": self.std},
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch_version": str(torch.__version__), "python": platform.python_version(),
            "seconds": round(seconds, 1), "data_warnings": self.data.warnings[:20],
            "data_skipped": len(self.data.warnings),
        }

    def _save_checkpoint(self, info: dict) -> None:
        self._write("checkpoint.pt", {"format": CHECKPOINT_FORMAT,
                                      "state_dict": self.model.state_dict(),
                                      "config": self.config.to_dict(), "run": info})

    def _save_last(self, epoch: int, log: list[dict], best: dict, best_state, stale: int,
                   stopped: bool) -> None:
        self._write("last.pt", {"format": CHECKPOINT_FORMAT, "epoch": epoch, "stale": stale,
                                "stopped": stopped, "threads": torch.get_num_threads(),
                                "state_dict": self.model.state_dict(),
                                "best_state_dict": best_state or {}, "best": json.dumps(best),
                                "optimizer": self.optimizer.state_dict(),
                                "scheduler": self.scheduler.state_dict(),
                                "numpy_rng": json.dumps(self.rng.bit_generator.state),
                                "torch_rng": self.generator.get_state(),
                                "global_torch_rng": torch.get_rng_state(),
                                "log": json.dumps(log), "config": self.config.to_dict(),
                                "data": json.dumps(self._data_description())})

    def _data_description(self) -> dict:
        return describe_data(self.data, {"data": self.config.data,
                                         "labels": self.config.labels})

    def _restore(self):
        """The state saved after the last finished epoch, checked against this config."""
        path = self.run_dir / "last.pt"
        if not path.is_file():
            raise InvalidInputError(f"{path}: nothing to resume")
        try:
            state = torch.load(path, weights_only=True)
            saved = TrainConfig.from_dict(state["config"]).to_dict()
        except Exception as exc:  # truncated, not a checkpoint, or from an unknown version
            raise InvalidInputError(f"{path}: not a resumable checkpoint ({describe(exc)}); "
                                    f"train again with --overwrite") from None
        try:
            saved_data = json.loads(state["data"]) if "data" in state else None
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{path}: not a resumable checkpoint ({describe(exc)}); "
                                    f"train again with --overwrite") from None
        changed = changed_options(saved, self.config.to_dict(), saved_data)
        if changed:
            raise InvalidInputError(f"{path}: --resume needs the run's own options; changed: "
                                    f"{', '.join(changed)}")
        check_same_data(path, saved_data, self._data_description())
        threads = state.get("threads")
        if threads is not None and threads != torch.get_num_threads():
            # CPU kernels sum in an order that depends on the thread count
            self.progress({"event": "warning", "message": (
                f"the run trained with {threads} threads and continues with "
                f"{torch.get_num_threads()}: it will not repeat a run that never stopped "
                f"(the sums round differently); --threads {threads} continues it exactly")})
        try:
            self.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.rng.bit_generator.state = json.loads(state["numpy_rng"])
            self.generator.set_state(state["torch_rng"])
            torch.set_rng_state(state["global_torch_rng"])
            best = json.loads(state["best"])
            best_state = state["best_state_dict"] or None
            log = json.loads(state["log"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"{path}: does not match this run ({describe(exc)})"
                                    ) from None
        # runs saved before early stopping was recorded resume with a fresh count
        return int(state["epoch"]), log, best, best_state, int(state.get("stale", 0))

    def _finished_message(self, epoch: int, stale: int) -> str:
        c = self.config
        if epoch >= c.epochs:
            return f"nothing left to train: the run has already trained all its {c.epochs} epochs"
        return (f"nothing left to train: after epoch {epoch} the validation EER has not "
                f"improved for {stale} epoch(s), which --patience {c.patience} stops at; a "
                f"larger --patience, or 0, trains on")

    def _plot(self, log: list[dict]) -> None:
        try:
            import matplotlib
        except ImportError:
            return
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in log]
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        left.plot(epochs, [r["loss"] for r in log], marker="o")
        left.set_xlabel("epoch")
        left.set_ylabel("training loss")
        right.plot(epochs, [r["val_eer"] for r in log], marker="o", color="C1",
                   label="deployed readout")
        if all("val_eer_training" in r for r in log):
            right.plot(epochs, [r["val_eer_training"] for r in log], marker="s", color="C2",
                       label="loss's embedding (picks the best epoch)")
            right.legend(fontsize="small")
        right.set_xlabel("epoch")
        right.set_ylabel("validation EER")
        fig.tight_layout()
        fig.savefig(self.run_dir / "curves.png", dpi=90)
        plt.close(fig)


def train(config: TrainConfig, progress: Progress | None = None,
          resume: bool = False, overwrite: bool = False) -> RunResult:
    """Train a model as ``config`` says; see the module docstring for what is written.

    An ``out`` that already holds a run is refused unless ``resume`` (continue it, with the
    same options) or ``overwrite`` (replace it) is given.
    """
    return Trainer(config, progress).run(resume=resume, overwrite=overwrite)
