from __future__ import annotations

import socket

import numpy as np
import pytest

from siamese_edge.camera.sources import (
    CameraError, csi_pipeline, gstreamer_available, open_capture, parse_source,
)
from siamese_edge.errors import SiameseEdgeError


def test_device_index_and_path():
    assert parse_source("0").kind == "device" and parse_source("0").target == 0
    assert parse_source(2).target == 2
    source = parse_source("/dev/video3")
    assert (source.kind, source.target, source.live) == ("device", "/dev/video3", True)


@pytest.mark.parametrize("url", ["rtsp://10.0.0.2:554/stream1", "http://cam.local/mjpg",
                                 "https://cam.local/video", "RTSP://host/x"])
def test_stream_urls(url):
    source = parse_source(url)
    assert (source.kind, source.target, source.live) == ("stream", url, True)
    assert source.backend_name == "FFMPEG"


def test_csi_builds_the_nvargus_pipeline():
    source = parse_source("csi://1")
    assert source.kind == "gstreamer"
    assert source.target.startswith("nvarguscamerasrc sensor-id=1 !")
    assert source.target.endswith("appsink drop=true max-buffers=1")
    assert source.target == csi_pipeline(1)


def test_v4l2_builds_a_v4l2src_pipeline():
    assert parse_source("v4l2://2").target.startswith("v4l2src device=/dev/video2 !")
    assert "device=/dev/video0" in parse_source("v4l2:///dev/video0").target


def test_raw_pipeline_is_passed_through():
    text = "videotestsrc ! videoconvert ! appsink"
    assert parse_source(text).target == text and parse_source(text).kind == "gstreamer"


def test_file(tmp_path):
    video = tmp_path / "clip.avi"
    video.write_bytes(b"x")
    source = parse_source(str(video))
    assert (source.kind, source.live) == ("file", False)


@pytest.mark.parametrize("text", ["", "csi://front", "v4l2://usb", "missing.avi"])
def test_unparseable_sources(text):
    with pytest.raises(CameraError) as info:
        parse_source(text)
    assert "\n" not in str(info.value)


def _one_line_open_error(text: str) -> str:
    with pytest.raises(CameraError) as info:
        open_capture(parse_source(text), open_timeout_s=2, read_timeout_s=2)
    assert isinstance(info.value, SiameseEdgeError)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--camera {text}")
    return message


def test_missing_device_is_one_line():
    assert "cannot open" in _one_line_open_error("/dev/video99")


def test_not_a_video_is_one_line(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 100)
    assert "cannot open" in _one_line_open_error(str(junk))


def test_refused_stream_is_one_line():
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "server" in _one_line_open_error(f"http://127.0.0.1:{port}/video")


def test_gstreamer_without_support_says_why():
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer")
    assert "GStreamer" in _one_line_open_error("csi://0")


@pytest.mark.parametrize("text", ["²", "csi://²", "v4l2://³", "1²"])
def test_digit_like_characters_int_cannot_read_are_one_line_errors(text):
    with pytest.raises(SiameseEdgeError):
        parse_source(text)


def test_an_opencv_without_the_timeout_form_still_opens_files(tmp_path, monkeypatch):
    # OpenCV before 4.5.2 (JetPack 5's distribution build is 4.2) has no
    # VideoCapture(target, backend, params): every camera command died with a TypeError
    import cv2

    from siamese_edge.camera.sources import open_capture, parse_source

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    for _ in range(3):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    real = cv2.VideoCapture
    calls = []

    def old_opencv(*args):
        calls.append(len(args))
        if len(args) > 2:
            raise TypeError("VideoCapture() takes at most 2 arguments (3 given)")
        return real(*args)

    monkeypatch.setattr(cv2, "VideoCapture", old_opencv)
    capture = open_capture(parse_source(str(video)))
    try:
        assert capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    assert calls[-1] == 2
