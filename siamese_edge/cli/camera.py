"""Library entry points behind ``verify --camera`` and ``enroll --camera`` (no click here).

How the CLI wires them
======================

``siamese-edge verify --camera SRC`` (camera mode replaces the IMAGES argument)::

    @click.option("--camera", help="Device index, /dev/videoN, video file, rtsp:// or "
                  "http(s):// URL, csi://N, v4l2://N or a GStreamer pipeline.")
    @click.option("--vote", default="3/5", show_default=True,
                  help="Accept after k of the last n frames agree.")
    @click.option("--roi", default="whole", show_default=True, help="whole | face | x,y,w,h")
    @click.option("--show", is_flag=True, help="Draw decisions in a window (needs a display).")
    @click.option("--output", type=click.Path(dir_okay=False), help="Annotated video file.")
    @click.option("--max-frames", type=click.IntRange(1))
    @click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Seconds.")
    # --json (json_option), --identity, --threshold, backend options: as today.

    options = CameraOptions(vote=vote, roi=roi, show=show, output=output,
                            max_frames=max_frames, duration=duration, json=as_json)
    embedder = open_embedder(...)                       # not entered: done inside
    matcher = <FrameMatcher over the gallery>           # see "Matcher" below
    summary = run_camera_verify(embedder, matcher, camera, options,
                                emit=print_json_line if as_json else lambda e: click.echo(
                                    format_event(e)))
    print_json_line(summary) if as_json else click.echo(format_summary(summary))

``siamese-edge enroll --camera SRC --name NAME --samples N [--roi whole]``::

    crops = capture_enrolment(embedder, camera, samples, roi=roi,
                              emit=(print_json_line if as_json else None))
    if len(crops) < samples: raise CameraError(...)   # or enroll what was captured
    with embedder: embeddings = embedder.embed(crops)
    gallery.enroll(name, embeddings, sources=[f"{camera}#{i}" for i in range(len(crops))])

Ctrl-C is caught inside: ``run_camera_verify`` returns the summary with
``stopped_by="interrupt"`` (print it, exit 0 or 130 as the CLI prefers); the capture thread,
video file and window are closed. ``CameraError`` (and every other error raised here) is a
``SiameseEdgeError``: the CLI's usual one-line handling applies. ``emit`` is called from two threads (the loop and the
capture thread's stream status); :func:`run_camera_verify` serialises the calls.

Matcher
=======
Anything with ``match(embeddings (N, D)) -> list[Match]`` (see
:mod:`siamese_edge.camera.matcher`); ``Match.identity`` is None for an unknown in 1:N and the
claimed identity in 1:1. Over the runtime's Verifier (``verify_embeddings`` /
``identify_embeddings`` as they stand today) an adapter is a few lines::

    class VerifierMatcher:
        def __init__(self, verifier, identity=None):
            self.verifier, self.identity = verifier, identity

        def match(self, embeddings):
            decisions = (self.verifier.verify_embeddings(embeddings, self.identity)
                         if self.identity else
                         self.verifier.identify_embeddings(embeddings, k=1))
            return [Match(d.identity if self.identity or d.accepted else None,
                          d.score, d.accepted) for d in decisions]

or, from the gallery's matrix, ``CosineMatrixMatcher([m.names[o] for o in m.owner],
m.embeddings, threshold, identity=identity)``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from siamese_edge.camera.annotate import VideoFileSink, WindowSink, display_available
from siamese_edge.camera.capture import Backoff, FrameGrabber
from siamese_edge.camera.detectors import Detector, HaarFaceDetector, detector_from_roi
from siamese_edge.camera.enroll_capture import collect_enrolment_crops
from siamese_edge.camera.loop import run_loop
from siamese_edge.camera.matcher import FrameMatcher
from siamese_edge.camera.sources import CameraSource, open_capture, parse_source
from siamese_edge.camera.voting import KOfNVoter
from siamese_edge.errors import InvalidInputError
from siamese_edge.runtime.atomic_file import same_file
from siamese_edge.runtime.embedder import Embedder

Emit = Callable[[dict], None]


@dataclass(frozen=True)
class CameraOptions:
    """The camera options of ``verify --camera``, one field per CLI option.

    Attributes:
        vote: ``--vote k/n``: accept after k of the last n frames agree.
        roi: ``--roi``: ``whole``, ``face`` (Haar cascade) or ``x,y,w,h``.
        show: ``--show``: window with the annotated frames (ignored with a warning event
            when no display exists).
        output: ``--output FILE``: annotated video (.avi MJPG, .mp4, .mkv FFV1).
        max_frames: ``--max-frames``: stop after this many processed frames.
        duration: ``--duration``: stop after this many seconds.
        json: ``--json``: the caller prints events as JSON lines (kept here so one object
            carries the whole camera configuration; the library does not print).
        reconnect_max_s: ``--reconnect-max`` (optional): longest wait between reopen attempts.
    """

    vote: str = "3/5"
    roi: str = "whole"
    show: bool = False
    output: Optional[str] = None
    max_frames: Optional[int] = None
    duration: Optional[float] = None
    json: bool = False
    reconnect_max_s: float = 10.0


def _serialised(emit: Emit) -> Emit:
    lock = threading.Lock()

    def call(event: dict) -> None:
        with lock:
            emit(event)

    return call


def _grabber(source: CameraSource, emit: Emit, reconnect_max_s: float) -> FrameGrabber:
    return FrameGrabber(lambda: open_capture(source), live=source.live, on_status=emit,
                        backoff=Backoff(max_s=reconnect_max_s))


def _source_fps(grabber: FrameGrabber) -> float:
    """The source's frame rate for the annotated video (0 when it does not say)."""
    import cv2

    reader = grabber._reader  # noqa: SLF001 - read-only peek at the opened capture
    try:
        fps = float(reader.get(cv2.CAP_PROP_FPS)) if reader is not None else 0.0
    except Exception:
        return 0.0
    return fps if 0 < fps <= 240 else 0.0


