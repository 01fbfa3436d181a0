"""Backbones by name: ``small_cnn`` (default) and ``seed`` (the original article's network)."""

from __future__ import annotations

from torch import nn

from siamese_edge.errors import InvalidInputError

BACKBONES = ("small_cnn", "seed")


def build_backbone(name: str, channels: int, height: int, width: int,
                   embedding_dim: int) -> nn.Module:
    """A backbone mapping float32 ``(N, channels, height, width)`` to ``(N, embedding_dim)``."""
    if name == "small_cnn":
        from siamese_edge.training.backbones.small_cnn import SmallCNN

        return SmallCNN(channels, height, width, embedding_dim)
    if name == "seed":
        from siamese_edge.training.backbones.seed import SeedNet

        return SeedNet(channels, height, width, embedding_dim)
    raise InvalidInputError(f"unknown backbone {name!r} (choose from {', '.join(BACKBONES)})")
