"""Video frames are held to the still-image pixel cap: a 4.5 MB MJPEG file of 16000x16000
frames took 3.7 GB (and gave a cv2.error traceback under a memory limit)."""

from __future__ import annotations

import numpy as np
import pytest
from camera_helpers import FakeCamera, write_video

from siamese_edge.camera import capture as capture_module
from siamese_edge.camera.capture import Backoff, FrameGrabber
from siamese_edge.camera.sources import (
    CameraError, FrameTooLargeError, open_capture, parse_source,
)
from siamese_edge.runtime import imageio


@pytest.fixture()
def clip(tmp_path):
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)]
    return write_video(tmp_path / "clip.avi", frames, fourcc="MJPG")


def test_a_video_declaring_frames_over_the_cap_is_refused_at_open(clip, monkeypatch):
    monkeypatch.setattr(imageio, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with pytest.raises(FrameTooLargeError) as info:
        open_capture(parse_source(str(clip)))
    message = str(info.value)
    assert "64x48" in message and str(clip) in message and "\n" not in message
    assert isinstance(info.value, CameraError)
    monkeypatch.setattr(imageio, "MAX_IMAGE_PIXELS", 64 * 48)  # at the cap: fine
    capture = open_capture(parse_source(str(clip)))
    try:
        assert capture.read()[0]
    finally:
        capture.release()


def test_frames_over_the_cap_are_refused_as_read_before_any_copy(monkeypatch):
    # a source that does not declare its size at open (or changes it) is caught per frame
    monkeypatch.setattr(imageio, "MAX_IMAGE_PIXELS", 8 * 8 - 1)
    converted = []
    real = capture_module.to_rgb_or_gray
    monkeypatch.setattr(capture_module, "to_rgb_or_gray",
                        lambda image, bgr=False: converted.append(1) or real(image, bgr))
    camera = FakeCamera()
    with FrameGrabber(camera.open, live=True) as grabber:
        with pytest.raises(FrameTooLargeError, match="8x8 pixels are over the limit of 63"):
            grabber.read(timeout=5)
    assert converted == [] and grabber.frames_read == 0


def test_frames_at_the_cap_pass(monkeypatch):
    monkeypatch.setattr(imageio, "MAX_IMAGE_PIXELS", 8 * 8)
    camera = FakeCamera()
    with FrameGrabber(camera.open, live=True) as grabber:
        assert grabber.read(timeout=5).image.shape == (8, 8, 3)


def test_a_stream_reopened_with_oversized_frames_is_not_retried(monkeypatch):
    camera = FakeCamera(drop_after=2)
    opens = []

    def open_reader():
        opens.append(1)
        if len(opens) > 1:  # the stream comes back at a size over the cap
            raise FrameTooLargeError("--camera fake: frames of 99999x99999 pixels are over "
                                     "the limit")
        return camera.open()

    events = []
    grabber = FrameGrabber(open_reader, live=True, on_status=events.append,
                           backoff=Backoff(initial_s=0.01, max_s=0.01))
    with grabber:
        with pytest.raises(FrameTooLargeError):
            while grabber.read(timeout=5) is not None:
                pass
    assert len(opens) == 2  # refused once, not reopened for ever as an outage
    assert "reopen_failed" not in [e["event"] for e in events]


def test_camera_verify_on_an_oversized_video_is_a_one_line_error(embedder, matcher_factory,
                                                                  clip, monkeypatch):
    from siamese_edge.cli.camera import CameraOptions, run_camera_verify

    monkeypatch.setattr(imageio, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(CameraError) as info:
        run_camera_verify(embedder, matcher_factory(), str(clip), CameraOptions(),
                          lambda e: None)
    assert "over the limit of 1000 pixels" in str(info.value)
    assert "\n" not in str(info.value)
    assert not embedder._active  # noqa: SLF001 - nothing left open
