"""Annotated output: the video file sink."""

from __future__ import annotations

import numpy as np
import pytest
from camera_helpers import read_video

from siamese_edge.camera.annotate import VideoFileSink

cv2 = pytest.importorskip("cv2")


def test_frames_of_another_size_are_written_not_dropped(tmp_path):
    path = tmp_path / "out.avi"
    sink = VideoFileSink(path, fps=10)
    for _ in range(3):
        sink.write(np.zeros((32, 32, 3), np.uint8))
    for _ in range(3):  # the stream came back at another resolution
        sink.write(np.full((48, 64, 3), 255, np.uint8))
    sink.close()
    frames = read_video(path)
    assert len(frames) == 6 and {f.shape for f in frames} == {(32, 32, 3)}
    assert frames[-1].mean() > 200  # the later frames, scaled to the first size
