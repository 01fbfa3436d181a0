"""Live verification from cameras and streams.

The parts, each small and replaceable:

- :mod:`.sources`: ``--camera SRC`` text → :class:`~.sources.CameraSource` → an opened
  ``cv2.VideoCapture`` on the right backend (V4L2, FFmpeg, GStreamer).
- :mod:`.capture`: a thread that reads frames (RGB), keeps only the newest one for live
  sources, reopens a lost stream with backoff and ends cleanly at the end of a file.
- :mod:`.detectors`: regions of interest (whole frame, fixed crop, Haar face detector).
- :mod:`.matcher`: the small matching protocol the loop speaks (:class:`~.matcher.Match`,
  :class:`~.matcher.FrameMatcher`) and an in-memory cosine matcher.
- :mod:`.voting`: temporal k-of-n acceptance.
- :mod:`.loop`: capture → detect → embed → match → vote → events, with stage latencies.
- :mod:`.annotate`: boxes, names, scores and FPS drawn on frames.
- :mod:`.enroll_capture`: N distinct good crops for enrolment.

Nothing here imports torch; cv2 is imported where frames are touched.
"""

from __future__ import annotations

from siamese_edge.camera.detectors import Box, Detector, FixedCrop, HaarFaceDetector, WholeFrame
from siamese_edge.camera.matcher import CosineMatrixMatcher, FrameMatcher, Match
from siamese_edge.camera.sources import CameraError, CameraSource, parse_source
from siamese_edge.camera.voting import KOfNVoter

__all__ = ["Box", "CameraError", "CameraSource", "CosineMatrixMatcher", "Detector",
           "FixedCrop", "FrameMatcher", "HaarFaceDetector", "KOfNVoter", "Match",
           "WholeFrame", "parse_source"]
