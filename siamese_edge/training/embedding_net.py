"""The one shared-weight network: a backbone followed by L2 normalisation.

Two readouts of the same network (``readout``):

- ``projection``: the backbone's output, the vector the training loss shapes;
- ``features``: the backbone's last feature maps averaged over a 2×2 grid, before the
  projection. The loss only ever sees the projection of the globally pooled maps, so these
  keep what it squeezes out — the layout of an image and the details that tell apart
  identities it never saw (the SimCLR/SupCon practice of dropping the projection head at
  deployment, here with a spatial grid). On Fashion-MNIST (train on classes 0–5) they raise
  verification AUC on the unseen classes 6–9 from ~0.81 to ~0.88 (semi-hard triplets) and to
  ~0.93 with batch-hard mining, whose projection collapses; they cost some on the trained
  classes (semi-hard: AUC 0.958 → 0.922): see the README.

With ``hog_weight`` > 0 the deployed embedding is the unit readout concatenated with
``hog_weight`` times a fixed, unit-length histogram of oriented gradients of the input
(``oriented_gradients``), normalised again: a cosine score that is the readout's score plus
``hog_weight``² times the descriptor's, over 1 + ``hog_weight``². The loss never sees it.

Training always uses :meth:`EmbeddingNet.training_embedding`; validation, thresholds and
export use ``forward``, the readout that is deployed.
"""

from __future__ import annotations

import torch
from torch import nn

from siamese_edge.errors import InvalidInputError
from siamese_edge.training.backbones import build_backbone
from siamese_edge.training.config import READOUTS, TrainConfig
from siamese_edge.training.oriented_gradients import OrientedGradientHistogram


class EmbeddingNet(nn.Module):
    """``forward(x)`` → unit-length embeddings; this is what export writes to ONNX."""

    def __init__(self, backbone: nn.Module, readout: str = "projection",
                 hog_weight: float = 0.0, channels: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise InvalidInputError(f"unknown readout {readout!r} ({', '.join(READOUTS)})")
        if readout == "features" and not hasattr(backbone, "readout_features"):
            raise InvalidInputError(f"backbone {type(backbone).__name__} has no feature "
                                    f"readout; use --readout projection")
        if hog_weight < 0:
            raise InvalidInputError("hog_weight must not be negative")
        self.backbone = backbone
        self.readout = readout
        self.hog_weight = float(hog_weight)
        self.hog = OrientedGradientHistogram(channels) if hog_weight > 0 else None
        self.eps = eps

    def _unit(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(self.eps)

    def training_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The unit-length projection the training loss is computed on."""
        return self._unit(self.backbone(x))

    def _deployed(self, readout: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.hog is None:
            return readout
        return self._unit(torch.cat([readout, self.hog_weight * self.hog(x)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.readout == "features":
            return self._deployed(self._unit(self.backbone.readout_features(x)), x)
        return self._deployed(self.training_embedding(x), x)

    def deployed_and_training(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(x)`` and ``training_embedding(x)``, running the backbone once."""
        if self.readout == "features":
            projection, features = self.backbone.projection_and_features(x)
            return self._deployed(self._unit(features), x), self._unit(projection)
        embeddings = self.training_embedding(x)
        return self._deployed(embeddings, x), embeddings


def build_embedding_net(config: TrainConfig, channels: int, height: int,
                        width: int) -> EmbeddingNet:
    """The network a training run trains and a checkpoint restores, for inputs of this shape."""
    return EmbeddingNet(build_backbone(config.backbone, channels, height, width,
                                       config.embedding_dim), config.readout,
                        hog_weight=config.deployed_hog_weight, channels=channels)