def run_camera_verify(embedder: Embedder, matcher: FrameMatcher, source: str | int,
                      options: CameraOptions, emit: Emit,
                      detector: Detector | None = None,
                      stop: threading.Event | None = None) -> dict:
    """Verify frames from ``source`` until it ends, a limit is hit, or Ctrl-C.

    Args:
        embedder: not entered yet (entered and exited here) or already active.
        matcher: scores embeddings against the gallery (1:1 or 1:N).
        source: the ``--camera`` value.
        options: the CLI's camera options.
        emit: receives decision and stream-status events (JSON-ready dicts).
        detector: overrides ``options.roi`` (e.g. a user's own detector).
        stop: set from another thread to stop cleanly.

    Returns:
        The summary of :func:`~siamese_edge.camera.loop.run_loop` plus ``source``, ``roi``
        (``options.roi``, or the class name of ``detector``) and, when no region was
        verified at all, ``warning`` (one sentence saying so; the CLI exits 3 then).

    Raises:
        CameraError: the source cannot be opened, or ended before its first frame;
            InvalidInputError: a bad option.
    """
    parsed = parse_source(source)
    voter = KOfNVoter.parse(options.vote)
    custom_detector = detector
    detector = detector or detector_from_roi(options.roi)
    emit = _serialised(emit)
    sinks: list = []
    if options.output and parsed.kind == "file" and same_file(options.output,
                                                              str(parsed.target)):
        # the writer would replace the video while it is being read
        raise InvalidInputError(f"--output {options.output}: is the --camera source; "
                                f"choose another file")
    video_sink = VideoFileSink(options.output) if options.output else None  # checks the path
    window = None
    if options.show:
        if display_available():
            window = WindowSink()
        else:
            emit({"event": "warning", "message": "--show: no display (or a headless "
                  "OpenCV); running without a window"})
    grabber = _grabber(parsed, emit, options.reconnect_max_s)
    with embedder:
        grabber.start()
        if video_sink is not None:
            video_sink.fps = _source_fps(grabber) or video_sink.fps
            sinks.append(video_sink)
        if window is not None:
            sinks.append(window)
        summary = run_loop(grabber, embedder, matcher, detector, voter, emit, sinks=sinks,
                           max_frames=options.max_frames, duration_s=options.duration,
                           stop=stop,
                           should_stop=(lambda: window.quit_requested) if window else None)
    summary["source"] = parsed.text
    if summary["stopped_by"] == "end" and summary["frames_read"] == 0:
        # nothing was verified: an empty video, or a stream that never sent a frame
        from siamese_edge.camera.sources import CameraError

        raise CameraError(f"--camera {parsed.text}: the source ended before its first frame "
                          f"(an empty video, or a stream that sent nothing)")
    summary["roi"] = options.roi if custom_detector is None else type(custom_detector).__name__
    if summary["regions"] == 0:
        # A run that verified nothing looked like a success (only "regions": 0 told): say
        # why, with the region asked for, e.g. --roi face on frames without a face.
        summary["warning"] = (
            f"nothing was verified: no region (--roi {summary['roi']}) in any of the "
            f"{summary['frames']} frames" if summary["frames"] else
            f"nothing was verified: no frame was processed before the run stopped "
            f"({summary['stopped_by']})")
    return summary


