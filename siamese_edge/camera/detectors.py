"""Regions of interest: where in a frame the thing to verify is.

A detector maps an RGB frame to boxes; the loop embeds the crops. Plug in another detector
(an ONNX face detector, a person detector) by subclassing :class:`Detector`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siamese_edge.errors import InvalidInputError


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left ``(x, y)``, size ``w x h``."""

    x: int
    y: int
    w: int
    h: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return image[self.y:self.y + self.h, self.x:self.x + self.w]

    def clip(self, width: int, height: int) -> Box | None:
        """This box cut to a ``width x height`` frame; None when nothing is left."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return Box(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


class Detector(ABC):
    """``detect(frame_rgb) -> list[Box]``, boxes inside the frame, most prominent first."""

    name = "detector"

    @abstractmethod
    def detect(self, frame: np.ndarray) -> list[Box]:
        """Boxes in a uint8 ``(H, W, 3)`` RGB frame."""


class WholeFrame(Detector):
    """The whole frame is the region (the embedder resizes it to the model's input)."""

    name = "whole"

    def detect(self, frame: np.ndarray) -> list[Box]:
        return [Box(0, 0, frame.shape[1], frame.shape[0])]


class FixedCrop(Detector):
    """A fixed box, e.g. where a turnstile camera always sees the face; clipped to the frame."""

    name = "crop"

    def __init__(self, x: int, y: int, w: int, h: int) -> None:
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise InvalidInputError(f"--roi {x},{y},{w},{h}: need x,y >= 0 and w,h > 0")
        self.box = Box(x, y, w, h)

    def detect(self, frame: np.ndarray) -> list[Box]:
        clipped = self.box.clip(frame.shape[1], frame.shape[0])
        return [clipped] if clipped is not None else []


FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
#: where distributions install OpenCV's cascades (Debian/Ubuntu's python3-opencv, which
#: JetPack images use, has no cv2.data; the pip wheels do)
CASCADE_FOLDERS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
                   "/usr/local/share/opencv4/haarcascades",
                   "/usr/local/share/opencv/haarcascades")


def default_face_cascade(cv2) -> Path:
    """The frontal-face cascade: ``$SIAMESE_EDGE_FACE_CASCADE``, else the one the OpenCV
    wheel ships (``cv2.data``), else a distribution's copy.

    Raises:
        InvalidInputError: none of them exists.
    """
    import os

    chosen = os.environ.get("SIAMESE_EDGE_FACE_CASCADE")
    if chosen:
        return Path(chosen)
    folders = [getattr(getattr(cv2, "data", None), "haarcascades", None), *CASCADE_FOLDERS]
    for folder in folders:
        if folder and (Path(folder) / FACE_CASCADE).is_file():
            return Path(folder) / FACE_CASCADE
    raise InvalidInputError(f"no Haar face cascade found (cv2.data, "
                            f"{', '.join(CASCADE_FOLDERS)}"
                            f"); install OpenCV's data (e.g. apt-get install opencv-data) or "
                            f"set SIAMESE_EDGE_FACE_CASCADE to {FACE_CASCADE}")


