"""The click-free entry points the CLI calls, and their text output."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from camera_helpers import write_video

from siamese_edge.camera.sources import CameraError
from siamese_edge.cli.camera import (
    CameraOptions, format_event, format_summary, run_camera_verify,
)
from siamese_edge.errors import InvalidInputError, SiameseEdgeError


@pytest.fixture()
def video(tmp_path, fashion_items):
    return write_video(tmp_path / "clip.avi", [fashion_items["pullover"]] * 5)


def test_options_map_to_cli_flags():
    fields = {f.name for f in dataclasses.fields(CameraOptions)}
    assert fields == {"vote", "roi", "show", "output", "max_frames", "duration", "json",
                      "reconnect_max_s"}


def test_text_output(embedder, matcher_factory, video):
    events = []
    summary = run_camera_verify(embedder, matcher_factory(), str(video),
                                CameraOptions(vote="2/3"), events.append)
    lines = [format_event(e) for e in events]
    decisions = [line for line, e in zip(lines, events) if e["event"] == "decision"]
    assert "match  pullover" in decisions[0] and "ACCEPT pullover" in decisions[1]
    assert "stream_ended: frames=5" in lines  # from the capture thread: any position
    text = format_summary(summary)
    assert text.startswith("5 frames in") and "stopped by end" in text
    assert all(f"  {stage}" in text for stage in ("capture", "detect", "embed", "match"))


def test_show_without_a_display_warns_and_runs(embedder, matcher_factory, video, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    events = []
    summary = run_camera_verify(embedder, matcher_factory(), str(video),
                                CameraOptions(show=True), events.append)
    assert events[0]["event"] == "warning" and "--show" in events[0]["message"]
    assert summary["frames"] == 5


@pytest.mark.parametrize("options,error", [
    (CameraOptions(vote="5/3"), InvalidInputError),
    (CameraOptions(roi="torso"), InvalidInputError),
    (CameraOptions(output="annotated.gif"), InvalidInputError),
])
def test_bad_options_are_one_line_errors(embedder, matcher_factory, video, options, error):
    with pytest.raises(error) as info:
        run_camera_verify(embedder, matcher_factory(), str(video), options, lambda e: None)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("source", ["/dev/video99", "no/such/clip.avi", "csi://x"])
def test_bad_source_is_a_one_line_error(embedder, matcher_factory, source):
    with pytest.raises(CameraError) as info:
        run_camera_verify(embedder, matcher_factory(), source, CameraOptions(), lambda e: None)
    assert isinstance(info.value, SiameseEdgeError) and "\n" not in str(info.value)
    assert not embedder._active  # noqa: SLF001 - nothing left open


def test_camera_modules_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import siamese_edge.cli.camera, siamese_edge.camera.loop\n"
            "import siamese_edge.camera.enroll_capture\n"
            "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_warning_reads_as_a_sentence():
    event = {"event": "warning", "time": 1.0, "message": "--show: no display"}
    assert format_event(event) == "warning: --show: no display"  # was "message=--show: ..."
    assert format_event({"event": "stream_lost", "time": 1.0, "frames": 3}) == \
        "stream_lost: frames=3"


def test_a_run_stopped_before_any_frame_says_nothing_was_verified(embedder, matcher_factory,
                                                                  video):
    import threading

    stop = threading.Event()
    stop.set()
    summary = run_camera_verify(embedder, matcher_factory(), str(video), CameraOptions(),
                                lambda e: None, stop=stop)
    assert summary["frames"] == 0 and summary["roi"] == "whole"
    assert summary["warning"] == ("nothing was verified: no frame was processed before the "
                                  "run stopped (stop)")
