"""Drawing decisions on frames, and the two places annotated frames go: a video file and a
window.

Colours: green = accepted (after voting), amber = matches but not yet voted in, red =
unknown or rejected.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from siamese_edge.errors import InvalidInputError

GREEN, AMBER, RED = (0, 200, 0), (0, 190, 255), (0, 0, 230)  # BGR


def draw_decisions(frame_rgb: np.ndarray, decisions: list[dict], fps: float | None) -> np.ndarray:
    """A BGR copy of the frame with each decision's box, name and score, and the FPS."""
    import cv2

    image = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    scale = max(0.4, image.shape[1] / 1280)
    thickness = max(1, round(2 * scale))
    for decision in decisions:
        x, y, w, h = decision["box"]
        colour = GREEN if decision["accepted"] else AMBER if decision["match"] else RED
        name = decision["identity"] or "unknown"
        label = f"{name} {decision['score']:.2f}"
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), colour, thickness)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        top = max(0, y - th - base - 2)
        cv2.rectangle(image, (x, top), (x + tw + 2, top + th + base + 2), colour, -1)
        cv2.putText(image, label, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(image, f"{fps:.1f} FPS", (8, round(24 * scale) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (255, 255, 255), thickness,
                    cv2.LINE_AA)
    return image


class FrameSink(Protocol):
    """Receives every annotated frame (BGR)."""

    def write(self, frame_bgr: np.ndarray) -> None: ...

    def close(self) -> None: ...


class VideoFileSink:
    """``--output FILE``: the annotated video (MJPG in .avi, mp4v in .mp4, FFV1 in .mkv).

    The writer opens on the first frame, when the frame size is known; later frames of
    another size (a stream reopened at another resolution) are resized to it, since the
    writer silently drops frames whose size differs.
    """

    FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "FFV1"}

    def __init__(self, path: str | os.PathLike[str], fps: float = 25.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in self.FOURCC:
            raise InvalidInputError(f"--output {path}: use .avi, .mp4 or .mkv")
        if not self.path.parent.is_dir():
            raise InvalidInputError(f"--output {path}: folder {self.path.parent} does not exist")
        self.fps = fps if fps and 0 < fps <= 240 else 25.0
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*self.FOURCC[self.path.suffix.lower()])
            height, width = frame_bgr.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise InvalidInputError(f"--output {self.path}: OpenCV cannot write this video")
            self._size = (width, height)
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame_bgr)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def display_available() -> bool:
    """A window can be shown: a display is set and this OpenCV has a GUI (not -headless)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import cv2

    try:
        cv2.namedWindow("siamese-edge", cv2.WINDOW_NORMAL)
    except cv2.error:
        return False
    return True


class WindowSink:
    """``--show``: the annotated frames in a window; ``q`` or Esc asks the loop to stop."""

    def __init__(self, title: str = "siamese-edge") -> None:
        self.title = title
        self.quit_requested = False

    def write(self, frame_bgr: np.ndarray) -> None:
        import cv2

        cv2.imshow(self.title, frame_bgr)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True

    def close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
