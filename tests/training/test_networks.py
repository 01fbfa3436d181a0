import numpy as np
import pytest
import torch

from siamese_edge.errors import InvalidInputError
from siamese_edge.training.backbones import build_backbone
from siamese_edge.training.embedding_net import EmbeddingNet
from siamese_edge.training.lrn import LocalResponseNorm
from siamese_edge.training.siamese import SiameseNet


@pytest.mark.parametrize("size", [2, 3, 4, 5])
def test_lrn_equals_torch(size):
    x = torch.randn(2, 7, 5, 4)
    ours = LocalResponseNorm(size, alpha=1e-2, beta=0.75, k=2.0)(x)
    theirs = torch.nn.LocalResponseNorm(size, alpha=1e-2, beta=0.75, k=2.0)(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,readout,dim", [("small_cnn", "projection", 16),
                                              ("small_cnn", "features", 512),
                                              ("seed", "projection", 16)])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_backbones_give_unit_embeddings_and_export_with_dynamic_batch(tmp_path, name, readout,
                                                                      dim, shape):
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    c, h, w = shape
    model = EmbeddingNet(build_backbone(name, c, h, w, 16), readout).eval()
    x = torch.randn(5, c, h, w)
    out = model(x)
    assert out.shape == (5, dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x[:2],), str(path), dynamo=True, external_data=False,
                      opset_version=18, input_names=["images"], output_names=["embeddings"],
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "LRN" not in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        got = session.run(None, {"images": x[:batch].numpy()})[0]
        np.testing.assert_allclose(got, out[:batch].detach().numpy(), atol=1e-4)


def test_feature_readout_is_the_pooled_maps_not_the_trained_projection():
    torch.manual_seed(0)
    backbone = build_backbone("small_cnn", 1, 28, 28, 16)
    model = EmbeddingNet(backbone, "features").eval()
    x = torch.randn(3, 1, 28, 28)
    maps = backbone.features(x)  # (3, 128, 7, 7): the 2x2 grid overlaps at odd sizes
    top_left = maps[:, :, :4, :4].mean(dim=(2, 3))
    expected = torch.nn.functional.normalize(backbone.readout_features(x), dim=1)
    torch.testing.assert_close(model(x), expected)
    torch.testing.assert_close(backbone.readout_features(x)[:, 0::4], top_left)
    trained = model.training_embedding(x)
    assert trained.shape == (3, 16)
    torch.testing.assert_close(trained, EmbeddingNet(backbone, "projection").eval()(x))
    for net in (model, EmbeddingNet(backbone, "projection").eval()):  # one backbone pass
        deployed, training = net.deployed_and_training(x)
        torch.testing.assert_close(deployed, net(x))
        torch.testing.assert_close(training, net.training_embedding(x))


def test_readout_errors():
    with pytest.raises(InvalidInputError, match="no feature readout"):
        EmbeddingNet(build_backbone("seed", 1, 28, 28, 8), "features")
    with pytest.raises(InvalidInputError, match="unknown readout"):
        EmbeddingNet(build_backbone("small_cnn", 1, 28, 28, 8), "logits")


def test_seed_net_has_the_article_shape():
    net = build_backbone("seed", 1, 28, 28, 2)
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(2048, 512), (512, 128),
                                                                 (128, 2)]
    conv = net.features[0]
    assert (conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (
        128, (5, 5), (3, 3), (2, 2))


def test_siamese_branches_share_weights():
    net = EmbeddingNet(build_backbone("small_cnn", 1, 16, 16, 8)).eval()
    twin = SiameseNet(net).eval()
    a, b = torch.randn(3, 1, 16, 16), torch.randn(2, 1, 16, 16)
    ea, eb = twin(a, b)
    torch.testing.assert_close(ea, net(a))
    torch.testing.assert_close(eb, net(b))
    assert len(list(twin.parameters())) == len(list(net.parameters()))


def test_seed_backbone_refuses_images_too_small_for_it():
    from siamese_edge.errors import InvalidInputError
    from siamese_edge.training.backbones.seed import SeedNet

    SeedNet(1, 10, 10, 8)
    with pytest.raises(InvalidInputError, match="at least 10×10"):  # a RuntimeError before
        SeedNet(1, 9, 12, 8)


def test_unknown_backbone():
    with pytest.raises(InvalidInputError):
        build_backbone("resnet999", 1, 8, 8, 4)
