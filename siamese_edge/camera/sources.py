"""Camera sources: what ``--camera SRC`` means and how it is opened.

``SRC`` may be:

========================  ===============================================  ============
text                      meaning                                          backend
========================  ===============================================  ============
``0``, ``/dev/video0``    a local (USB/V4L2) camera                        V4L2 (Linux)
``clip.avi``              a video file: read once, every frame, then end   FFmpeg
``rtsp://…``, ``http://…`` a network stream (``https://``, ``rtmp://`` too)  FFmpeg
``csi://0``               Jetson CSI camera: nvarguscamerasrc pipeline     GStreamer
``v4l2://0``              USB camera through a GStreamer v4l2src pipeline  GStreamer
``a ! b ! appsink``       a raw GStreamer pipeline (contains ``!``)        GStreamer
========================  ===============================================  ============

PyPI's opencv-python has no GStreamer: on a Jetson use the distribution's ``python3-opencv``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from siamese_edge.errors import InvalidInputError

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")

#: How long opening and reading a network stream may block before OpenCV gives up.
DEFAULT_OPEN_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 5.0


class CameraError(InvalidInputError):
    """A camera or stream cannot be opened (shown in one line by the CLI)."""


class FrameTooLargeError(CameraError):
    """The source's frames are over :data:`~siamese_edge.runtime.imageio.MAX_IMAGE_PIXELS`.

    Not a passing outage: a live source is not reopened for it (it would send the same)."""


def check_frame_size(width: int, height: int, where: str) -> None:
    """Refuse frames over the still-image pixel cap: a video has none of its own, and a
    4.5 MB MJPEG file of 16000x16000 frames took 3.7 GB (a cv2.error traceback under a
    memory limit), three copies of each frame being decoded, converted and resized.

    Raises:
        FrameTooLargeError: ``width * height`` is over the cap (unknown sizes, 0, pass).
    """
    from siamese_edge.runtime.imageio import MAX_IMAGE_PIXELS

    if width > 0 and height > 0 and width * height > MAX_IMAGE_PIXELS:
        raise FrameTooLargeError(f"{where}: frames of {width}x{height} pixels are over the "
                                 f"limit of {MAX_IMAGE_PIXELS} pixels")


@dataclass(frozen=True)
class CameraSource:
    """A parsed ``--camera`` value.

    Attributes:
        text: what the user typed.
        kind: ``device``, ``file``, ``stream`` or ``gstreamer``.
        target: what ``cv2.VideoCapture`` is given (device index, path, URL or pipeline).
        live: frames arrive in real time (keep only the newest, reopen when lost); a file is
            not live: every frame is read in order and the end is the end.
    """

    text: str
    kind: str
    target: Union[int, str]
    live: bool

    @property
    def backend_name(self) -> str:
        return {"device": "V4L2" if sys.platform.startswith("linux") else "ANY",
                "file": "FFMPEG", "stream": "FFMPEG", "gstreamer": "GSTREAMER"}[self.kind]


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30,
                 flip_method: int = 0) -> str:
    """The GStreamer pipeline of a Jetson CSI camera (nvarguscamerasrc → BGR appsink)."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! video/x-raw(memory:NVMM),width={width},"
            f"height={height},format=NV12,framerate={fps}/1 ! nvvidconv flip-method={flip_method}"
            " ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1")


def v4l2_pipeline(device: str = "/dev/video0", width: int = 640, height: int = 480,
                  fps: int = 30) -> str:
    """A GStreamer pipeline of a USB camera delivering MJPEG (v4l2src → jpegdec → appsink)."""
    return (f"v4l2src device={device} ! image/jpeg,width={width},height={height},"
            f"framerate={fps}/1 ! jpegdec ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1")


