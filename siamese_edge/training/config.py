"""The training configuration: one field per ``siamese-edge train`` option."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from siamese_edge.errors import InvalidInputError
from siamese_edge.model_info import MAX_INPUT_SIDE

LOSSES = ("triplet", "contrastive")
READOUTS = ("features", "projection")
SCHEDULES = ("onecycle", "cosine", "constant")
VAL_SPLITS = ("auto", "identity", "sample")
# Triplet margins on unit vectors (distances 0..2). Batch-hard triplets, features readout,
# Fashion-MNIST classes 6-9 unseen in training: margin 0.05 / 0.02 / 0.01 scored AUC
# 0.918 / 0.928 / 0.924 (seed 0, 1,000 steps; 0.2 scored 0.904 after 300 steps)
BATCH_HARD_MARGIN = 0.02
TRIPLET_MARGIN = 0.2  # semi-hard and batch-all, as in FaceNet
CONTRASTIVE_MARGIN = 1.0
HOG_WEIGHT = 0.3  # with the features readout; see TrainConfig.hog_weight
# torch computes in float32: a larger value overflows to inf (NaN losses) or, for lr, stops
# AdamW with a RuntimeError
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32: a std below it divides
# AdamW's first step moves a weight by lr / (1 - beta1), beta1 up to 0.95 under the one-cycle
# schedule: that step size must stay a float32
MAX_LR = FLOAT32_MAX * 0.05
MAX_SEED = 2**32 - 1
MAX_THREADS = 1024


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json`` in the run."""

    data: str
    out: str
    labels: str | None = None
    loss: str = "triplet"
    # None: batch-hard for the features readout, semi-hard for the projection. Batch-hard
    # with a small margin ranks identities never trained on best (Fashion-MNIST, train 0-5,
    # test 6-9, features readout: AUC 0.93 against 0.88 for semi-hard with instance
    # pseudo-identities), but it collapses its projection (every score near 1), so a
    # deployed projection is trained with semi-hard. The features readout stays separable:
    # same/different identity means 0.99/0.95, unchanged by float16 templates or FP16.
    # With very little data (scikit-learn digits: ~180 8x8 images per class) batch-hard runs
    # out of active triplets and semi-hard with instance identities does better (README)
    miner: str | None = None
    backbone: str = "small_cnn"
    embedding_dim: int = 64  # the projection the loss trains (and the projection readout)
    # what export deploys (see embedding_net): "features" (the 2x2-pooled feature maps, 512-d
    # with small_cnn) generalise better to identities never trained on, "projection" is
    # better on the identities trained on. None: features where the backbone has them
    readout: str | None = None
    # weight of the fixed oriented-gradient histogram appended to the deployed embedding
    # (oriented_gradients). None: 0.3 with the features readout, 0 with the projection.
    # Unseen-class AUC, default models, seeds 0/1 (README): Fashion-MNIST train 0-5 / test 6-9
    # 0.930 -> 0.933, train 4-9 / test 0-3 0.835 -> 0.862, digits 0.833 -> 0.846. 0.3 is the
    # tested weight that gains on all three; 0.5 and more lose on the first
    hog_weight: float | None = None
    # None: triplet 0.02 with batch-hard, 0.2 otherwise; contrastive 1.0. Resolved on
    # construction, so config.json records the number
    margin: float | None = None
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 64
    k_per_identity: int = 4
    lr: float = 3e-3
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    augment: bool = True
    # augmented views of single images, each its own pseudo-identity (instance
    # discrimination): triplet batches get round(F * batch_size / K) such groups of K views
    # on top of the P×K classes; contrastive batches make this share of their genuine pairs
    # two views of one image. It helped semi-hard mining (unseen Fashion-MNIST classes
    # 0.761 -> ~0.81) but hurts batch-hard: 0 is the default
    instance_fraction: float = 0.0
    hflip: bool = False
    seed: int = 0
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    classes: list[str] | None = None
    val_fraction: float = 0.1
    val_split: str = "auto"
    patience: int = 0  # epochs without validation improvement before stopping; 0 = never
    label_means: str = "similar"
    device: str = "cpu"
    threads: int | None = None
    # per-channel normalisation written into the model; None: computed from the training images
    mean: list[float] | None = None
    std: list[float] | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InvalidInputError(f"unknown loss {self.loss!r} ({', '.join(LOSSES)})")
        if self.schedule not in SCHEDULES:
            raise InvalidInputError(f"unknown schedule {self.schedule!r}")
        if self.val_split not in VAL_SPLITS:
            raise InvalidInputError(f"unknown validation split {self.val_split!r}")
        for name in ("epochs", "steps_per_epoch", "batch_size", "embedding_dim"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be at least 1")
        if self.k_per_identity < 2:  # one image per identity: no positive pair to learn from
            raise InvalidInputError("k_per_identity must be at least 2")
        if self.loss == "triplet" and self.batch_size < 2 * self.k_per_identity:
            raise InvalidInputError("triplet batches need batch_size >= 2 * k_per_identity")
        # batch_size counts images: 2 or 3 make one pair, always an impostor one, and the
        # loss would never see a genuine pair
        if self.loss == "contrastive" and self.batch_size < 4:
            raise InvalidInputError(f"contrastive batches need batch_size >= 4 (two pairs: "
                                    f"a genuine and an impostor one), not {self.batch_size}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= MAX_LR):
            raise InvalidInputError(f"lr must be a positive number up to {MAX_LR:.3g}, not "
                                    f"{self.lr}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= FLOAT32_MAX):
            raise InvalidInputError(f"weight_decay must be 0 or more, up to {FLOAT32_MAX:.3g} "
                                    f"(float32), not {self.weight_decay}")
        if self.classes is not None and not self.classes:
            raise InvalidInputError("classes is empty: name at least two, or leave it out")
        if not 0.0 <= self.instance_fraction <= 0.9:
            raise InvalidInputError("instance_fraction must be in [0, 0.9]")
        if not 0.0 <= self.val_fraction < 0.9:
            raise InvalidInputError("val_fraction must be in [0, 0.9)")
        if not 0 <= self.seed <= MAX_SEED:  # numpy refuses negative seeds, torch huge ones
            raise InvalidInputError(f"seed must be in [0, {MAX_SEED}], not {self.seed}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            # 100000 threads made OpenBLAS fail to start them and the process crash
            raise InvalidInputError(f"threads must be in [1, {MAX_THREADS}], not "
                                    f"{self.threads}")
        for side in (self.height, self.width):
            if side is not None and not 1 <= side <= MAX_INPUT_SIDE:
                # 30000x30000 tried to allocate ~180 GB; models above it are refused at load
                raise InvalidInputError(f"input sizes must be 1 to {MAX_INPUT_SIDE} pixels a "
                                        f"side, not {side}")
        if (self.mean is None) != (self.std is None):
            raise InvalidInputError("give both mean and std, or neither")
        if self.mean is not None and self.std is not None:
            self.mean = [float(v) for v in self.mean]
            self.std = [float(v) for v in self.std]
            if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3):
                raise InvalidInputError("mean and std need one value per channel (1 or 3)")
            if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX
                       for v in self.mean + self.std):
                raise InvalidInputError(f"mean and std values must be finite numbers within "
                                        f"float32 range (±{FLOAT32_MAX:.3g})")
            if min(self.std) < FLOAT32_TINY:
                raise InvalidInputError(f"std values must be positive, at least "
                                        f"{FLOAT32_TINY:.3g} (float32)")
        if self.classes is not None:
            self.classes = [str(c) for c in self.classes]
        if self.readout is None:
            self.readout = "projection" if self.backbone == "seed" else "features"
        if self.readout not in READOUTS:
            raise InvalidInputError(f"unknown readout {self.readout!r} ({', '.join(READOUTS)})")
        if self.readout == "features" and self.backbone == "seed":
            raise InvalidInputError("the seed backbone has no feature readout; use "
                                    "--readout projection")
        if self.hog_weight is None:
            self.hog_weight = HOG_WEIGHT if self.readout == "features" else 0.0
        self.hog_weight = float(self.hog_weight)
        if not 0.0 <= self.hog_weight <= 10.0:
            raise InvalidInputError("hog_weight must be in [0, 10]")
        if self.miner is None:
            self.miner = "batch-hard" if self.readout == "features" else "semi-hard"
        if self.margin is None:
            self.margin = (CONTRASTIVE_MARGIN if self.loss == "contrastive" else
                           BATCH_HARD_MARGIN if self.miner == "batch-hard" else TRIPLET_MARGIN)
        self.margin = float(self.margin)
        # at 0 or less impostors are never pushed apart (contrastive), or only once they rank
        # above genuine pairs by more than the margin (triplet): the loss learns nothing
        if not (math.isfinite(self.margin) and 0 < self.margin <= FLOAT32_MAX):
            raise InvalidInputError(f"margin must be a positive number up to "
                                    f"{FLOAT32_MAX:.3g} (float32), not {self.margin}")

    def check_new_run(self) -> None:
        """Limits for a run about to start, not for runs already made: earlier versions
        accepted a mean outside [0, 1] (127.5 for pixels in 0–255), and such a run must still
        export and resume."""
        if self.mean is not None and not all(0.0 <= v <= 1.0 for v in self.mean):
            raise InvalidInputError(f"mean values must be in [0, 1] (pixels are scaled to "
                                    f"[0, 1] first), not {self.mean}")

    @property
    def loss_margin(self) -> float:
        assert self.margin is not None  # resolved in __post_init__
        return self.margin

    @property
    def deployed_hog_weight(self) -> float:
        assert self.hog_weight is not None  # resolved in __post_init__
        return self.hog_weight

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        # runs saved before the readout existed deployed their projection
        values.setdefault("readout", "projection")
        # runs saved before the gradient histogram existed deployed without it
        values.setdefault("hog_weight", 0.0)
        # runs saved before margins were resolved on construction used these
        if values.get("margin") is None:
            values["margin"] = (CONTRASTIVE_MARGIN if values.get("loss") == "contrastive"
                                else TRIPLET_MARGIN)
        return cls(**values)
