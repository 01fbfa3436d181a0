"""Tiny real ONNX embedding models for tests, generated (never committed as blobs).

Built with ``onnx.helper`` so tests of the runtime need no torch: Conv → ReLU →
GlobalAveragePool → Flatten → Gemm → L2 normalisation, dynamic batch axis, siamese-edge
metadata attached.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from siamese_edge.model_info import METADATA_KEY, ModelInfo, Preprocessing


def make_tiny_model(path: Path, height: int = 16, width: int = 16, channels: int = 1,
                    embedding_dim: int = 8, seed: int = 0, threshold: float = 0.5,
                    opset: int = 18) -> ModelInfo:
    """Write a tiny random-weight embedding model to ``path`` and return its ModelInfo."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    filters = 16
    conv_w = rng.normal(0, 0.5, (filters, channels, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, (filters,)).astype(np.float32)
    fc_w = rng.normal(0, 0.5, (filters, embedding_dim)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, (embedding_dim,)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(conv_w, "conv_w"), (conv_b, "conv_b"), (fc_w, "fc_w"), (fc_b, "fc_b"),
              (np.array([1], np.int64), "axes1")]]
    nodes = [
        helper.make_node("Conv", ["images", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["e"]),
        helper.make_node("ReduceL2", ["e", "axes1"], ["n"], keepdims=1),
        helper.make_node("Div", ["e", "n"], ["embeddings"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                       ["batch", channels, height, width])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT,
                                       ["batch", embedding_dim])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    weights = b"".join(a.tobytes() for a in (conv_w, conv_b, fc_w, fc_b))
    info = ModelInfo(
        preprocessing=Preprocessing(height, width, channels, (0.5,) * channels,
                                    (0.25,) * channels),
        embedding_dim=embedding_dim, threshold=threshold,
        fingerprint="sha256:" + hashlib.sha256(weights).hexdigest(),
        threshold_source="test fixture", name=f"tiny-{seed}",
        training={"note": "random weights, test fixture"})
    helper.set_model_props(model, {METADATA_KEY: info.to_json()})
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return info


def write_random_people(root: Path, names: tuple[str, ...], per_identity: int,
                        shape: tuple[int, ...], seed: int = 0) -> Path:
    """An image folder ``root/<name>/<i>.png`` of random uint8 images (any shape)."""
    from siamese_edge.runtime.imageio import write_image

    rng = np.random.default_rng(seed)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_identity):
            write_image(root / name / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


class FullSizeImages:
    """Wraps ``module.read_image``: how many full-resolution images were alive at once, to
    show a loader fits or embeds each image before reading the next ones."""

    def __init__(self, monkeypatch, module) -> None:
        import weakref

        from siamese_edge.runtime.imageio import read_image

        self.alive: list = []
        self.most_alive = 0

        def reading(path):
            self.alive = [ref for ref in self.alive if ref() is not None]
            self.most_alive = max(self.most_alive, len(self.alive))
            image = read_image(path)
            self.alive.append(weakref.ref(image))
            return image

        monkeypatch.setattr(module, "read_image", reading)
