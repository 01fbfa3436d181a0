"""The capture thread: newest frame only, reopen with backoff, files end, clean stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from camera_helpers import FakeCamera, write_video

from siamese_edge.camera.capture import Backoff, FrameGrabber
from siamese_edge.camera.sources import CameraError, open_capture, parse_source


def test_lost_stream_is_reopened_with_backoff_and_reported():
    camera = FakeCamera(period_s=0.001, drop_after=5, refuse_opens=2)
    events: list[dict] = []
    with FrameGrabber(camera.open, live=True, on_status=events.append,
                      backoff=Backoff(initial_s=0.01, factor=2.0, max_s=0.05)) as grabber:
        got = []
        while len(got) < 12:
            frame = grabber.read(timeout=5)
            assert frame is not None
            got.append(int(frame.image[0, 0, 0]))
    kinds = [e["event"] for e in events]
    assert kinds == ["stream_lost", "reopen_failed", "reopen_failed", "stream_reopened"]
    assert [e["retry_in_s"] for e in events if e["event"] == "reopen_failed"] == [0.02, 0.04]
    assert camera.opens == 4 and grabber.reopen_count == 1
    assert got == sorted(got) and got[-1] >= 11  # frames keep coming after the reopen
    assert not grabber.alive


def test_backoff_doubles_up_to_the_cap():
    backoff = Backoff(initial_s=0.5, factor=2.0, max_s=3.0)
    assert [backoff.delay(a) for a in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_gives_up_after_max_attempts():
    camera = FakeCamera(drop_after=3, refuse_opens=100)
    events: list[dict] = []
    with FrameGrabber(camera.open, live=True, on_status=events.append,
                      backoff=Backoff(0.001, 1.0, 0.001), max_reopen_attempts=3) as grabber:
        while grabber.read(timeout=5) is not None:
            pass
        assert grabber.ended
    assert events[-1]["event"] == "stream_ended" and "3 reopen attempts" in events[-1]["reason"]


def test_newest_frame_only_when_inference_is_slow():
    """A 500 FPS camera and a 40 ms consumer: frames are skipped, none is stale."""
    camera = FakeCamera(period_s=0.002)
    ages, indices = [], []
    with FrameGrabber(camera.open, live=True) as grabber:
        for _ in range(8):
            frame = grabber.read(timeout=5)
            ages.append(time.monotonic() - frame.timestamp)
            indices.append(frame.index)
            time.sleep(0.04)  # "inference"
        skipped = grabber.frames_skipped
    assert skipped > 30
    assert min(np.diff(indices)) > 5        # the consumer jumped over the backlog
    assert max(ages[1:]) < 0.03             # a queue would have grown to ~0.3 s


def test_file_hands_over_every_frame_in_order_then_ends(tmp_path, fashion_items):
    frames = [np.roll(fashion_items["pullover"], shift, axis=1) for shift in range(12)]
    video = write_video(tmp_path / "clip.avi", frames)
    source = parse_source(str(video))
    events: list[dict] = []
    grabber = FrameGrabber(lambda: open_capture(source), live=source.live,
                           on_status=events.append).start()
    got = []
    while True:
        frame = grabber.read(timeout=5)
        if frame is None:
            break
        got.append(frame)
        time.sleep(0.005)  # slow consumer: a file still loses nothing
    assert [f.index for f in got] == list(range(12))
    assert all(np.array_equal(f.image, want) for f, want in zip(got, frames))  # RGB, lossless
    assert grabber.ended and grabber.frames_skipped == 0
    assert [e["event"] for e in events] == ["stream_ended"]
    grabber.stop()
    assert not grabber.alive


def test_stop_unblocks_a_waiting_reader_and_joins():
    camera = FakeCamera(period_s=0.05)
    grabber = FrameGrabber(camera.open, live=True).start()
    result = {}
    waiter = threading.Thread(target=lambda: result.update(frame=grabber.read()))
    grabber.read(timeout=5)  # consume the first frame: the waiter blocks for the next
    waiter.start()
    grabber.stop()
    waiter.join(2)
    assert not waiter.is_alive() and not grabber.alive
    assert camera.released == 1


def test_an_unopenable_source_fails_at_start():
    grabber = FrameGrabber(lambda: open_capture(parse_source("/dev/video99")), live=True)
    with pytest.raises(CameraError):
        grabber.start()
    assert not grabber.alive


def test_errors_in_the_thread_reach_the_consumer():
    class Broken(FakeCamera):
        def read(self):
            raise RuntimeError("driver crashed")

    grabber = FrameGrabber(Broken().open, live=True).start()
    with pytest.raises(RuntimeError, match="driver crashed"):
        grabber.read(timeout=5)
    grabber.stop()


class EmptyFrameOnce(FakeCamera):
    """Reports success with an empty frame once, after ``drop_after`` good frames."""

    def read(self):
        if self.next_index == self.drop_after and not self.dropped:
            self.dropped = True
            return True, np.empty((0, 0, 3), np.uint8)
        return super().read()


@pytest.mark.parametrize("live", [True, False])
def test_an_empty_frame_reported_as_read_is_no_frame(live):
    camera = EmptyFrameOnce(drop_after=2)
    events = []
    grabber = FrameGrabber(camera.open, live=live, on_status=events.append,
                           backoff=Backoff(0.01, 2.0, 0.01), max_reopen_attempts=1).start()
    frames = []
    while len(frames) < 4:
        frame = grabber.read(timeout=5)
        if frame is None:
            break
        frames.append(frame)
    grabber.stop()
    kinds = [e["event"] for e in events]
    assert all(f.image.size for f in frames)
    if live:  # a lost stream: reopened, and frames go on
        assert "stream_lost" in kinds and "stream_reopened" in kinds and len(frames) == 4
    else:  # a file: the end
        assert kinds == ["stream_ended"] and len(frames) == 2


class OpensButGivesNothing:
    """A source that opens every time but never delivers a frame (e.g. a dead RTSP path)."""

    def __init__(self) -> None:
        self.open_times: list[float] = []

    def open(self):
        self.open_times.append(time.monotonic())
        return self

    def read(self):
        return False, None

    def release(self) -> None:
        pass


def test_a_source_that_opens_but_gives_no_frame_backs_off_and_gives_up():
    source = OpensButGivesNothing()
    events: list[dict] = []
    grabber = FrameGrabber(source.open, live=True, on_status=events.append,
                           backoff=Backoff(0.02, 4.0, 5.0), max_reopen_attempts=3).start()
    deadline = time.monotonic() + 5
    while not grabber.ended and time.monotonic() < deadline:
        assert grabber.read(timeout=0.1) is None
    ended = grabber.ended
    grabber.stop()
    assert ended, "reopened for ever at the initial delay"
    assert events[-1]["event"] == "stream_ended"
    assert "gave up after 3 reopen attempts" in events[-1]["reason"]
    assert [e["attempt"] for e in events if e["event"] == "stream_reopened"] == [1, 2, 3]
    gaps = np.diff(source.open_times)  # the start, then three reopens, each after its delay
    assert len(gaps) == 3 and np.all(gaps >= 0.9 * np.array([0.02, 0.08, 0.32]))


def test_a_delivered_frame_resets_the_attempts():
    camera = FakeCamera(drop_after=3)
    events: list[dict] = []
    with FrameGrabber(camera.open, live=True, on_status=events.append,
                      backoff=Backoff(0.001, 2.0, 0.001), max_reopen_attempts=1) as grabber:
        for _ in range(6):  # frames after the drop: the one attempt brought it back
            assert grabber.read(timeout=5) is not None
    assert [e["attempt"] for e in events if e["event"] == "stream_reopened"] == [1]
    assert "stream_ended" not in [e["event"] for e in events]
