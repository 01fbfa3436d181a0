import numpy as np

from siamese_edge.runtime.preprocess import fit_image, fit_images, normalize


def test_fit_converts_channels_and_size():
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    gray = fit_image(rgb, 28, 28, 1)
    assert gray.shape == (28, 28, 1)
    assert abs(int(gray[0, 0, 0]) - 76) <= 1  # ITU-R 601 luma of red
    back = fit_image(np.full((10, 10), 9, np.uint8), 12, 14, 3)
    assert back.shape == (12, 14, 3) and (back == 9).all()


def test_fit_images_keeps_ready_batches_and_stacks_mixed_ones():
    ready = np.zeros((2, 8, 8, 1), np.uint8)
    assert fit_images(ready, 8, 8, 1) is ready
    mixed = fit_images([np.zeros((3, 3), np.uint8), np.ones((9, 5, 4), np.uint8)], 8, 8, 1)
    assert mixed.shape == (2, 8, 8, 1)
    # a ready-looking batch of another width or channel count is fitted, not passed through
    for shape in ((2, 8, 6, 1), (2, 8, 8, 3), (2, 6, 8, 1)):
        assert fit_images(np.zeros(shape, np.uint8), 8, 8, 1).shape == (2, 8, 8, 1)


def test_normalize_matches_formula():
    batch = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = normalize(batch, mean, std)
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32
    for c in range(3):
        expected = (batch[..., c] / 255.0 - mean[c]) / std[c]
        np.testing.assert_allclose(out[:, c], expected, rtol=1e-5, atol=1e-5)
