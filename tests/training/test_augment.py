"""The augmenter's warp, on images whose answer is known."""

import pytest

torch = pytest.importorskip("torch")

from siamese_edge.training.augment import Augmenter  # noqa: E402


def disk(height: int, width: int) -> "torch.Tensor":
    y = torch.arange(height).view(-1, 1) - (height - 1) / 2
    x = torch.arange(width).view(1, -1) - (width - 1) / 2
    return ((x ** 2 + y ** 2) <= 12 ** 2).float().view(1, 1, height, width)


def spread(image: "torch.Tensor") -> "torch.Tensor":
    """Eigenvalues of the intensity's second moments, in pixels: equal for a disk."""
    h, w = image.shape[-2:]
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                          torch.arange(w, dtype=torch.float64), indexing="ij")
    weight = image[0, 0].double()
    total = weight.sum()
    my, mx = (weight * y).sum() / total, (weight * x).sum() / total
    cov = torch.tensor([[(weight * (x - mx) ** 2).sum(), (weight * (x - mx) * (y - my)).sum()],
                        [(weight * (x - mx) * (y - my)).sum(), (weight * (y - my) ** 2).sum()]])
    return torch.linalg.eigvalsh(cov / total)


@pytest.mark.parametrize("height,width", [(41, 121), (121, 41), (61, 61)])
def test_rotation_is_a_rotation_on_any_aspect_ratio(height, width):
    # a disk rotated stays a disk; the old warp sheared it into an ellipse when H != W
    augment = Augmenter(shift=0.0, rotation_deg=30.0, scale=0.0, brightness=0.0,
                        contrast=0.0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        low, high = spread(augment(disk(height, width), generator))
        assert high / low == pytest.approx(1.0, abs=0.03)


def test_a_seed_gives_the_same_batch_and_images_get_their_own_warps():
    batch = torch.rand(4, 3, 20, 30)
    first = Augmenter()(batch, torch.Generator().manual_seed(7))
    again = Augmenter()(batch, torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    same = Augmenter()(batch[:1].repeat(4, 1, 1, 1), torch.Generator().manual_seed(7))
    assert not torch.allclose(same[0], same[1])  # per image, not one warp for the batch