def parse_source(text: str | int) -> CameraSource:
    """Turn a ``--camera`` value into a :class:`CameraSource` (no device is touched).

    Raises:
        CameraError: the value is empty, or names a file that does not exist.
    """
    raw = str(text).strip()
    # isdecimal below, not isdigit: "²".isdigit() is True but int("²") raises
    if not raw:
        raise CameraError("--camera: empty source")
    if "!" in raw:
        return CameraSource(raw, "gstreamer", raw, live=True)
    lower = raw.lower()
    if lower.startswith("csi://"):
        sensor = raw[len("csi://"):]
        if not sensor.isdecimal():
            raise CameraError(f"--camera {raw}: expected csi://N with a sensor id")
        return CameraSource(raw, "gstreamer", csi_pipeline(int(sensor)), live=True)
    if lower.startswith("v4l2://"):
        rest = raw[len("v4l2://"):]
        device = f"/dev/video{rest}" if rest.isdecimal() else rest
        if not re.fullmatch(r"/dev/video\d+", device):
            raise CameraError(f"--camera {raw}: expected v4l2://N or v4l2:///dev/videoN")
        return CameraSource(raw, "gstreamer", v4l2_pipeline(device), live=True)
    if lower.startswith(STREAM_SCHEMES):
        return CameraSource(raw, "stream", raw, live=True)
    if raw.isdecimal():
        return CameraSource(raw, "device", int(raw), live=True)
    if re.fullmatch(r"/dev/video\d+", raw):
        return CameraSource(raw, "device", raw, live=True)
    path = Path(raw).expanduser()
    if not path.is_file():
        raise CameraError(f"--camera {raw}: no such file, device or stream URL")
    return CameraSource(raw, "file", str(path), live=False)


def _backend(source: CameraSource) -> int:
    import cv2

    if source.kind == "gstreamer":
        return cv2.CAP_GSTREAMER
    if source.kind == "device":
        return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    return cv2.CAP_FFMPEG


def gstreamer_available() -> bool:
    """True when this OpenCV build can run GStreamer pipelines."""
    import cv2

    match = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(match and match.group(1).upper() == "YES")


def _video_capture(cv2, target, backend: int, params: list[int]):
    """``cv2.VideoCapture`` with open/read timeouts where this OpenCV takes them: the
    three-argument form exists from 4.5.2, and older builds (JetPack 5's distribution
    OpenCV is 4.2) raise TypeError for it; they open without the timeouts."""
    if params:
        try:
            return cv2.VideoCapture(target, backend, params)
        except TypeError:
            pass
    return cv2.VideoCapture(target, backend)


def open_capture(source: CameraSource, open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
                 read_timeout_s: float = DEFAULT_READ_TIMEOUT_S):
    """Open ``source`` with its backend and return the opened ``cv2.VideoCapture``.

    Raises:
        CameraError: it cannot be opened (one line, with a hint where one helps).
    """
    import cv2

    if source.kind == "gstreamer" and not gstreamer_available():
        raise CameraError(f"--camera {source.text}: this OpenCV ({cv2.__version__}) is built "
                          "without GStreamer; install the distribution's python3-opencv")
    if source.text.lower().startswith("rtsp"):
        # RTSP over UDP smears frames whenever a packet is lost; TCP is what cameras on
        # busy networks need. A user's own OPENCV_FFMPEG_CAPTURE_OPTIONS wins.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    params: list[int] = []
    if source.kind in ("stream", "file"):
        for name, seconds in (("CAP_PROP_OPEN_TIMEOUT_MSEC", open_timeout_s),
                              ("CAP_PROP_READ_TIMEOUT_MSEC", read_timeout_s)):
            if hasattr(cv2, name):
                params += [getattr(cv2, name), int(seconds * 1000)]
    # OpenCV logs its own warning when a source will not open; ours below says the same in
    # one line with a hint, so a failed open prints one line, not two.
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = log.getLogLevel() if log is not None else None
    if log is not None:
        log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        capture = _video_capture(cv2, source.target, _backend(source), params)
    except cv2.error as exc:
        raise CameraError(f"--camera {source.text}: {str(exc).strip().splitlines()[-1]}") \
            from None
    finally:
        if log is not None:
            log.setLogLevel(previous)
    if not capture.isOpened():
        capture.release()
        hint = {"device": " (is the camera connected, and may this user read it?)",
                "stream": " (is the server up and the URL right?)",
                "file": " (not a video OpenCV's FFmpeg can decode)",
                "gstreamer": " (check the pipeline with gst-launch-1.0)"}[source.kind]
        raise CameraError(f"--camera {source.text}: cannot open via "
                          f"{source.backend_name}{hint}")
    # the size the source declares (0 when it does not say before its first frame):
    # refused here, before a frame is decoded; FrameGrabber checks every frame as read
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    except (cv2.error, ValueError, OverflowError):  # a backend that cannot say (or NaN)
        width = height = 0
    try:
        check_frame_size(width, height, f"--camera {source.text}")
    except FrameTooLargeError:
        capture.release()
        raise
    if source.live:
        # A driver-side queue of old frames would defeat keeping only the newest one.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return capture


def describe(source: CameraSource) -> str:
    """One line for logs: kind, backend and target."""
    return f"{source.kind} via {source.backend_name}: {source.target}"


