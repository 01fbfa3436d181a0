from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamese_edge.camera.detectors import (
    Box, FixedCrop, HaarFaceDetector, WholeFrame, detector_from_roi,
)
from siamese_edge.errors import InvalidInputError

cv2 = pytest.importorskip("cv2")

#: Where the Haar cascade finds the face in scikit-image's 512x512 astronaut photo.
ASTRONAUT_FACE = Box(176, 66, 96, 96)


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a.area + b.area - inter)


@pytest.mark.parametrize("offset,scale", [((64, 0), 1.0), ((0, 60), 0.8), ((300, 120), 0.6),
                                          ((100, 40), 0.7), ((10, 10), 1.2)])
def test_haar_finds_the_astronaut_face_in_a_640x480_frame(astronaut, offset, scale):
    photo = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 100, np.uint8)
    x, y = offset
    h, w = min(480 - y, photo.shape[0]), min(640 - x, photo.shape[1])
    frame[y:y + h, x:x + w] = photo[:h, :w]
    want = Box(round(ASTRONAUT_FACE.x * scale) + x, round(ASTRONAUT_FACE.y * scale) + y,
               round(ASTRONAUT_FACE.w * scale), round(ASTRONAUT_FACE.h * scale))
    boxes = HaarFaceDetector().detect(frame)
    assert boxes, "no face found"
    assert iou(boxes[0], want) > 0.6, (boxes, want)


def test_haar_finds_no_face_in_a_garment(fashion_items):
    frame = cv2.resize(fashion_items["pullover"], (640, 480))
    assert HaarFaceDetector().detect(frame) == []
    assert HaarFaceDetector().detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_bad_cascade_is_an_input_error(tmp_path):
    bad = tmp_path / "cascade.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(InvalidInputError):
        HaarFaceDetector(bad)


def test_whole_frame_and_fixed_crop():
    frame = np.zeros((100, 200, 3), np.uint8)
    assert WholeFrame().detect(frame) == [Box(0, 0, 200, 100)]
    assert FixedCrop(10, 20, 30, 40).detect(frame) == [Box(10, 20, 30, 40)]
    assert FixedCrop(180, 90, 50, 50).detect(frame) == [Box(180, 90, 20, 10)]  # clipped
    assert FixedCrop(300, 0, 10, 10).detect(frame) == []  # outside this frame
    crop = Box(10, 20, 30, 40).crop(frame)
    assert crop.shape == (40, 30, 3)


def test_roi_option():
    assert isinstance(detector_from_roi("whole"), WholeFrame)
    assert isinstance(detector_from_roi("FACE"), HaarFaceDetector)
    assert detector_from_roi("1,2,3,4").box == Box(1, 2, 3, 4)
    for bad in ("eyes", "1,2,3", "1,2,-3,4", "a,b,c,d"):
        with pytest.raises(InvalidInputError):
            detector_from_roi(bad)


def frames_with_faces(astronaut, xs: list[list[int]]) -> list[np.ndarray]:
    """640x480 frames with a 200-pixel-wide astronaut head-crop at each x of each frame."""
    head = astronaut[20:240, 120:320]  # the face and some helmet
    frames = []
    for positions in xs:
        frame = np.full((480, 640, 3), 100, np.uint8)
        for x in positions:
            frame[100:320, x:x + 200] = head
        frames.append(frame)
    return frames


def test_tracking_follows_a_moving_face_with_few_full_searches(astronaut):
    xs = [20 + 8 * i for i in range(30)]
    detector = HaarFaceDetector(refresh_every=10)
    for x, frame in zip(xs, frames_with_faces(astronaut, [[x] for x in xs])):
        got = detector.detect(frame)
        assert len(got) == 1 and iou(got[0], Box(x + 54, 148, 94, 94)) > 0.6, (x, got)
    assert detector.full_searches <= 6  # every 10th frame, and where the ROI search lost it


def test_tracking_notices_a_lost_face_and_finds_a_new_one(astronaut):
    frames = frames_with_faces(astronaut, [[40]] * 3 + [[]] + [[40]] + [[40, 400]] * 12)
    detector = HaarFaceDetector(refresh_every=10)
    counts = [len(detector.detect(frame)) for frame in frames]
    assert counts[:5] == [1, 1, 1, 0, 1]           # the gone face is not "tracked" on
    assert counts[5] == 1 and counts[-1] == 2      # the newcomer: at the next full search
    assert counts.index(2) <= 5 + detector.refresh_every


def test_roi_with_digit_like_characters_int_cannot_read_is_refused():
    with pytest.raises(InvalidInputError, match="expected whole"):
        detector_from_roi("²,0,10,10")


def test_the_face_cascade_is_found_without_the_pip_wheels_data(tmp_path, monkeypatch):
    # a distribution OpenCV (JetPack's python3-opencv) has no cv2.data: --roi face could
    # not work at all there
    import shutil
    import types

    import cv2

    from siamese_edge.camera import detectors

    wheel_copy = Path(cv2.data.haarcascades) / detectors.FACE_CASCADE
    folder = tmp_path / "share" / "opencv4" / "haarcascades"
    folder.mkdir(parents=True)
    shutil.copy(wheel_copy, folder)
    no_data = types.SimpleNamespace()  # an OpenCV module without cv2.data
    monkeypatch.setattr(detectors, "CASCADE_FOLDERS", (str(tmp_path / "none"), str(folder)))
    monkeypatch.delenv("SIAMESE_EDGE_FACE_CASCADE", raising=False)
    assert detectors.default_face_cascade(no_data) == folder / detectors.FACE_CASCADE
    monkeypatch.setenv("SIAMESE_EDGE_FACE_CASCADE", str(wheel_copy))
    assert detectors.default_face_cascade(no_data) == wheel_copy
    monkeypatch.delenv("SIAMESE_EDGE_FACE_CASCADE")
    monkeypatch.setattr(detectors, "CASCADE_FOLDERS", (str(tmp_path / "none"),))
    with pytest.raises(InvalidInputError, match="SIAMESE_EDGE_FACE_CASCADE"):
        detectors.default_face_cascade(no_data)
