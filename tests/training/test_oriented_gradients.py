import numpy as np
import pytest
import torch

from siamese_edge.errors import InvalidInputError
from siamese_edge.training.backbones import build_backbone
from siamese_edge.training.embedding_net import EmbeddingNet
from siamese_edge.training.oriented_gradients import OrientedGradientHistogram


def reference(image: np.ndarray, orientations: int = 8, cells: int = 4) -> np.ndarray:
    """The descriptor with loops: Sobel on the edge-padded image, oriented, clipped, pooled."""
    padded = np.pad(image.astype(np.float64), 1, mode="edge")
    h, w = image.shape
    gx = np.zeros((h, w))
    gy = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            win = padded[i:i + 3, j:j + 3]
            gx[i, j] = ((win[:, 2] - win[:, 0]) * [1, 2, 1]).sum() / 8
            gy[i, j] = ((win[2, :] - win[0, :]) * [1, 2, 1]).sum() / 8
    out = []
    for k in range(orientations):
        a = 2 * np.pi * k / orientations
        energy = np.maximum(gx * np.cos(a) + gy * np.sin(a), 0)
        for r in range(cells):  # adaptive pooling: cell r spans floor(r*h/c) .. ceil((r+1)*h/c)
            for c in range(cells):
                rows = slice(r * h // cells, -(-(r + 1) * h // cells))
                cols = slice(c * w // cells, -(-(c + 1) * w // cells))
                out.append(energy[rows, cols].mean())
    v = np.sqrt(np.array(out))
    return v / np.linalg.norm(v)


def test_matches_a_plain_reference():
    rng = np.random.default_rng(0)
    image = rng.random((13, 10))
    got = OrientedGradientHistogram(1)(torch.from_numpy(image[None, None]).float())
    np.testing.assert_allclose(got[0].numpy(), reference(image), atol=1e-5)


def test_shape_unit_length_and_indifference_to_brightness():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.random((4, 1, 28, 28))).float()
    hog = OrientedGradientHistogram(1)
    out = hog(x)
    assert out.shape == (4, 8 * 4 * 4)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(hog(3.0 * x + 0.5), out, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(hog(x.transpose(2, 3)), out, atol=1e-3)  # it does see the image


def test_a_flat_image_has_no_direction_but_one_grey_level_of_contrast_does():
    hog = OrientedGradientHistogram(1)
    for level in (-3.0, 1.3, 3.0):  # rounding in the filters leaves a norm of ~1e-3
        flat = hog(torch.full((1, 1, 28, 28), level))
        assert float(flat.norm()) < 0.1  # it used to be scaled up to a unit vector of noise
    faint = torch.from_numpy(np.random.default_rng(2).random((1, 1, 28, 28)) * 0.01).float()
    assert float(hog(faint).norm()) == pytest.approx(1.0, abs=1e-5)


def test_a_vertical_edge_lands_in_its_orientations_and_cells():
    x = torch.zeros(1, 1, 16, 16)
    x[:, :, :, 4:] = 1.0  # dark to bright, left to right, at column 4
    out = OrientedGradientHistogram(1)(x).view(8, 4, 4)  # orientation, cell row, cell column
    assert out.sum(dim=(1, 2)).argmax() == 0  # +x
    assert out[1].sum() > 0 and out[7].sum() > 0  # +-45 degrees see part of it
    # nothing along y or pointing -x, nothing in the flat right half (float32 rounding in the
    # convolution leaves ~1e-8 there, 1e-4 after the square root)
    assert out[2:7].max() < 1e-3 and out[:, :, 2:].max() < 1e-3
    assert out[0, :, :2].min() > 0.1


def test_colour_input_uses_the_channel_mean():
    rng = np.random.default_rng(2)
    gray = torch.from_numpy(rng.random((2, 1, 20, 20))).float()
    torch.testing.assert_close(OrientedGradientHistogram(3)(gray.expand(2, 3, 20, 20)),
                               OrientedGradientHistogram(1)(gray))


def test_the_deployed_score_mixes_readout_and_descriptor_by_the_weight():
    torch.manual_seed(0)
    backbone = build_backbone("small_cnn", 1, 28, 28, 16)
    plain = EmbeddingNet(backbone, "features").eval()
    mixed = EmbeddingNet(backbone, "features", hog_weight=0.3).eval()
    assert not [k for k in mixed.state_dict() if not k.startswith("backbone.")]  # loads old runs
    x = torch.randn(6, 1, 28, 28)
    f, h, e = plain(x), OrientedGradientHistogram(1)(x), mixed(x)
    assert e.shape == (6, 512 + 128) and plain(x).shape == (6, 512)
    expected = (f @ f.t() + 0.09 * (h @ h.t())) / 1.09
    torch.testing.assert_close(e @ e.t(), expected, atol=1e-5, rtol=1e-5)
    deployed, training = mixed.deployed_and_training(x)
    torch.testing.assert_close(deployed, e)
    torch.testing.assert_close(training, mixed.training_embedding(x))
    with pytest.raises(InvalidInputError, match="hog_weight"):
        EmbeddingNet(backbone, "features", hog_weight=-1.0)


def test_exports_to_onnx_with_a_dynamic_batch(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    model = EmbeddingNet(build_backbone("small_cnn", 3, 30, 26, 16), "features",
                         hog_weight=0.3, channels=3).eval()
    x = torch.randn(4, 3, 30, 26)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x[:2],), str(path), dynamo=True, external_data=False,
                      opset_version=18, input_names=["images"], output_names=["embeddings"],
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 4):
        got = session.run(None, {"images": x[:batch].numpy()})[0]
        np.testing.assert_allclose(got, model(x[:batch]).detach().numpy(), atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1)])
def test_train_refuses_images_too_small_for_the_histogram_before_training(tmp_path, shape):
    from click.testing import CliRunner
    from model_factory import write_random_people

    from siamese_edge.cli import cli
    from siamese_edge.training.config import TrainConfig
    from siamese_edge.training.trainer import train

    people = write_random_people(tmp_path / "people", ("a", "b", "c", "d"), 6, shape)
    events = []
    options = dict(data=str(people), epochs=1, steps_per_epoch=2, batch_size=8,
                   k_per_identity=2, threads=1)
    with pytest.raises(InvalidInputError, match="too small for the gradient histogram"):
        train(TrainConfig(out=str(tmp_path / "r"), **options), events.append)
    assert not [e for e in events if e["event"] == "step"]
    assert not (tmp_path / "r" / "last.pt").exists()
    result = CliRunner().invoke(cli, ["train", str(people), "--out", str(tmp_path / "c")])
    lines = result.stderr.splitlines()  # what was read, then the error in one line
    assert result.exit_code == 1 and len(lines) == 2 and lines[0].startswith("read 24 images")
    assert lines[1].startswith("error: images of ") and result.stdout == ""
    # without the histogram the network itself trains (and exports) at any size
    train(TrainConfig(out=str(tmp_path / "h0"), hog_weight=0.0, **options))
