"""The per-frame loop on recorded videos of real Fashion-MNIST items."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from camera_helpers import FakeCamera, read_video, write_video

from siamese_edge.camera.capture import Backoff, FrameGrabber
from siamese_edge.camera.detectors import Box, Detector, WholeFrame
from siamese_edge.camera.loop import STAGES, run_loop
from siamese_edge.camera.voting import KOfNVoter
from siamese_edge.cli.camera import CameraOptions, run_camera_verify

cv2 = pytest.importorskip("cv2")

# pullover x6, one noisy sandal frame, pullover x3, stranger x5, sandal x6
SCRIPT = ["pullover"] * 6 + ["sandal"] + ["pullover"] * 3 + ["stranger"] * 5 + ["sandal"] * 6


@pytest.fixture()
def scripted_video(tmp_path, fashion_items):
    return write_video(tmp_path / "door.avi", [fashion_items[role] for role in SCRIPT])


def run(embedder, matcher, video, **options):
    events: list[dict] = []
    summary = run_camera_verify(embedder, matcher, str(video), CameraOptions(**options),
                                events.append)
    return [e for e in events if e["event"] == "decision"], events, summary


def test_identification_with_voting(embedder, matcher_factory, scripted_video):
    decisions, _, summary = run(embedder, matcher_factory(), scripted_video, vote="3/5")
    assert [d["frame"] for d in decisions] == list(range(len(SCRIPT)))
    # each frame alone: the right item, the stranger unknown
    assert [d["identity"] or "stranger" for d in decisions] == SCRIPT
    assert [d["match"] for d in decisions] == [role != "stranger" for role in SCRIPT]
    accepted = [d["identity"] if d["accepted"] else None for d in decisions]
    assert accepted[:2] == [None, None] and accepted[2:6] == ["pullover"] * 4
    assert accepted[6] is None                      # one noisy sandal frame opens nothing
    assert accepted[7:10] == ["pullover"] * 3
    assert accepted[10:15] == [None] * 5            # stranger: never accepted
    assert accepted[15:17] == [None] * 2 and accepted[17:] == ["sandal"] * 4
    assert summary["frames"] == len(SCRIPT) and summary["stopped_by"] == "end"


def test_one_frame_decides_alone_with_vote_1_1(embedder, matcher_factory, scripted_video):
    decisions, _, _ = run(embedder, matcher_factory(), scripted_video, vote="1/1")
    assert [d["accepted"] for d in decisions] == [role != "stranger" for role in SCRIPT]


def test_verification_of_a_claimed_identity(embedder, matcher_factory, scripted_video):
    decisions, _, _ = run(embedder, matcher_factory(identity="sandal"), scripted_video,
                          vote="2/3")
    assert {d["identity"] for d in decisions} == {"sandal"}
    accepted = [d["accepted"] for d in decisions]
    assert accepted[:15] == [False] * 15          # the lone sandal frame is not 2 of 3
    assert accepted[15:] == [False] + [True] * 5
    sandal_scores = [d["score"] for d, role in zip(decisions, SCRIPT) if role == "sandal"]
    other_scores = [d["score"] for d, role in zip(decisions, SCRIPT) if role != "sandal"]
    assert min(sandal_scores) > 0.99 > max(other_scores)


def test_json_event_schema(embedder, matcher_factory, scripted_video):
    decisions, events, summary = run(embedder, matcher_factory(), scripted_video)
    for event in decisions:
        assert json.loads(json.dumps(event)) == event
        assert set(event) == {"event", "time", "frame", "box", "identity", "score", "match",
                              "accepted", "votes", "age_ms", "latency_ms"}
        assert isinstance(event["time"], float) and abs(event["time"] - time.time()) < 60
        assert isinstance(event["frame"], int)
        assert event["box"] == [0, 0, 128, 128]
        assert event["identity"] is None or isinstance(event["identity"], str)
        assert isinstance(event["score"], float) and -1.0 <= event["score"] <= 1.0001
        assert isinstance(event["accepted"], bool) and isinstance(event["match"], bool)
        assert set(event["latency_ms"]) == set(STAGES)
        assert all(isinstance(v, float) and v >= 0 for v in event["latency_ms"].values())
    assert [e["event"] for e in events if e["event"] != "decision"] == ["stream_ended"]
    json.dumps(summary)
    assert summary["frames"] == len(SCRIPT) and summary["fps"] > 0
    for stage in STAGES:
        stats = summary["latency_ms"][stage]
        assert 0 <= stats["p50"] <= stats["p99"]


def test_annotated_output_video(embedder, matcher_factory, scripted_video, tmp_path):
    out = tmp_path / "annotated.avi"
    run(embedder, matcher_factory(), scripted_video, output=str(out))
    frames = read_video(out)
    assert len(frames) == len(SCRIPT) and frames[0].shape == (128, 128, 3)
    # accepted frames carry a green box edge, the stranger's a red one (BGR)
    blue, green, red = frames[3][64, 0].astype(int)
    assert green > max(blue, red) + 60
    blue, green, red = frames[12][64, 0].astype(int)
    assert red > max(blue, green) + 60


def test_max_frames_and_duration_bound_the_run(embedder, matcher_factory, scripted_video):
    decisions, _, summary = run(embedder, matcher_factory(), scripted_video, max_frames=4)
    assert len(decisions) == 4 and summary["stopped_by"] == "max_frames"
    camera = FakeCamera(period_s=0.005)
    grabber = FrameGrabber(camera.open, live=True).start()
    with embedder:
        summary = run_loop(grabber, embedder, matcher_factory(), WholeFrame(), KOfNVoter(1, 1),
                           lambda e: None, duration_s=0.3)
    assert summary["stopped_by"] == "duration" and 0.3 <= summary["duration_s"] < 1.0
    assert not grabber.alive


def no_grabber_threads() -> bool:
    return not any(t.name == "frame-grabber" and t.is_alive() for t in threading.enumerate())


def test_ctrl_c_stops_cleanly_with_a_summary(embedder, matcher_factory, scripted_video):
    inner = matcher_factory()

    class InterruptedMatcher:
        calls = 0

        def match(self, embeddings):
            self.calls += 1
            if self.calls == 5:
                raise KeyboardInterrupt
            return inner.match(embeddings)

    decisions, _, summary = run(embedder, InterruptedMatcher(), scripted_video)
    assert summary["stopped_by"] == "interrupt" and summary["frames"] == 4
    assert len(decisions) == 4 and no_grabber_threads()
    assert not embedder._active  # noqa: SLF001 - the embedder was released too


def test_stop_event_from_another_thread(embedder, matcher_factory):
    stop = threading.Event()
    camera = FakeCamera(period_s=0.002)
    grabber = FrameGrabber(camera.open, live=True).start()
    threading.Timer(0.2, stop.set).start()
    with embedder:
        summary = run_loop(grabber, embedder, matcher_factory(), WholeFrame(), KOfNVoter(1, 1),
                           lambda e: None, stop=stop)
    assert summary["stopped_by"] == "stop" and summary["frames"] > 0 and no_grabber_threads()


class SlowMatcher:
    def __init__(self, inner, seconds):
        self.inner, self.seconds = inner, seconds

    def match(self, embeddings):
        time.sleep(self.seconds)
        return self.inner.match(embeddings)


def test_slow_inference_works_on_fresh_frames(embedder, matcher_factory):
    camera = FakeCamera(period_s=0.002)  # ~500 FPS camera, 30 ms per decision
    grabber = FrameGrabber(camera.open, live=True).start()
    decisions = []
    with embedder:
        summary = run_loop(grabber, embedder, SlowMatcher(matcher_factory(), 0.03),
                           WholeFrame(), KOfNVoter(1, 1), decisions.append, max_frames=10)
    assert summary["frames_skipped"] > 50
    assert max(d["age_ms"] for d in decisions) < 80  # bounded: one decision's time + a frame
    assert np.diff([d["frame"] for d in decisions]).min() > 5


def test_a_dropped_stream_is_reopened_and_the_loop_goes_on(embedder, matcher_factory):
    camera = FakeCamera(period_s=0.002, drop_after=20, refuse_opens=1)
    events = []
    grabber = FrameGrabber(camera.open, live=True, on_status=events.append,
                           backoff=Backoff(0.02, 2.0, 0.1)).start()
    with embedder:
        summary = run_loop(grabber, embedder, matcher_factory(), WholeFrame(), KOfNVoter(1, 1),
                           events.append, max_frames=40)
    kinds = [e["event"] for e in events]
    lost, reopened = kinds.index("stream_lost"), kinds.index("stream_reopened")
    assert lost < kinds.index("reopen_failed") < reopened
    assert "decision" in kinds[:lost] and "decision" in kinds[reopened:]
    assert summary["reopens"] == 1 and summary["frames"] == 40


class TwoHalves(Detector):
    """Left and right half of the frame: two regions, embedded in one batch."""

    def detect(self, frame):
        h, w = frame.shape[:2]
        return [Box(0, 0, w // 2, h), Box(w // 2, 0, w - w // 2, h)]


def test_several_regions_per_frame_are_batched_and_voted_each(tmp_path, embedder,
                                                               matcher_factory, fashion_items):
    pair = np.concatenate([fashion_items["sandal"], fashion_items["pullover"]], axis=1)
    video = write_video(tmp_path / "pair.avi", [pair] * 4)
    calls = []
    original = embedder.embed
    embedder.embed = lambda images: calls.append(len(images)) or original(images)
    events = []
    run_camera_verify(embedder, matcher_factory(), str(video), CameraOptions(vote="2/3"),
                      events.append, detector=TwoHalves())
    decisions = [e for e in events if e["event"] == "decision"]
    assert calls == [2, 2, 2, 2]
    assert [d["identity"] for d in decisions] == ["sandal", "pullover"] * 4
    assert [d["accepted"] for d in decisions] == [False, False] + [True, True] * 3


def test_fixed_crop_roi(tmp_path, embedder, matcher_factory, fashion_items):
    pair = np.concatenate([fashion_items["stranger"], fashion_items["pullover"]], axis=1)
    video = write_video(tmp_path / "pair.avi", [pair] * 3)
    decisions, _, _ = run(embedder, matcher_factory(), video, roi="128,0,128,128", vote="1/1")
    assert [(d["identity"], d["box"]) for d in decisions] == [("pullover", [128, 0, 128, 128])] * 3


class AlwaysAnn:
    """Every region matches 'ann' (the vote window alone decides)."""

    def match(self, embeddings):
        from siamese_edge.camera.matcher import Match

        return [Match("ann", 1.0, True) for _ in range(len(embeddings))]


def test_votes_from_before_a_lost_stream_do_not_carry_over(embedder):
    camera = FakeCamera(period_s=0.01, drop_after=6)
    events = []
    grabber = FrameGrabber(camera.open, live=True, on_status=events.append,
                           backoff=Backoff(0.05, 2.0, 0.05)).start()
    with embedder:
        run_loop(grabber, embedder, AlwaysAnn(), WholeFrame(), KOfNVoter(3, 5),
                 events.append, max_frames=12)
    kinds = [e["event"] for e in events]
    reopened = kinds.index("stream_reopened")
    before = [e for e in events[:reopened] if e["event"] == "decision"]
    after = [e for e in events[reopened:] if e["event"] == "decision"]
    assert before[-1]["accepted"] and before[-1]["votes"] >= 3
    # the first frames after the outage count alone: 3 of them are needed again
    assert [(d["votes"], d["accepted"]) for d in after[:3]] == \
        [(1, False), (2, False), (3, True)]


class Overhanging(Detector):
    """A plugged-in detector whose boxes stick out of (or miss) the frame."""

    def detect(self, frame):
        h, w = frame.shape[:2]
        return [Box(-w // 2, -h // 2, w, h), Box(w + 10, 0, 20, 20), Box(0, 0, 0, h)]


def test_boxes_outside_the_frame_are_cut_to_it_and_empty_ones_dropped(tmp_path, embedder,
                                                                      matcher_factory,
                                                                      fashion_items):
    video = write_video(tmp_path / "one.avi", [fashion_items["sandal"]] * 2)
    events = []
    run_camera_verify(embedder, matcher_factory(threshold=-1.0), str(video),
                      CameraOptions(vote="1/1"), events.append, detector=Overhanging())
    decisions = [e for e in events if e["event"] == "decision"]
    assert [d["box"] for d in decisions] == [[0, 0, 64, 64]] * 2
    with embedder:  # the decision is about the visible quarter, not a wrapped-around crop
        quarter = embedder.embed([fashion_items["sandal"][:64, :64]])
    expected = matcher_factory(threshold=-1.0).match(quarter)[0]
    assert decisions[0]["identity"] == expected.identity
    assert decisions[0]["score"] == pytest.approx(expected.score, abs=1e-3)


def test_a_fixed_region_outside_the_frame_is_warned_about_once(embedder, matcher_factory,
                                                                scripted_video):
    decisions, events, summary = run(embedder, matcher_factory(), scripted_video,
                                     roi="5000,5000,10,10")
    warnings = [e for e in events if e["event"] == "warning"]
    assert len(warnings) == 1 and "lies outside the" in warnings[0]["message"]  # it was silent
    assert summary["regions"] == 0 and summary["frames"] > 1
    _, events, _ = run(embedder, matcher_factory(), scripted_video, roi="0,0,10,10")
    assert not [e for e in events if e["event"] == "warning"]


def frames_add_up(summary) -> bool:
    return summary["frames_read"] == (summary["frames"] + summary["frames_skipped"]
                                      + summary["frames_unprocessed"])


def test_the_frame_counters_add_up(embedder, matcher_factory, scripted_video):
    # --max-frames 3 on a file said frames_read 8, frames 3, frames_skipped 0: the frames
    # decoded ahead and never processed were counted nowhere
    _, _, summary = run(embedder, matcher_factory(), scripted_video, max_frames=3)
    assert summary["frames"] == 3 and summary["frames_skipped"] == 0
    assert summary["frames_unprocessed"] > 0 and frames_add_up(summary)
    _, _, summary = run(embedder, matcher_factory(), scripted_video)  # to the end
    assert summary["frames_read"] == summary["frames"] == len(SCRIPT)
    assert summary["frames_unprocessed"] == 0 and frames_add_up(summary)
    camera = FakeCamera(period_s=0.002)  # live and slower inference: frames are dropped
    grabber = FrameGrabber(camera.open, live=True).start()
    with embedder:
        summary = run_loop(grabber, embedder, SlowMatcher(matcher_factory(), 0.02),
                           WholeFrame(), KOfNVoter(1, 1), lambda e: None, max_frames=5)
    assert summary["frames"] == 5 and summary["frames_skipped"] > 0 and frames_add_up(summary)
