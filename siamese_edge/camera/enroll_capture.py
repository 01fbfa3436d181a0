"""Enrolment from a camera: collect N distinct, good crops of one person or object.

A frame is used when the detector finds a region (the largest is taken) and the crop is
not too similar to the last kept one: its embedding's cosine to the last kept embedding is
at most ``max_similarity`` *and* its mean absolute pixel difference (on a small gray
thumbnail, 0..255) is at least ``min_pixel_change`` (20: a face shifted by a tenth of its
size or mirrored differs by 30-40, the same face with a jittering box by 10-15). Set ``max_similarity=1`` or
``min_pixel_change=0`` to switch one test off.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from siamese_edge.camera.capture import FrameGrabber
from siamese_edge.camera.detectors import Detector, regions_in_frame
from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.embedder import Embedder

#: Side of the gray thumbnail compared between crops: coarse on purpose, so that a box
#: jittering by a few pixels (~10-15 levels of difference) is not taken for a new pose.
THUMBNAIL = 16


def _thumbnail(crop: np.ndarray) -> np.ndarray:
    import cv2

    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 and crop.shape[2] == 3 \
        else crop.reshape(crop.shape[:2])
    return cv2.resize(gray, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA) \
        .astype(np.float32)


def collect_enrolment_crops(grabber: FrameGrabber, embedder: Embedder, detector: Detector,
                            samples: int, max_similarity: float = 0.98,
                            min_pixel_change: float = 20.0, max_frames: int | None = None,
                            timeout_s: float | None = None,
                            on_progress: Callable[[dict], None] | None = None
                            ) -> list[np.ndarray]:
    """Read frames from a started grabber until ``samples`` crops are kept.

    Args:
        grabber: started; stopped here on the way out.
        embedder: active (entered); used to reject near-duplicate crops.
        detector: where the subject is; frames without a region are skipped.
        samples: how many crops to keep.
        max_similarity: a crop whose cosine to the last kept one is above this is skipped;
            1 or more: no such test.
        min_pixel_change: a crop that differs from the last kept one by less is skipped.
        max_frames, timeout_s: give up after this many frames / seconds.
        on_progress: receives ``{"event": "enrol_sample", "kept": k, "frame": i, ...}`` for
            each kept crop and ``{"event": "enrol_skip", "reason": ...}`` for each skip.

    Returns:
        Up to ``samples`` RGB crops (fewer when the source ended or a limit was hit; the
        caller decides whether that is an error).
    """
    if samples < 1:
        grabber.stop()  # stopped here on every way out, this one too
        raise InvalidInputError(f"--samples {samples}: need at least 1")
    progress = on_progress or (lambda event: None)
    kept: list[np.ndarray] = []
    last_embedding = last_thumb = None
    seen = 0
    started = time.monotonic()
    try:
        while len(kept) < samples:
            if max_frames is not None and seen >= max_frames:
                break
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                break
            frame = grabber.read(timeout=0.25)
            if frame is None:
                if grabber.ended:
                    break
                continue
            seen += 1
            boxes = regions_in_frame(detector, frame.image)
            if not boxes:
                progress({"event": "enrol_skip", "frame": frame.index, "reason": "no detection"})
                continue
            box = max(boxes, key=lambda b: b.area)
            crop = np.ascontiguousarray(box.crop(frame.image))
            embedding = embedder.embed([crop])[0]
            thumb = _thumbnail(crop)
            if last_embedding is not None:
                similarity = float(embedding @ last_embedding)
                change = float(np.abs(thumb - last_thumb).mean())
                # 1 (or more) switches the test off, as documented: float32 cosines of
                # identical crops come out as 1.0000001, above a limit of exactly 1
                too_similar = max_similarity < 1.0 and similarity > max_similarity
                if too_similar or change < min_pixel_change:
                    progress({"event": "enrol_skip", "frame": frame.index,
                              "reason": "too similar to the last kept sample",
                              "similarity": round(similarity, 4),
                              "pixel_change": round(change, 2)})
                    continue
            kept.append(crop)
            last_embedding, last_thumb = embedding, thumb
            progress({"event": "enrol_sample", "kept": len(kept), "of": samples,
                      "frame": frame.index, "box": box.as_list()})
    finally:
        grabber.stop()
    return kept