def capture_enrolment(embedder: Embedder, source: str | int, samples: int,
                      roi: str = "whole", detector: Detector | None = None,
                      max_similarity: float = 0.98, min_pixel_change: float = 20.0,
                      timeout_s: float | None = 60.0, max_frames: int | None = None,
                      emit: Emit | None = None) -> list[np.ndarray]:
    """Capture ``samples`` distinct good crops from ``source`` for ``enroll --camera``.

    Frames without a detection, and crops too similar to the last kept one, are skipped
    (see :mod:`siamese_edge.camera.enroll_capture`). Returns RGB uint8 crops, possibly fewer
    than ``samples`` if the source ended or ``timeout_s``/``max_frames`` ran out.
    """
    if samples < 1:
        raise InvalidInputError(f"--samples {samples}: need at least 1")
    parsed = parse_source(source)
    if detector is None:
        # Full face search on every frame: speed matters less here than not mistaking a
        # tracked box's jitter for a new pose.
        detector = HaarFaceDetector(refresh_every=1) if roi.strip().lower() == "face" \
            else detector_from_roi(roi)
    emit = _serialised(emit or (lambda event: None))
    grabber = _grabber(parsed, emit, 10.0)
    with embedder:
        grabber.start()
        return collect_enrolment_crops(grabber, embedder, detector, samples,
                                       max_similarity=max_similarity,
                                       min_pixel_change=min_pixel_change,
                                       max_frames=max_frames, timeout_s=timeout_s,
                                       on_progress=emit)


def capture_identity(embedder: Embedder, name: str, source: str | int, samples: int,
                     roi: str = "whole", emit: Emit | None = None,
                     timeout_s: float | None = 60.0, metadata: dict | None = None):
    """Capture ``samples`` distinct crops of ``name`` and embed them, ready to store
    (:func:`siamese_edge.runtime.workflows.enroll_into_gallery`).

    Raises:
        CameraError: the source gave fewer good crops than ``samples``.
    """
    from siamese_edge.camera.sources import CameraError
    from siamese_edge.runtime.gallery import validate_name
    from siamese_edge.runtime.workflows import Enrolment

    name = validate_name(name)
    crops = capture_enrolment(embedder, source, samples, roi=roi, emit=emit,
                              timeout_s=timeout_s)
    if len(crops) < samples:
        raise CameraError(f"{source}: only {len(crops)} of {samples} distinct good frames "
                          f"(roi {roi}); nothing enrolled")
    with embedder:
        embeddings = embedder.embed(crops)
    return Enrolment(name, embeddings, [f"{source}#{i}" for i in range(len(crops))], metadata,
                     origin=str(source))


def format_event(event: dict) -> str:
    """One human-readable line for an event (the text output of ``verify --camera``)."""
    kind = event.get("event")
    if kind == "decision":
        name = event["identity"] or "unknown"
        verdict = "ACCEPT" if event["accepted"] else "match" if event["match"] else "reject"
        lat = event["latency_ms"]
        return (f"frame {event['frame']:>6}  {verdict:<6} {name:<20} {event['score']:.3f}  "
                f"box={event['box']}  detect {lat['detect']:.1f} ms  "
                f"embed {lat['embed']:.1f} ms")
    if kind == "warning" and "message" in event:
        # the message is a whole sentence for a person, like every other command's warnings
        # (it used to read "warning: message=..."); its other fields are for --json
        return f"warning: {event['message']}"
    details = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "time"))
    return f"{kind}: {details}" if details else str(kind)


def format_summary(summary: dict) -> str:
    """The closing lines: frames, FPS and p50/p99 per stage."""
    lines = [f"{summary['frames']} frames in {summary['duration_s']:.1f} s "
             f"({summary['fps']:.1f} FPS), {summary['frames_skipped']} skipped, "
             f"{summary['reopens']} reopens, stopped by {summary['stopped_by']}"]
    for stage, stats in summary["latency_ms"].items():
        if stats["p50"] is not None:
            lines.append(f"  {stage:<8} p50 {stats['p50']:7.2f} ms   p99 {stats['p99']:7.2f} ms")
    if "threshold" in summary:  # verify --camera: what decided, as verify on files says
        lines.append(f"threshold {summary['threshold']:.3f}, backend {summary['backend']}")
    return "\n".join(lines)
