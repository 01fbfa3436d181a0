from pathlib import Path

import cv2
import numpy as np
import pytest

from siamese_edge.errors import ImageReadError
from siamese_edge.runtime.imageio import read_image, write_image


def test_reads_colour_as_rgb_and_gray_as_one_channel(tmp_path: Path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    cv2.imwrite(str(tmp_path / "g.png"), np.full((4, 6), 77, np.uint8))
    colour = read_image(tmp_path / "c.png")
    assert colour.shape == (5, 7, 3) and colour[0, 0].tolist() == [0, 0, 200]
    gray = read_image(tmp_path / "g.png")
    assert gray.shape == (4, 6, 1) and gray.max() == 77


def test_write_then_read_round_trip(tmp_path: Path):
    image = np.random.default_rng(0).integers(0, 255, (9, 8, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", image)
    assert np.array_equal(read_image(tmp_path / "x.png"), image)


@pytest.mark.parametrize("content,why", [(b"", "empty"), (b"not an image at all", "readable"),
                                         (None, "no such file")])
def test_bad_files_raise_one_line_errors(tmp_path: Path, content, why):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=why) as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_truncated_png_is_refused(tmp_path: Path):
    ok, data = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (64, 64),
                                                                        dtype=np.uint8))
    (tmp_path / "t.png").write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "t.png")


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0), (4, 4, 0), (0, 0, 4)])
def test_an_empty_array_is_a_one_line_error_not_a_cv2_error(shape):
    from siamese_edge.runtime.imageio import to_rgb_or_gray
    from siamese_edge.runtime.preprocess import fit_image

    with pytest.raises(ImageReadError, match="empty image"):
        to_rgb_or_gray(np.zeros(shape, np.uint8), bgr=True)
    with pytest.raises(ImageReadError, match="empty image"):
        fit_image(np.zeros(shape, np.uint8), 28, 28, 1)


def test_a_name_with_a_nul_byte_is_a_read_error_not_a_crash(tmp_path: Path):
    with pytest.raises(ImageReadError, match="NUL byte"):
        read_image(str(tmp_path / "bad\x00name.png"))


def test_exif_orientation_is_applied(tmp_path: Path):
    """Phones store photos sideways with an EXIF orientation tag; read as stored, the same
    picture came out rotated and matched nothing."""
    Image = pytest.importorskip("PIL.Image", reason="writing an EXIF tag needs Pillow")
    upright = np.zeros((40, 60, 3), np.uint8)
    upright[5:15, 5:50] = (250, 30, 30)  # a wide red bar near the top: not symmetric
    upright[25:38, 40:58] = (30, 30, 250)
    Image.fromarray(upright).save(tmp_path / "plain.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1))).save(
        tmp_path / "sideways.jpg", quality=95, exif=exif)
    plain, sideways = read_image(tmp_path / "plain.jpg"), read_image(tmp_path / "sideways.jpg")
    assert sideways.shape == plain.shape == (40, 60, 3)
    assert np.abs(sideways.astype(int) - plain.astype(int)).mean() < 3


def test_an_unsupported_pixel_type_names_the_file(tmp_path: Path):
    path = tmp_path / "signed.tiff"
    assert cv2.imwrite(str(path), np.full((4, 4), -5, np.int16))
    with pytest.raises(ImageReadError, match=r"signed\.tiff: unsupported image dtype int16"):
        read_image(path)


@pytest.mark.parametrize("values,expected", [((0.0, 0.5, 1.0), (0, 128, 255)),
                                             ((0.0, 100.0, 255.0), (0, 100, 255))])
def test_float_images_in_either_range_are_read(tmp_path: Path, values, expected):
    path = tmp_path / "f.tiff"
    assert cv2.imwrite(str(path), np.array([values], np.float32))
    assert read_image(path)[0, :, 0].tolist() == list(expected)  # 0..255 was all white


def test_float_images_outside_both_ranges_are_refused(tmp_path: Path):
    path = tmp_path / "hdr.tiff"
    assert cv2.imwrite(str(path), np.array([[0.0, 1000.0]], np.float32))
    with pytest.raises(ImageReadError, match=r"hdr\.tiff: float image with values in \[0, 1000\]"):
        read_image(path)
