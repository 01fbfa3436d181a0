"""Static check: does TensorRT's ONNX parser support every operator of a graph?

Runs without TensorRT or a GPU (CI), so an export that will not build on the device is caught
before it gets there. The table is the "Y" rows of onnx-tensorrt's ``docs/operators.md``
(TensorRT 8.4/8.5 support matrix, the oldest TensorRT we support: JetPack 5), so an op that
passes here parses on 8.5, 10.x and 11.x. Restrictions the table states per op (e.g. Conv
weights must be initializers, Q/DQ zero points must be 0) are listed in :data:`RESTRICTIONS`
and reported as notes, not checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from siamese_edge.errors import ModelError
from siamese_edge.onnx_metadata import DEFAULT_DOMAINS
from siamese_edge.tensorrt.errors import UnsupportedOpsError

#: ONNX operators (default domain) with "Supported: Y" in onnx-tensorrt's operator matrix.
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor
Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu
Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
Min Mul Neg NonMaxSuppression Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomUniform RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence
RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh
Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample Where Xor
""".split())

#: restrictions stated in the same table, for ops a Siamese backbone plausibly uses
RESTRICTIONS = {
    "Conv": "2D or 3D only; weights W must be an initializer",
    "ConvTranspose": "2D or 3D only; weights W must be an initializer",
    "AveragePool": "2D or 3D pooling only",
    "MaxPool": "2D or 3D pooling only; no Indices output",
    "QuantizeLinear": "y_zero_point must be 0 (symmetric quantization)",
    "DequantizeLinear": "x_zero_point must be 0 (symmetric quantization)",
    "Resize": "modes nearest/linear only",
    "Slice": "axes must be an initializer",
    "Squeeze": "axes must be an initializer",
    "Unsqueeze": "axes must be a constant tensor",
}

#: highest ONNX opset each TensorRT parses (onnx-tensorrt docs: 8.5 → 17, 10.0 → 20)
MAX_OPSET = {"8.5": 17, "10": 20}


@dataclass(frozen=True)
class UnsupportedNode:
    name: str
    op_type: str
    domain: str

    def __str__(self) -> str:
        domain = f"{self.domain}::" if self.domain not in DEFAULT_DOMAINS else ""
        return f"{self.name or '<unnamed>'} ({domain}{self.op_type})"


@dataclass
class OpSupportReport:
    """What :func:`check_op_support` found.

    Attributes:
        op_counts: operator type → number of nodes (subgraphs included).
        unsupported: nodes whose operator TensorRT's parser does not support.
        opset: the model's default-domain opset.
        notes: restrictions of ops present, and opset warnings.
    """

    op_counts: dict[str, int] = field(default_factory=dict)
    unsupported: list[UnsupportedNode] = field(default_factory=list)
    opset: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unsupported

    def to_dict(self) -> dict:
        return {"ok": self.ok, "opset": self.opset, "op_counts": self.op_counts,
                "unsupported": [str(n) for n in self.unsupported], "notes": self.notes}


def _walk(graph):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.g is not None and len(attribute.g.node):
                yield from _walk(attribute.g)
            for sub in attribute.graphs:
                yield from _walk(sub)


def check_op_support(model) -> OpSupportReport:
    """Check every node (subgraphs of If/Loop/Scan too) against :data:`SUPPORTED_OPS`.

    Args:
        model: an ONNX file path or a loaded ``onnx.ModelProto``.
    """
    if isinstance(model, (str, os.PathLike)):
        import onnx

        path = Path(model)
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and kin: a bad file
            raise ModelError(f"{path}: the ONNX graph is unreadable ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
                             f"export the model again") from None
    report = OpSupportReport()
    report.opset = max((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS),
                       default=0)
    for node in _walk(model.graph):
        report.op_counts[node.op_type] = report.op_counts.get(node.op_type, 0) + 1
        if node.domain not in DEFAULT_DOMAINS or node.op_type not in SUPPORTED_OPS:
            report.unsupported.append(UnsupportedNode(node.name, node.op_type, node.domain))
    for op in sorted(report.op_counts):
        if op in RESTRICTIONS:
            report.notes.append(f"{op}: {RESTRICTIONS[op]}")
    for release in MAX_OPSET:  # no TensorRT at hand here: every limit the graph passes
        if report.opset > MAX_OPSET[release]:
            report.notes.append(_opset_message(report.opset, release))
    return report


def _opset_message(opset: int, release: str) -> str:
    if release == "8.5":
        return (f"opset {opset} is above 17, the newest TensorRT 8.5 (JetPack 5) parses; "
                f"export with --opset 17 for JetPack 5")
    return (f"opset {opset} is above {MAX_OPSET[release]}, the newest TensorRT "
            f"{release}.0 parses")


def opset_note(opset: int, trt) -> str | None:
    """The "opset too new" note for the TensorRT that builds, or None: a limit of another
    release does not concern it (shown on every build, the JetPack 5 note told desktop and
    TensorRT-RTX users to re-export)."""
    if trt.__name__ != "tensorrt":
        return None
    version = str(getattr(trt, "__version__", ""))
    if version.startswith("7.") or (version.startswith("8.") and
                                    version.split(".")[1] in ("0", "1", "2", "3", "4")):
        # JetPack 4 (the original Jetson Nano) has TensorRT 8.2 and Python 3.6: neither
        # parses what export writes (opset 17 or later) nor runs this package
        return (f"TensorRT {version} predates 8.5 (JetPack 5), the oldest siamese-edge "
                f"builds for: its ONNX parser stops below the opset 17 export writes")
    release = "8.5" if version.startswith("8.") else "10" if version.startswith("10.0") \
        else None
    if release is None or opset <= MAX_OPSET[release]:
        return None
    return _opset_message(opset, release)


def require_op_support(model) -> OpSupportReport:
    """:func:`check_op_support`, raising :class:`UnsupportedOpsError` naming each bad node."""
    report = check_op_support(model)
    if not report.ok:
        shown = ", ".join(str(n) for n in report.unsupported[:20])
        more = f" and {len(report.unsupported) - 20} more" if len(report.unsupported) > 20 else ""
        raise UnsupportedOpsError(f"TensorRT's ONNX parser does not support "
                                  f"{len(report.unsupported)} node(s): {shown}{more}")
    return report
