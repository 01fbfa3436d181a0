"""verify --camera / enroll --camera on recorded videos, with the shipped model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from siamese_edge.cli import cli
from siamese_edge.runtime.imageio import read_image
from siamese_edge.runtime.model_file import read_model_info

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "fashion-mnist.onnx"
SAMPLES = ROOT / "models" / "samples"


def video(path: Path, images: list[np.ndarray], repeat: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (112, 112))
    assert writer.isOpened()
    for image in images:
        frame = cv2.resize(image[:, :, 0], (112, 112), interpolation=cv2.INTER_NEAREST)
        for _ in range(repeat):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.fixture()
def gallery(tmp_path) -> str:
    path = str(tmp_path / "g.sqlite")
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", path, "--from-dir",
                                      str(SAMPLES / "gallery")])
    assert result.exit_code == 0, result.output
    return path


def test_verify_camera_votes_and_reports(tmp_path, gallery):
    clip = video(tmp_path / "v.avi", [read_image(SAMPLES / "probes" / "probe-03-sneaker.png"),
                                      read_image(SAMPLES / "probes" / "probe-11-shirt.png")], 10)
    result = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(clip), "--vote", "3/5", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    decisions = [e for e in lines if e.get("event") == "decision"]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["frames"] == 20
    # what decided, as verify on files says it
    assert summary["threshold"] == pytest.approx(read_model_info(MODEL).threshold)
    assert summary["threshold_source"].startswith("model: FAR 0.001")
    assert summary["backend"].startswith("onnxruntime")
    first, second = decisions[:10], decisions[10:]
    # the first two sneaker frames are not yet enough votes; the rest of them are accepted
    assert [d["accepted"] for d in first[:2]] == [False, False]
    assert all(d["accepted"] and d["identity"] == "sneaker" for d in first[3:])
    # a shirt was never enrolled: unknown, never accepted
    assert all(d["match"] is None or not d["accepted"] for d in second[5:])
    assert {"capture", "detect", "embed", "match"} <= set(first[0]["latency_ms"])


def test_enroll_camera_then_verify(tmp_path, gallery):
    # three clearly different items: three distinct frames (repeats of one are skipped)
    items = [read_image(SAMPLES / "probes" / f"probe-{i}.png")
             for i in ("01-trouser", "05-bag", "11-shirt")]
    clip = video(tmp_path / "e.avi", items, 3)
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(clip), "--name", "kicks", "--samples", "3", "--roi",
                                      "whole"])
    assert result.exit_code == 0, result.output
    assert "enrolled kicks: 3 template(s)" in result.output
    assert "in gallery), backend onnxruntime" in result.output.splitlines()[-1]  # had none
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(clip), "--name", "more", "--samples", "9", "--roi",
                                      "whole"])
    assert result.exit_code == 1 and "nothing enrolled" in result.output
    fresh = tmp_path / "fresh.sqlite"  # a failed capture creates no (empty) gallery
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", str(fresh), "--camera",
                                      str(clip), "--name", "more", "--samples", "9", "--roi",
                                      "whole"])
    assert result.exit_code == 1 and not fresh.exists()
    # a new gallery created by a camera enrolment honours --template-dtype
    half = tmp_path / "half.sqlite"
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", str(half), "--camera",
                                      str(clip), "--name", "kicks", "--samples", "3", "--roi",
                                      "whole", "--template-dtype", "float16"])
    assert result.exit_code == 0, result.output
    stats = CliRunner().invoke(cli, ["gallery", "stats", "-g", str(half), "--json"])
    assert json.loads(stats.output)["template_dtype"] == "float16"


def test_enroll_camera_honours_metadata_duplicates_and_json(tmp_path, gallery):
    items = [read_image(SAMPLES / "probes" / f"probe-{i}.png")
             for i in ("01-trouser", "05-bag", "11-shirt")]
    clip = video(tmp_path / "e.avi", items, 3)
    base = ["enroll", "-m", str(MODEL), "-g", gallery, "--camera", str(clip), "--samples", "2",
            "--roi", "whole"]
    # it used to add to the existing trouser despite refuse, and drop --metadata silently
    result = CliRunner().invoke(cli, [*base, "--name", "trouser", "--on-duplicate", "refuse"])
    assert result.exit_code == 1 and "already enrolled" in result.output
    stats = json.loads(CliRunner().invoke(cli, ["gallery", "list", "-g", gallery,
                                                "--json"]).output)
    assert stats["identities"]["trouser"] == 3
    # refused before the camera is opened: no capture, so no camera error
    result = CliRunner().invoke(cli, [*base[:6], str(tmp_path / "no-such.avi"), *base[7:],
                                      "--name", "trouser", "--on-duplicate", "refuse"])
    assert result.exit_code == 1 and "already enrolled" in result.output, result.output
    result = CliRunner().invoke(cli, [*base, "--name", "kit", "--metadata", '{"desk": 4}',
                                      "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]  # every line is JSON
    assert lines[-1]["enrolled"] == {"kit": 2}
    assert lines[-1]["identities"]["kit"] == 2 and lines[-1]["identities"]["trouser"] == 3
    assert lines[-1]["backend"].startswith("onnxruntime")
    shown = json.loads(CliRunner().invoke(cli, ["gallery", "show", "-g", gallery, "kit",
                                                "--json"]).output)
    assert shown["metadata"] == {"desk": 4}


def test_camera_output_never_overwrites_its_source(tmp_path, gallery):
    clip = video(tmp_path / "v.avi", [read_image(SAMPLES / "probes" / "probe-03-sneaker.png")],
                 5)
    before = clip.read_bytes()
    result = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(clip), "--output", str(clip)])
    assert result.exit_code == 1 and "is the --camera source" in result.output
    assert clip.read_bytes() == before  # it used to be replaced by the annotated video


def test_camera_errors_are_one_line(tmp_path, gallery):
    result = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(tmp_path / "missing.avi")])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    result = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(tmp_path / "x.avi"), "-i", "nobody"])
    assert result.exit_code == 1 and "nobody" in result.output
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", gallery, "--camera",
                                      "0"])
    assert result.exit_code == 2  # --name missing


def test_verify_camera_on_a_video_without_frames_fails(tmp_path, gallery):
    empty = tmp_path / "empty.avi"  # a valid container that OpenCV opens, holding no frame
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (112, 112))
    writer.release()
    capture = cv2.VideoCapture(str(empty))
    if not capture.isOpened():
        pytest.skip("this OpenCV does not open an empty MJPG .avi")
    capture.release()
    result = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(empty), "--json"])
    assert result.exit_code == 1, result.output  # used to print a summary and exit 0
    assert result.output.strip().splitlines()[-1].startswith("error: ")
    assert "ended before its first frame" in result.output


def test_a_source_that_will_not_open_is_one_line_on_stderr(tmp_path, gallery):
    # OpenCV's own "[ WARN:0@0.01] global cap.cpp ..." line came first, from native code
    import subprocess
    import sys

    zero = tmp_path / "zero.avi"
    zero.touch()
    result = subprocess.run(
        [sys.executable, "-c", "from siamese_edge.cli import main; main()", "verify", "-m",
         str(MODEL), "-g", gallery, "--camera", str(zero)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, \
        result.stderr


def test_verify_camera_applies_the_margin_as_files_do(tmp_path):
    # two identities enrolled from one image: no margin between them, so --margin must turn
    # every frame away; the camera used to ignore --margin (and --aggregate)
    image = SAMPLES / "probes" / "probe-05-bag.png"
    path = str(tmp_path / "twins.sqlite")
    for name in ("alice", "bob"):
        result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", path, name,
                                          str(image)])
        assert result.exit_code == 0, result.output
    clip = video(tmp_path / "v.avi", [read_image(image)], 4)
    base = ["verify", "-m", str(MODEL), "-g", path, "--camera", str(clip), "--vote", "1/1",
            "--json"]

    def accepted(*extra):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == 0, result.output
        return [json.loads(line)["accepted"] for line in result.output.splitlines()
                if '"decision"' in line]

    assert accepted() == [True] * 4
    assert accepted("--margin", "0.1") == [False] * 4
    files = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", path, "--margin", "0.1",
                                     "--json", str(image)])
    assert json.loads(files.output)["results"][0]["accepted"] is False  # the same rule


def test_enroll_and_verify_camera_cut_the_same_region_by_default(tmp_path, gallery):
    # enroll --roi defaulted to face and verify --roi to whole: on anything but faces a plain
    # `enroll --camera v.avi --name x` found 0 good frames, and on faces face crops were
    # compared with whole frames
    items = [read_image(SAMPLES / "probes" / f"probe-{i}.png")
             for i in ("01-trouser", "05-bag", "11-shirt")]
    clip = video(tmp_path / "e.avi", items, 3)
    result = CliRunner().invoke(cli, ["enroll", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(clip), "--name", "kit", "--samples", "3"])
    assert result.exit_code == 0, result.output
    assert "enrolled kit: 3 template(s)" in result.output
    for command in ("enroll", "verify"):
        text = " ".join(CliRunner().invoke(cli, [command, "--help"]).output.split())
        assert re.search(r"--roi TEXT .*?\[default: (\w+)\]", text).group(1) == "whole", \
            command


def test_camera_warnings_are_sentences_on_stderr(tmp_path, gallery):
    clip = video(tmp_path / "v.avi", [read_image(SAMPLES / "probes" / "probe-03-sneaker.png")],
                 3)
    result = CliRunner().invoke(cli, ["verify", "-m", str(MODEL), "-g", gallery, "--camera",
                                      str(clip), "--roi", "5000,5000,10,10"])
    assert "warning: --roi 5000,5000,10,10 lies outside the 112x112 frame" in \
        result.stderr.splitlines()[0]  # it printed "warning: message=--roi ..." on stdout
    assert "message=" not in result.output and "warning" not in result.stdout


@pytest.mark.parametrize("roi", ["face", "5000,5000,10,10"])
def test_a_camera_run_that_verified_nothing_says_so(tmp_path, gallery, roi):
    # no face in these frames / a fixed region off the frame: it printed a summary and
    # exited 0, like a run that verified every frame ("regions": 0 was only in --json)
    clip = video(tmp_path / "v.avi", [read_image(SAMPLES / "probes" / "probe-03-sneaker.png")],
                 4)
    base = ["verify", "-m", str(MODEL), "-g", gallery, "--camera", str(clip), "--roi", roi]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines()[-1] == \
        f"warning: nothing was verified: no region (--roi {roi}) in any of the 4 frames"
    assert any(line.startswith("4 frames in") for line in result.stdout.splitlines())
    result = CliRunner().invoke(cli, [*base, "--json"])
    assert result.exit_code == 3
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["regions"] == 0
    assert summary["roi"] == roi and f"(--roi {roi})" in summary["warning"]
    result = CliRunner().invoke(cli, [*base[:-1], "whole", "--json"])
    summary = json.loads(result.stdout.splitlines()[-1])
    assert result.exit_code == 0 and summary["regions"] == 4 and "warning" not in summary
