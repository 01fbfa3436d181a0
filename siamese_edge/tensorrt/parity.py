"""Does the engine decide like the FP32 model? Numeric AND decision parity.

Raw outputs of an FP16/INT8 engine always differ from FP32 a little (Polygraphy's default
1e-5 tolerance fails every FP16 engine); what matters is whether verification decisions at the
model's calibrated threshold change. On a sample of images embedded by both, every pair is
scored with each; we report the largest embedding difference, the fraction of pair decisions
that flip, and the change in TAR (genuine pairs accepted) and FAR (impostor pairs accepted)
where folder labels say which pairs are genuine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from siamese_edge.tensorrt.errors import ParityError


@dataclass(frozen=True)
class ParityBounds:
    """Largest differences accepted from an engine of a given precision.

    Attributes:
        max_abs_diff: on L2-normalised embedding components.
        max_flip_fraction: of all pair decisions at the threshold.
        max_tar_change: absolute change of TAR (and of FAR), as a fraction.
    """

    max_abs_diff: float
    max_flip_fraction: float
    max_tar_change: float


#: stated bounds per precision: FP32 engines must match closely, reduced precisions must keep
#: decisions (at most 1 % of pairs flip for FP16, 2 % for INT8; TAR within 1 / 2 points)
DEFAULT_BOUNDS = {
    "fp32": ParityBounds(max_abs_diff=1e-3, max_flip_fraction=0.001, max_tar_change=0.005),
    "fp16": ParityBounds(max_abs_diff=2e-2, max_flip_fraction=0.01, max_tar_change=0.01),
    "int8": ParityBounds(max_abs_diff=1e-1, max_flip_fraction=0.02, max_tar_change=0.02),
}


@dataclass
class ParityReport:
    precision: str
    samples: int
    pairs: int
    threshold: float
    max_abs_diff: float
    min_row_cosine: float
    flip_fraction: float
    tar_reference: float | None
    tar_candidate: float | None
    far_reference: float | None
    far_candidate: float | None
    bounds: ParityBounds
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def tar_change(self) -> float | None:
        if self.tar_reference is None or self.tar_candidate is None:
            return None
        return self.tar_candidate - self.tar_reference

    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["tar_change"] = self.tar_change
        return out

    def summary(self) -> str:
        tar = "" if self.tar_change is None else f", TAR change {self.tar_change:+.4f}"
        return (f"parity {'ok' if self.passed else 'FAILED'}: max |diff| {self.max_abs_diff:.2g}, "
                f"{self.flip_fraction:.4%} of {self.pairs} pair decisions flip at threshold "
                f"{self.threshold:.3f}{tar}")


def _pair_scores(embeddings: np.ndarray) -> np.ndarray:
    """Cosine score of every pair i < j (rows are unit length)."""
    scores = embeddings @ embeddings.T
    upper = np.triu_indices(len(embeddings), k=1)
    return scores[upper]


def _rate(accepted: np.ndarray, mask: np.ndarray) -> float | None:
    return float(accepted[mask].mean()) if mask.any() else None


def compare_embeddings(reference: np.ndarray, candidate: np.ndarray, threshold: float,
                       labels: list[str] | None = None, precision: str = "fp32",
                       bounds: ParityBounds | None = None) -> ParityReport:
    """Compare ``candidate`` embeddings (the engine) with ``reference`` (ONNX Runtime FP32).

    Args:
        reference, candidate: ``(N, D)`` L2-normalised embeddings of the same N images.
        threshold: accept a pair when its cosine score >= threshold (the model's threshold).
        labels: identity of each image (folder names); enables TAR/FAR.
        precision: picks :data:`DEFAULT_BOUNDS` unless ``bounds`` is given.
    """
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape:
        raise ParityError(f"parity: shapes differ {reference.shape} vs {candidate.shape}")
    bounds = bounds or DEFAULT_BOUNDS[precision]
    diff = float(np.abs(reference - candidate).max()) if reference.size else 0.0
    row_cos = float(np.min(np.sum(reference * candidate, axis=1))) if len(reference) else 1.0
    ref_accept = _pair_scores(reference) >= threshold
    cand_accept = _pair_scores(candidate) >= threshold
    pairs = int(ref_accept.size)
    flips = float(np.mean(ref_accept != cand_accept)) if pairs else 0.0
    tar_r = tar_c = far_r = far_c = None
    if labels is not None and len(labels) == len(reference):
        ids = np.asarray(labels)
        upper = np.triu_indices(len(ids), k=1)
        genuine = ids[upper[0]] == ids[upper[1]]
        tar_r, tar_c = _rate(ref_accept, genuine), _rate(cand_accept, genuine)
        far_r, far_c = _rate(ref_accept, ~genuine), _rate(cand_accept, ~genuine)
    report = ParityReport(precision, len(reference), pairs, float(threshold), diff, row_cos,
                          flips, tar_r, tar_c, far_r, far_c, bounds)
    if not diff <= bounds.max_abs_diff:
        report.failures.append(f"max |diff| {diff:.3g} > {bounds.max_abs_diff:g}")
    if flips > bounds.max_flip_fraction:
        report.failures.append(f"{flips:.3%} of decisions flip > {bounds.max_flip_fraction:.3%}")
    for name, before, after in (("TAR", tar_r, tar_c), ("FAR", far_r, far_c)):
        if before is not None and after is not None and \
                abs(after - before) > bounds.max_tar_change:
            report.failures.append(f"{name} changes {after - before:+.4f} (bound "
                                   f"{bounds.max_tar_change:g})")
    return report


def check_engine_parity(onnx_path, engine_path, sample: np.ndarray,
                        labels: list[str] | None = None, precision: str = "fp32",
                        bounds: ParityBounds | None = None, batch_size: int = 32) -> ParityReport:
    """Embed ``sample`` (preprocessed float32 NCHW) with ONNX Runtime FP32 on the CPU and with
    the engine, then :func:`compare_embeddings`. Needs a GPU for the engine."""
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder
    from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder

    def run(embedder) -> np.ndarray:
        with embedder:
            size = embedder.batch_size
            return np.concatenate([embedder.embed_tensor(sample[i:i + size])
                                   for i in range(0, len(sample), size)])

    onnx_embedder = OnnxRuntimeEmbedder(onnx_path, batch_size=batch_size)
    reference = run(onnx_embedder)
    candidate = run(TensorRTEmbedder(engine_path, batch_size=batch_size,
                                     onnx_info=onnx_embedder.info))
    return compare_embeddings(reference, candidate, onnx_embedder.info.threshold, labels,
                              precision, bounds)
