"""A capture thread that hands the consumer the newest frame and survives a lost stream.

Live sources (cameras, network streams): the thread reads as fast as frames come and keeps
only the newest one, so when inference is slower than the camera the loop works on a fresh
frame instead of on a growing backlog (latency stays bounded; skipped frames are counted).
When a read fails the stream is released and reopened with exponential backoff; both facts
are reported through ``on_status``.

Files: every frame is handed over in order (the thread decodes up to ``prefetch`` frames
ahead while the consumer works) and the end of the file ends the capture cleanly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import numpy as np

from siamese_edge.camera.sources import FrameTooLargeError, check_frame_size
from siamese_edge.runtime.imageio import to_rgb_or_gray


class VideoReader(Protocol):
    """What the thread needs of a ``cv2.VideoCapture`` (tests pass fakes)."""

    def read(self) -> tuple[bool, Optional[np.ndarray]]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: uint8 ``(H, W, 3)`` RGB.
        index: position in the source (counts every frame read, also the skipped ones).
        timestamp: ``time.monotonic()`` when the frame was read.
        capture_ms: time spent reading, decoding and converting it.
        stream: how many times the source had been reopened when the frame was read; frames
            of different streams are separated by a loss (an outage of unknown length).
    """

    image: np.ndarray
    index: int
    timestamp: float
    capture_ms: float
    stream: int = 0


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts to reopen a lost stream: initial, doubled, capped."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))


StatusCallback = Callable[[dict], None]


class FrameGrabber:
    """Reads frames in a background thread.

    Args:
        open_reader: returns an opened reader; called at start and on every reopen. It may
            raise (e.g. :class:`~siamese_edge.camera.sources.CameraError`) while the stream
            is down; at start the error propagates, later it counts as a failed attempt.
        live: keep only the newest frame and reopen lost streams (False for files).
        on_status: receives ``{"event": "stream_lost" | "stream_reopened" | "reopen_failed"
            | "stream_ended", ...}`` dicts, called from the capture thread.
        backoff: delays between reopen attempts.
        max_reopen_attempts: give up (end the capture) after this many failed attempts in a
            row; None retries for ever, as a door camera should. An attempt that opens the
            source fails too until a frame arrives.
        prefetch: frames a file may be decoded ahead (live sources keep one: the newest).

    Example:
        >>> with FrameGrabber(lambda: open_capture(source), live=True) as grabber:  # doctest: +SKIP
        ...     frame = grabber.read()
    """

    def __init__(self, open_reader: Callable[[], VideoReader], live: bool = True,
                 on_status: StatusCallback | None = None, backoff: Backoff = Backoff(),
                 max_reopen_attempts: int | None = None, prefetch: int = 4) -> None:
        self._open_reader = open_reader
        self.live = live
        self._on_status = on_status or (lambda event: None)
        self.backoff = backoff
        self.max_reopen_attempts = max_reopen_attempts
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._frames: deque[Frame] = deque()
        self._capacity = 1 if live else max(1, int(prefetch))
        self._ended = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._reader: Any = None
        self.frames_read = 0
        self.frames_skipped = 0
        self.reopen_count = 0
        # reopen attempts since the last delivered frame: a stream that opens but gives no
        # frame has not recovered, so its attempts add up (backoff grows, the limit holds)
        self._attempt = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FrameGrabber:
        """Open the source (errors propagate here) and start the thread."""
        self._reader = self._open_reader()
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop, wake any waiter and join (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def ended(self) -> bool:
        """The thread finished (end of file, gave up, stopped) and no frame is pending."""
        with self._cond:
            return self._ended and not self._frames

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> FrameGrabber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- consumer side --------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (the newest for live sources), or None once the capture ended,
        was stopped, or ``timeout`` seconds passed without a frame."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._frames and not self._ended and not self._stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.5)
            frame = self._frames.popleft() if self._frames else None
            self._cond.notify_all()
        if frame is None and self._error is not None:
            raise self._error
        return frame

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                ok, image = self._reader.read()
                # Some backends report success with an empty frame (a stream that stalls):
                # that is no frame, and converting it would raise cv2.error.
                if not ok or image is None or not np.size(image):
                    if not self.live:
                        self._status("stream_ended", frames=self.frames_read)
                        break
                    if not self._reopen():
                        break
                    continue
                # before any conversion: a source that did not declare its size at open
                # (or changed it) is refused on its first oversized frame, not copied
                shape = np.shape(image)
                if len(shape) >= 2:  # other shapes are refused by to_rgb_or_gray
                    check_frame_size(int(shape[1]), int(shape[0]), "--camera")
                rgb = to_rgb_or_gray(image, bgr=True)
                if rgb.shape[2] == 1:
                    rgb = np.repeat(rgb, 3, axis=2)
                frame = Frame(rgb, self.frames_read, time.monotonic(),
                              (time.perf_counter() - start) * 1000.0, self.reopen_count)
                self.frames_read += 1
                self._attempt = 0  # the stream works again: a later loss starts afresh
                self._publish(frame)
        except BaseException as exc:  # surfaced to the consumer by read()
            self._error = exc
        finally:
            self._release()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if not self.live:
                # Files: hand over every frame; wait while the consumer is behind.
                while len(self._frames) >= self._capacity and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif self._frames:
                self.frames_skipped += len(self._frames)
                self._frames.clear()
            self._frames.append(frame)
            self._cond.notify_all()

    def _reopen(self) -> bool:
        self._status("stream_lost", frames=self.frames_read)
        self._release()
        while not self._stop.is_set():
            self._attempt += 1
            attempt = self._attempt
            if self.max_reopen_attempts is not None and attempt > self.max_reopen_attempts:
                self._status("stream_ended", frames=self.frames_read,
                             reason=f"gave up after {attempt - 1} reopen attempts")
                return False
            delay = self.backoff.delay(attempt)
            if self._stop.wait(delay):
                return False
            try:
                self._reader = self._open_reader()
            except FrameTooLargeError:
                raise  # not an outage: the same frames would come again
            except Exception as exc:  # the stream is still down: try again later
                self._status("reopen_failed", attempt=attempt, retry_in_s=round(
                    self.backoff.delay(attempt + 1), 3), error=str(exc))
                continue
            self.reopen_count += 1
            self._status("stream_reopened", attempt=attempt)
            return True
        return False

    def _release(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.release()
            except Exception:  # a broken stream may fail to release; nothing left to do
                pass

    def _status(self, event: str, **fields: Any) -> None:
        try:
            self._on_status({"event": event, "time": time.time(), **fields})
        except Exception:  # a failing sink must not kill capture
            pass
