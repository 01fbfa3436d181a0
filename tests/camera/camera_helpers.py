"""Helpers shared by the camera tests: recorded videos and a fake live camera."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from siamese_edge.camera.sources import CameraError


def write_video(path: Path, frames_rgb: list[np.ndarray], fourcc: str = "FFV1",
                fps: float = 30.0) -> Path:
    """Write RGB frames as a video (FFV1 is lossless: what is decoded is what was written)."""
    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} {path.suffix}"
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, as OpenCV decodes them (BGR)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


class FakeCamera:
    """A live camera: frame ``i`` is filled with ``i % 256``; it can drop and refuse opens.

    Args:
        period_s: time per frame (a real camera blocks until the next frame).
        drop_after: reads (in total) after which the stream fails once.
        refuse_opens: reopen attempts that fail after the drop.
    """

    def __init__(self, period_s: float = 0.0, drop_after: int | None = None,
                 refuse_opens: int = 0) -> None:
        self.period_s = period_s
        self.drop_after = drop_after
        self.refuse_opens = refuse_opens
        self.next_index = 0
        self.opens = 0
        self.dropped = False
        self.released = 0

    def open(self) -> FakeCamera:
        self.opens += 1
        if self.dropped and self.refuse_opens > 0:
            self.refuse_opens -= 1
            raise CameraError("--camera fake: cannot open (connection refused)")
        return self

    def read(self):
        if self.period_s:
            time.sleep(self.period_s)
        if self.drop_after is not None and self.next_index == self.drop_after and \
                not self.dropped:
            self.dropped = True
            return False, None
        frame = np.full((8, 8, 3), self.next_index % 256, np.uint8)
        self.next_index += 1
        return True, frame

    def release(self) -> None:
        self.released += 1
