"""The per-frame pipeline: capture → detect → embed (batched) → match → vote → events.

:func:`run_loop` is the library core of ``siamese-edge verify --camera``. It emits one
``decision`` event per region per frame (a plain dict, JSON-ready)::

    {"event": "decision", "time": 1767000000.123, "frame": 42, "box": [x, y, w, h],
     "identity": "ann" | null, "score": 0.91, "match": true, "accepted": true,
     "votes": 4, "age_ms": 35.2,
     "latency_ms": {"capture": 2.1, "detect": 8.0, "embed": 3.2, "match": 0.1}}

``match`` is this frame's answer alone, ``accepted`` the temporal (k-of-n) decision (its
window starts afresh when a lost stream is reopened), ``age_ms`` how old the frame is when decided (end-to-end latency). Stream status events from
the capture thread (``stream_lost``, ``stream_reopened``, ...) go to the same ``emit``.
It returns a summary: frames, FPS, p50/p99 latency per stage, and why it stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Callable

import numpy as np

from siamese_edge.camera.annotate import FrameSink, draw_decisions
from siamese_edge.camera.capture import FrameGrabber
from siamese_edge.camera.detectors import Detector, FixedCrop, regions_in_frame
from siamese_edge.camera.matcher import FrameMatcher
from siamese_edge.camera.voting import KOfNVoter
from siamese_edge.runtime.embedder import Embedder

STAGES = ("capture", "detect", "embed", "match")

Emit = Callable[[dict], None]


class StageLatencies:
    """Per-stage latency samples (ms) and their percentiles."""

    def __init__(self, stages: Sequence[str] = STAGES) -> None:
        self.samples: dict[str, list[float]] = {stage: [] for stage in stages}

    def add(self, stage: str, ms: float) -> None:
        self.samples[stage].append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage, values in self.samples.items():
            if values:
                p50, p99 = np.percentile(values, [50, 99])
                out[stage] = {"p50": round(float(p50), 3), "p99": round(float(p99), 3),
                              "mean": round(float(np.mean(values)), 3)}
            else:
                out[stage] = {"p50": None, "p99": None, "mean": None}
        return out


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def run_loop(grabber: FrameGrabber, embedder: Embedder, matcher: FrameMatcher,
             detector: Detector, voter: KOfNVoter, emit: Emit,
             sinks: Sequence[FrameSink] = (), max_frames: int | None = None,
             duration_s: float | None = None, stop: threading.Event | None = None,
             should_stop: Callable[[], bool] | None = None) -> dict:
    """Verify frames from a started grabber until the source ends or a limit is reached.

    Args:
        grabber: a started :class:`FrameGrabber` (stopped here on the way out).
        embedder: an active (entered) embedder.
        matcher: scores embeddings against the enrolled identities.
        detector: regions of interest in each frame.
        voter: temporal k-of-n decision.
        emit: receives every decision event (see the module docstring).
        sinks: receive annotated BGR frames (video file, window); closed on the way out.
        max_frames, duration_s: bounded runs (frames processed / seconds).
        stop: set from another thread to stop cleanly.
        should_stop: polled once per frame (e.g. a window's quit key).

    Returns:
        The summary dict (``"event": "summary"``); Ctrl-C (KeyboardInterrupt) ends the loop
        cleanly with ``stopped_by: "interrupt"``. Its counters:

        - ``frames``: frames processed (detected, embedded, matched, voted on);
        - ``regions``: decisions made, one per region found (0: nothing was verified);
        - ``frames_read``: frames the capture thread read from the source, which is
          ``frames + frames_skipped + frames_unprocessed``;
        - ``frames_skipped``: live sources only, stale frames dropped because a newer one
          came before the loop was ready (inference slower than the camera);
        - ``frames_unprocessed``: read but never processed because the run stopped first
          (frames a file was decoded ahead, the newest frame of a live source, a frame
          interrupted by Ctrl-C);
        - ``reopens``: times a lost stream was reopened;
        - ``duration_s``, ``fps`` (``frames`` per second), ``latency_ms`` (p50/p99/mean
          per stage over processed frames) and ``stopped_by`` (``end``, ``max_frames``,
          ``duration``, ``stop`` or ``interrupt``).
    """
    latencies = StageLatencies()
    frames = regions = 0
    outside_warned: set[tuple[int, ...]] = set()  # frame sizes a --roi box missed
    stopped_by = "end"
    started = time.perf_counter()
    fps = None
    stream = 0
    try:
        while True:
            if max_frames is not None and frames >= max_frames:
                stopped_by = "max_frames"
                break
            if duration_s is not None and time.perf_counter() - started >= duration_s:
                stopped_by = "duration"
                break
            if (stop is not None and stop.is_set()) or (should_stop and should_stop()):
                stopped_by = "stop"
                break
            frame = grabber.read(timeout=0.25)
            if frame is None:
                if grabber.ended:
                    break
                continue  # a live stream is down or slow: check the limits again
            if frame.stream != stream:
                # The stream was lost and reopened: votes from before the outage say nothing
                # about who stands there now, so one frame must not complete a stale window.
                voter.reset()
                stream = frame.stream
            image = frame.image
            t = time.perf_counter()
            boxes = regions_in_frame(detector, image)
            detect_ms = _ms(t)
            if not boxes and isinstance(detector, FixedCrop) \
                    and image.shape[:2] not in outside_warned:
                # a fixed region off this frame size: every frame would pass unverified
                outside_warned.add(image.shape[:2])
                box = detector.box
                emit({"event": "warning", "message": f"--roi {box.x},{box.y},{box.w},{box.h} "
                      f"lies outside the {image.shape[1]}x{image.shape[0]} frame: nothing "
                      f"in it is verified"})
            t = time.perf_counter()
            embeddings = embedder.embed([box.crop(image) for box in boxes]) if boxes else None
            embed_ms = _ms(t)
            t = time.perf_counter()
            matches = matcher.match(embeddings) if boxes else []
            match_ms = _ms(t)
            accepted_now = voter.update(m.identity for m in matches
                                        if m.accepted and m.identity is not None)
            for stage, ms in zip(STAGES, (frame.capture_ms, detect_ms, embed_ms, match_ms)):
                latencies.add(stage, ms)
            frames += 1
            elapsed = time.perf_counter() - started
            fps = frames / elapsed if elapsed > 0 else None
            latency = {"capture": round(frame.capture_ms, 3), "detect": round(detect_ms, 3),
                       "embed": round(embed_ms, 3), "match": round(match_ms, 3)}
            decisions = []
            for box, m in zip(boxes, matches):
                decisions.append({
                    "event": "decision", "time": round(time.time(), 3), "frame": frame.index,
                    "box": box.as_list(), "identity": m.identity, "score": round(m.score, 4),
                    "match": bool(m.accepted),
                    "accepted": bool(m.accepted and m.identity in accepted_now),
                    "votes": voter.votes(m.identity) if m.identity is not None else 0,
                    "age_ms": round((time.monotonic() - frame.timestamp) * 1000.0, 3),
                    "latency_ms": latency})
            regions += len(decisions)
            for decision in decisions:
                emit(decision)
            if sinks:
                annotated = draw_decisions(image, decisions, fps)
                for sink in sinks:
                    sink.write(annotated)
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        grabber.stop()
        for sink in sinks:
            sink.close()
    elapsed = time.perf_counter() - started
    # Read once: a capture thread that outlived stop()'s join could still count, and the
    # three frame counters must add up to frames_read.
    read, skipped = grabber.frames_read, grabber.frames_skipped
    return {"event": "summary", "frames": frames, "regions": regions,
            "frames_read": read, "frames_skipped": skipped,
            "frames_unprocessed": max(0, read - frames - skipped),
            "reopens": grabber.reopen_count, "duration_s": round(elapsed, 3),
            "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0,
            "latency_ms": latencies.summary(), "stopped_by": stopped_by}
