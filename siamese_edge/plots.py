"""ROC curve and score histograms (needs matplotlib: the ``plot`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siamese_edge.errors import MissingDependencyError
from siamese_edge.metrics import roc_curve


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("plots need matplotlib: pip install "
                                     "'siamese-edge[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def score_bins(genuine: np.ndarray, impostor: np.ndarray, count: int = 60) -> np.ndarray:
    """Histogram edges over every score, up to at least a cosine's 1.0.

    float32 cosines of identical embeddings come out as 1.0000001: edges ending at 1.0 left
    those scores out of the histogram, and decreased (an error) when every score exceeded it.
    """
    scores = np.concatenate([np.ravel(genuine), np.ravel(impostor)]).astype(np.float64)
    low, high = float(scores.min()), max(1.0, float(scores.max()))
    if high <= low:  # every score the same: a narrow range around it
        low, high = low - 0.01, high + 0.01
    return np.linspace(low, high, count)


def save_evaluation_plots(out_dir: str | os.PathLike[str], genuine: np.ndarray,
                          impostor: np.ndarray, threshold: float | None,
                          title: str = "") -> list[str]:
    """Write ``roc.png`` and ``scores.png`` into ``out_dir``; returns their paths."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curve = roc_curve(genuine, impostor)
    fig, ax = plt.subplots(figsize=(5, 4))
    far = np.clip(curve.far, 1e-6, 1)
    ax.plot(far, curve.tar)
    ax.set_xscale("log")
    # below 1 even for a handful of impostor pairs: equal limits make matplotlib warn
    ax.set_xlim(min(0.1, max(1e-5, 1 / max(1, len(impostor)))), 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"ROC {title}".strip())
    fig.tight_layout()
    roc_path = out / "roc.png"
    fig.savefig(roc_path, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    bins = score_bins(genuine, impostor)
    ax.hist(impostor, bins=bins, alpha=0.6, density=True, label="impostor pairs")
    ax.hist(genuine, bins=bins, alpha=0.6, density=True, label="genuine pairs")
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("cosine similarity")
    ax.legend()
    ax.set_title(f"Scores {title}".strip())
    fig.tight_layout()
    hist_path = out / "scores.png"
    fig.savefig(hist_path, dpi=100)
    plt.close(fig)
    return [str(roc_path), str(hist_path)]
