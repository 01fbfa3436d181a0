"""A real network camera: ffmpeg serves a recorded video as MJPEG over HTTP on loopback."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from camera_helpers import write_video

from siamese_edge.cli.camera import CameraOptions, run_camera_verify

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """The port is in LISTEN state (read from /proc: connecting would use up the server)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


class MjpegServer:
    """``ffmpeg -re -stream_loop -1 -i VIDEO -f mpjpeg -listen 1 http://127.0.0.1:PORT/``."""

    def __init__(self, ffmpeg: str, video: Path, port: int) -> None:
        self.process = subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", str(video), "-q:v", "2", "-f", "mpjpeg", "-listen", "1",
             f"http://127.0.0.1:{port}/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not listening(port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.skip("ffmpeg could not serve MJPEG over HTTP here")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


@pytest.fixture()
def videos(tmp_path, fashion_items):
    return {role: write_video(tmp_path / f"{role}.avi", [fashion_items[role]] * 30)
            for role in ("pullover", "sandal")}


def test_verify_from_an_http_mjpeg_stream(ffmpeg, videos, embedder, matcher_factory):
    port = free_port()
    server = MjpegServer(ffmpeg, videos["pullover"], port)
    try:
        events: list[dict] = []
        summary = run_camera_verify(embedder, matcher_factory(threshold=0.97),
                                    f"http://127.0.0.1:{port}/",
                                    CameraOptions(vote="3/5", max_frames=12), events.append)
    finally:
        server.kill()
    decisions = [e for e in events if e["event"] == "decision"]
    assert len(decisions) == 12 and summary["stopped_by"] == "max_frames"
    assert {d["identity"] for d in decisions} == {"pullover"}
    assert [d["accepted"] for d in decisions] == [False, False] + [True] * 10
    assert min(d["score"] for d in decisions) > 0.97  # JPEG over the wire still matches


def test_stream_that_drops_is_reopened(ffmpeg, videos, embedder, matcher_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    events: list[dict] = []
    seen = threading.Condition()

    def emit(event: dict) -> None:
        with seen:
            events.append(event)
            seen.notify_all()

    def wait_for(predicate, timeout=20.0) -> None:
        with seen:
            assert seen.wait_for(lambda: predicate(events), timeout), \
                [e["event"] for e in events]

    def decisions_of(identity):
        return lambda evs: sum(e.get("identity") == identity for e in evs) >= 5

    first = MjpegServer(ffmpeg, videos["pullover"], port)
    result: dict = {}
    stop = threading.Event()
    worker = threading.Thread(target=lambda: result.update(summary=run_camera_verify(
        embedder, matcher_factory(threshold=0.97), url,
        CameraOptions(vote="1/1", duration=40, reconnect_max_s=0.5), emit, stop=stop)))
    worker.start()
    second = None
    try:
        wait_for(decisions_of("pullover"))
        first.kill()  # the camera goes away mid-stream...
        wait_for(lambda evs: any(e["event"] == "stream_lost" for e in evs))
        time.sleep(1.0)  # ...stays away long enough for failed reopen attempts...
        second = MjpegServer(ffmpeg, videos["sandal"], port)  # ...and comes back
        wait_for(decisions_of("sandal"))
    finally:
        stop.set()
        for server in (first, second):
            if server is not None:
                server.kill()
        worker.join(10)
    kinds = [e["event"] for e in events]
    lost, reopened = kinds.index("stream_lost"), kinds.index("stream_reopened")
    assert lost < reopened and "reopen_failed" in kinds[lost:reopened]
    identities = [e["identity"] for e in events if e["event"] == "decision"]
    assert set(identities[:5]) == {"pullover"} and identities[-1] == "sandal"
    assert not worker.is_alive()
    assert result["summary"]["reopens"] >= 1 and result["summary"]["stopped_by"] == "stop"
