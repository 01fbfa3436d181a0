"""Static TensorRT op-support check: the tiny model, a torch-exported CNN with BatchNorm, the
seed backbone, and a graph with an op TensorRT cannot parse."""

from __future__ import annotations

import pytest

from siamese_edge.tensorrt.errors import UnsupportedOpsError
from siamese_edge.tensorrt.op_support import SUPPORTED_OPS, check_op_support, \
    require_op_support


def test_tiny_model_is_supported(tiny_model):
    report = require_op_support(tiny_model)
    assert report.ok and report.opset == 18
    assert {"Conv", "ReduceL2", "Gemm"} <= set(report.op_counts)
    assert any("opset 18 is above 17" in note for note in report.notes)


def test_unsupported_op_is_reported_by_node_name(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu0"),
         helper.make_node("NonZero", ["r"], ["nz"], name="where_are_they"),
         helper.make_node("Custom", ["r"], ["c"], name="plugin_node", domain="com.example")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("nz", TensorProto.INT64, None),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    report = check_op_support(model)
    assert [str(n) for n in report.unsupported] == ["where_are_they (NonZero)",
                                                    "plugin_node (com.example::Custom)"]
    with pytest.raises(UnsupportedOpsError, match="where_are_they .*plugin_node"):
        path = tmp_path / "bad.onnx"
        onnx.save(model, str(path))
        require_op_support(path)


def test_table_holds_what_siamese_backbones_use():
    assert {"Conv", "BatchNormalization", "Relu", "MaxPool", "LRN", "Gemm", "MatMul",
            "ReduceL2", "Div", "QuantizeLinear", "DequantizeLinear"} <= SUPPORTED_OPS
    assert "NonZero" not in SUPPORTED_OPS


def _export(module, path, channels=1, size=28):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    import logging
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    x = torch.randn(2, channels, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (x,), str(path), dynamo=True, external_data=False,
                          opset_version=18, input_names=["images"],
                          output_names=["embeddings"],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    return path


def test_torch_exported_cnn_with_batchnorm_is_supported(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 8))
    with torch.no_grad():  # non-trivial running stats so BatchNorm is not folded to identity
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    report = require_op_support(_export(net, tmp_path / "cnn.onnx"))
    assert report.ok, report.to_dict()
    assert "Conv" in report.op_counts


@pytest.mark.parametrize("backbone", ["small_cnn", "seed"])
def test_project_backbones_are_supported(tmp_path, backbone):
    pytest.importorskip("torch")
    from siamese_edge.training.backbones import build_backbone

    net = build_backbone(backbone, 1, 28, 28, 16)
    report = require_op_support(_export(net, tmp_path / f"{backbone}.onnx"))
    assert report.ok, report.to_dict()


def test_the_default_deployed_model_with_its_gradient_histogram_is_supported(tmp_path):
    pytest.importorskip("torch")
    from siamese_edge.training.backbones import build_backbone
    from siamese_edge.training.embedding_net import EmbeddingNet

    net = EmbeddingNet(build_backbone("small_cnn", 3, 28, 28, 16), "features", hog_weight=0.3,
                       channels=3)
    report = require_op_support(_export(net, tmp_path / "deployed.onnx", channels=3))
    assert report.ok, report.to_dict()
    assert {"Conv", "Concat", "Sqrt"} <= set(report.op_counts)
