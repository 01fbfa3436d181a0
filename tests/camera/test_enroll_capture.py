"""Enrolment from a camera: N distinct good crops."""

from __future__ import annotations

import numpy as np
import pytest
from camera_helpers import write_video

from siamese_edge.camera.sources import CameraError
from siamese_edge.cli.camera import capture_enrolment
from siamese_edge.errors import InvalidInputError

cv2 = pytest.importorskip("cv2")


def test_keeps_distinct_frames_and_skips_repeats(tmp_path, embedder, fashion_items):
    roles = ["pullover"] * 4 + ["sandal"] * 3 + ["stranger"] * 3 + ["pullover"] * 2
    video = write_video(tmp_path / "enrol.avi", [fashion_items[r] for r in roles])
    events: list[dict] = []
    crops = capture_enrolment(embedder, str(video), samples=3, roi="whole", emit=events.append)
    assert [c.shape for c in crops] == [(128, 128, 3)] * 3
    assert [np.array_equal(c, fashion_items[r]) for c, r in
            zip(crops, ["pullover", "sandal", "stranger"])] == [True] * 3
    kept = [e["frame"] for e in events if e["event"] == "enrol_sample"]
    assert kept == [0, 4, 7]  # and it stopped there: the last pullovers were not needed
    skips = [e for e in events if e["event"] == "enrol_skip"]
    assert len(skips) == 5 and all("too similar" in e["reason"] for e in skips)


def test_face_enrolment_skips_frames_without_a_face(tmp_path, embedder, astronaut):
    blank = np.full((480, 640, 3), 120, np.uint8)

    def placed(photo, x):
        frame = blank.copy()
        frame[:, x:x + 512] = photo[:480]
        return frame

    frames = [blank, blank, placed(astronaut, 64), placed(astronaut, 64), blank,
              placed(astronaut[:, ::-1], 100), blank]
    video = write_video(tmp_path / "faces.avi", frames)
    events: list[dict] = []
    crops = capture_enrolment(embedder, str(video), samples=2, roi="face",
                              max_similarity=1.0, emit=events.append)
    assert len(crops) == 2
    assert all(60 < c.shape[0] < 160 and c.shape[0] == c.shape[1] for c in crops)
    reasons = [e["reason"] for e in events if e["event"] == "enrol_skip"]
    assert reasons == ["no detection", "no detection", "too similar to the last kept sample",
                       "no detection"]


def test_fewer_crops_when_the_source_ends(tmp_path, embedder, fashion_items):
    video = write_video(tmp_path / "short.avi", [fashion_items["sandal"]] * 5)
    assert len(capture_enrolment(embedder, str(video), samples=3, roi="whole")) == 1


def test_bad_arguments(embedder):
    with pytest.raises(InvalidInputError):
        capture_enrolment(embedder, "0", samples=0)
    with pytest.raises(CameraError):
        capture_enrolment(embedder, "/dev/video99", samples=2)


def test_a_detector_box_with_a_negative_corner_does_not_wrap_around(tmp_path, embedder,
                                                                    fashion_items):
    from siamese_edge.camera.detectors import Box, Detector

    class Overhanging(Detector):
        def detect(self, frame):
            return [Box(-32, -32, 96, 96)]

    video = write_video(tmp_path / "one.avi", [fashion_items["sandal"]])
    crops = capture_enrolment(embedder, str(video), samples=1, detector=Overhanging())
    assert len(crops) == 1 and np.array_equal(crops[0], fashion_items["sandal"][:64, :64])


def test_bad_samples_still_stops_the_started_grabber(embedder):
    from camera_helpers import FakeCamera

    from siamese_edge.camera.capture import FrameGrabber
    from siamese_edge.camera.detectors import WholeFrame
    from siamese_edge.camera.enroll_capture import collect_enrolment_crops

    grabber = FrameGrabber(FakeCamera(period_s=0.01).open, live=True).start()
    with pytest.raises(InvalidInputError, match="--samples 0"):
        collect_enrolment_crops(grabber, embedder, WholeFrame(), samples=0)
    assert not grabber.alive


class SameVector:
    """An embedder giving every crop one unit float32 vector whose float32 cosine with
    itself exceeds 1.0, as identical crops' embeddings do."""

    def __init__(self) -> None:
        from siamese_edge.runtime.embedder import l2_normalize

        rng = np.random.default_rng(0)
        while True:
            v = l2_normalize(rng.normal(size=(1, 8)).astype(np.float32))[0]
            if float(v @ v) > 1.0:
                self.vector = v
                return

    def embed(self, crops):
        return np.stack([self.vector] * len(crops))


@pytest.mark.parametrize("max_similarity,kept", [(1.0, 3), (1.5, 3), (0.99, 1)])
def test_max_similarity_of_one_switches_the_similarity_test_off(max_similarity, kept):
    from camera_helpers import FakeCamera

    from siamese_edge.camera.capture import FrameGrabber
    from siamese_edge.camera.detectors import WholeFrame
    from siamese_edge.camera.enroll_capture import collect_enrolment_crops

    grabber = FrameGrabber(FakeCamera(period_s=0.001).open, live=True).start()
    crops = collect_enrolment_crops(grabber, SameVector(), WholeFrame(), samples=3,
                                    max_similarity=max_similarity, min_pixel_change=0.0,
                                    max_frames=20)
    assert len(crops) == kept