class HaarFaceDetector(Detector):
    """Frontal faces with OpenCV's Haar cascade shipped inside opencv-python (no download).

    A full search over every position and scale costs ~15-35 ms on a 640x480 frame, too slow
    for 25 FPS on two cores. So, like most real-time face pipelines, it searches the whole
    frame every ``refresh_every`` frames and in between only around the faces it found last
    time (a window twice a face's size, scales 0.75x-1.33x, ~1-2 ms). A face that appears
    while others are tracked is found at the next full search; when a tracked face is lost
    the frame is searched in full at once. ``refresh_every=1`` searches every frame in full.

    Args:
        cascade: a cascade XML; default ``haarcascade_frontalface_alt2.xml`` from
            ``cv2.data.haarcascades`` (on 320-pixel-wide frames it found the test faces
            at every scale that ``_default`` missed some of, and was the fastest).
        detect_width: frames wider than this are shrunk before detection (speed); boxes are
            scaled back to the frame.
        scale_factor, min_neighbors: passed to ``detectMultiScale``.
        min_face: smallest face side in frame pixels (smaller faces are not searched for:
            each halving of it roughly doubles the detection time).
        max_faces: keep the largest ones.
        margin: grow each box by this fraction of its side (the embedder sees some context).
        refresh_every: frames between full searches while faces are tracked.
    """

    name = "face"

    def __init__(self, cascade: str | Path | None = None, detect_width: int = 320,
                 scale_factor: float = 1.2, min_neighbors: int = 3, min_face: int = 48,
                 max_faces: int = 4, margin: float = 0.0, refresh_every: int = 10) -> None:
        import cv2

        if cascade is None:
            cascade = default_face_cascade(cv2)
        try:
            self._classifier = cv2.CascadeClassifier(str(cascade))
        except (cv2.error, SystemError):  # a malformed XML raises instead of staying empty
            self._classifier = None
        if self._classifier is None or self._classifier.empty():
            raise InvalidInputError(f"{cascade}: not a readable Haar cascade")
        self.detect_width = detect_width
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face = min_face
        self.max_faces = max_faces
        self.margin = margin
        self.refresh_every = max(1, int(refresh_every))
        self._tracked: list[tuple[int, int, int, int]] = []  # in detection pixels
        self._since_full = 0
        self.full_searches = 0

    def reset(self) -> None:
        """Forget tracked faces: the next frame is searched in full."""
        self._tracked = []
        self._since_full = 0

    def _search(self, gray: np.ndarray, min_side: int, max_side: int = 0) -> list:
        found = self._classifier.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side), maxSize=(max_side, max_side))
        return [tuple(int(v) for v in box) for box in (found if len(found) else [])]

    def _search_near(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> list:
        x, y, w, h = box
        side = max(w, h)
        x0, y0 = max(0, x - side // 2), max(0, y - side // 2)
        x1, y1 = min(gray.shape[1], x + w + side // 2), min(gray.shape[0], y + h + side // 2)
        found = self._search(gray[y0:y1, x0:x1], max(8, int(side * 0.75)),
                             int(side * 1.33) + 1)
        return [(fx + x0, fy + y0, fw, fh) for fx, fy, fw, fh in found]

    def detect(self, frame: np.ndarray) -> list[Box]:
        import cv2

        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 and \
            frame.shape[2] == 3 else frame.reshape(height, width)
        if scale < 1.0:
            gray = cv2.resize(gray, (round(width * scale), round(height * scale)),
                              interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        found: list = []
        if self._tracked and self._since_full < self.refresh_every:
            for box in self._tracked:
                near = self._search_near(gray, box)
                if near:
                    found.append(max(near, key=lambda b: b[2] * b[3]))
            if len(found) < len(self._tracked):  # a face was lost: look everywhere
                found = []
        if found:
            self._since_full += 1
        else:
            found = self._search(gray, max(8, round(self.min_face * scale)))
            self._since_full = 1
            self.full_searches += 1
        found.sort(key=lambda b: b[2] * b[3], reverse=True)
        self._tracked = found[:self.max_faces]
        boxes = []
        for x, y, w, h in self._tracked:
            grow = self.margin * max(w, h)
            box = Box(round((x - grow) / scale), round((y - grow) / scale),
                      round((w + 2 * grow) / scale), round((h + 2 * grow) / scale))
            clipped = box.clip(width, height)
            if clipped is not None:
                boxes.append(clipped)
        return boxes


def regions_in_frame(detector: Detector, frame: np.ndarray) -> list[Box]:
    """``detector``'s boxes cut to the frame, empty ones dropped (in the detector's order).

    A plugged-in detector may return boxes that stick out of the frame: cropped as they
    are, a negative corner wraps around (NumPy slicing) and an empty crop makes the
    embedder's resize raise.
    """
    height, width = frame.shape[:2]
    boxes = (box.clip(width, height) for box in detector.detect(frame))
    return [box for box in boxes if box is not None]


def parse_roi(roi: str) -> str | tuple[int, int, int, int]:
    """``--roi`` text → ``"whole"``, ``"face"`` or an ``(x, y, w, h)`` box.

    Raises:
        InvalidInputError: anything else, or a box with a negative corner or no area.
    """
    text = roi.strip().lower()
    if text in ("whole", "face"):
        return text
    parts = text.split(",")
    if len(parts) == 4 and all(p.strip().lstrip("-").isdecimal() for p in parts):
        x, y, w, h = (int(p) for p in parts)
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise InvalidInputError(f"--roi {x},{y},{w},{h}: need x,y >= 0 and w,h > 0")
        return x, y, w, h
    raise InvalidInputError(f"--roi {roi}: expected whole, face or x,y,w,h")


def detector_from_roi(roi: str) -> Detector:
    """``--roi`` text → detector: ``whole``, ``face`` or ``x,y,w,h``.

    Raises:
        InvalidInputError: anything else (see :func:`parse_roi`).
    """
    parsed = parse_roi(roi)
    if parsed == "whole":
        return WholeFrame()
    if parsed == "face":
        return HaarFaceDetector()
    return FixedCrop(*parsed)
