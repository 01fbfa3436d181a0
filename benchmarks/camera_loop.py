"""Camera loop throughput: the whole verify loop versus only decoding the video (issue 5).

Writes a 640x480 MJPG video (the astronaut photo from scikit-image moving across the frame
when it is installed, else a moving synthetic pattern), then measures on at most 2 CPU cores:

- ``decode_fps``: ``cv2.VideoCapture.read`` alone;
- ``loop_fps``: capture thread → whole-frame region → embed → 1:N match → 3/5 vote → events;
- ``face_loop_fps``: the same with the Haar face detector (``--roi face``).

Each variant runs once untimed, then once per round (``--repeats``) in a new random order
each round, and the best round of each is reported.

Targets: ``loop_fps >= 0.8 * decode_fps`` and ``face_loop_fps >= 25``. The face target is
null (``targets_not_applicable`` says why) when no face was found in the video.

    python benchmarks/camera_loop.py [--model model.onnx] [--frames 300] [--cores 2]

The last line is one JSON object: ``decode_fps``, ``loop_fps``, ``face_loop_fps``, ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from siamese_edge.benchmarking import time_interleaved

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _script (see there)
from _script import run_main  # noqa: E402

WIDTH, HEIGHT = 640, 480


def progress(*parts: object) -> None:
    """Progress goes to stderr: stdout carries only the final JSON line."""
    print(*parts, file=sys.stderr)


def limit_cores(cores: int) -> int:
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[:cores])
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def make_video(path: Path, frames: int) -> str:
    import cv2

    try:
        from skimage import data

        photo = cv2.cvtColor(data.astronaut()[:HEIGHT], cv2.COLOR_RGB2BGR)
        content = "astronaut"
    except ImportError:
        yy, xx = np.mgrid[:HEIGHT, :512]
        photo = np.stack([(xx ^ yy) & 255, xx & 255, yy & 255], axis=2).astype(np.uint8)
        content = "synthetic pattern (install scikit-image for a real face)"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (WIDTH, HEIGHT))
    for i in range(frames):
        frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        x = int((WIDTH - 512) * (0.5 + 0.5 * np.sin(i / 15)))
        frame[:, x:x + 512] = photo
        writer.write(frame)
    writer.release()
    return content


def decode_fps(video: Path) -> dict:
    import cv2

    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    frames, start, cpu = 0, time.perf_counter(), time.process_time()
    while capture.read()[0]:
        frames += 1
    elapsed = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu) * 1000 / frames
    capture.release()
    return {"fps": round(frames / elapsed, 2), "cpu_ms_per_frame": round(cpu_ms, 3)}


def parallel_decode_fps(video: Path) -> dict:
    """Total FPS of two threads decoding at once. Over one thread's (``parallel_decode_scaling``)
    it is ~2 on two free cores, ~1 when other processes take the second core (the loop's
    capture thread then competes with its own inference, and ``loop_vs_decode`` drops
    accordingly)."""
    import threading

    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(_decode_count(video)))
               for _ in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"fps": round(sum(counts) / (time.perf_counter() - start), 2)}


def _decode_count(video: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def default_model(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from model_factory import make_tiny_model

    path = folder / "tiny.onnx"
    make_tiny_model(path)
    return path


def loop_fps(embedder, video: Path, roi: str, detector=None) -> dict:
    from siamese_edge.camera.matcher import CosineMatrixMatcher
    from siamese_edge.cli.camera import CameraOptions, run_camera_verify

    rng = np.random.default_rng(0)
    templates = rng.normal(size=(5, embedder.info.embedding_dim)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    matcher = CosineMatrixMatcher([f"id{i}" for i in range(5)], templates, 0.5)
    events = []
    cpu = time.process_time()
    summary = run_camera_verify(embedder, matcher, str(video),
                                CameraOptions(vote="3/5", roi=roi), events.append,
                                detector=detector)
    summary["cpu_ms_per_frame"] = round((time.process_time() - cpu) * 1000
                                        / max(1, summary["frames"]), 3)
    summary["regions_per_frame"] = round(summary["regions"] / max(1, summary["frames"]), 3)
    return summary


def interleaved_runs(runs: dict, repeats: int, warmup: int = 1) -> dict:
    """Each run's results (dicts with ``fps``) over ``repeats`` rounds, after ``warmup``
    untimed runs of each.

    The rounds are :func:`siamese_edge.benchmarking.time_interleaved`'s: every run once per
    round, in a new seeded random order, so that a neighbour's load or a frequency change hits
    decoding and the loop alike; run in blocks (all decodes, then all loops) they skewed
    ``loop_vs_decode``. The warm-up keeps first-call costs (the session's, the decoder's and
    the cascade's set-up) out: they dominated small runs. Its timings are not used: each run
    measures its own FPS.
    """
    results: dict = {name: [] for name in runs}
    time_interleaved({name: lambda name=name: results[name].append(runs[name]())
                      for name in runs}, repeats, warmup)
    return {name: values[warmup:] for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="ONNX model (default: a generated tiny one)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3,
                        help="best of this many rounds (each times every variant once, after "
                        "one untimed warm-up run of each)")
    args = parser.parse_args()

    cores = limit_cores(args.cores)
    import cv2

    cv2.setNumThreads(cores)
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = folder / "camera.avi"
        content = make_video(video, args.frames)
        model = Path(args.model) if args.model else default_model(folder)
        embedder = OnnxRuntimeEmbedder(model, intra_op_threads=1)
        load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        from siamese_edge.camera.detectors import HaarFaceDetector

        runs = interleaved_runs({
            "decode": lambda: decode_fps(video),
            "decode_2_threads": lambda: parallel_decode_fps(video),
            "whole": lambda: loop_fps(embedder, video, "whole"),
            "face": lambda: loop_fps(embedder, video, "face"),
            # For reference: the Haar cascade over the whole frame on every frame (no
            # tracking); a new detector each run, so no run inherits another's tracks.
            "full": lambda: loop_fps(embedder, video, "face", HaarFaceDetector(refresh_every=1)),
        }, args.repeats)
        # best of the rounds: the least disturbed
        decode, parallel, whole, face, full = (max(runs[name], key=lambda r: r["fps"]) for name
                                               in ("decode", "decode_2_threads", "whole",
                                                   "face", "full"))
        scaling = round(parallel["fps"] / decode["fps"], 2)

    progress(f"{args.frames} frames {WIDTH}x{HEIGHT} MJPG ({content}), {cores} cores, "
             f"model {model.name}")
    progress(f"decode only\n  {decode['fps']:8.1f} FPS  CPU {decode['cpu_ms_per_frame']:.2f} "
             f"ms/frame  (2 decoding threads: x{scaling} of one; load average {load})")
    for name, summary in (("loop (whole)", whole), ("loop (Haar face)", face),
                          ("loop (Haar, full search every frame)", full)):
        lat = summary["latency_ms"]
        progress(f"{name}\n  {summary['fps']:8.1f} FPS  CPU {summary['cpu_ms_per_frame']:.2f} "
                 f"ms/frame  regions/frame "
                 f"{summary['regions_per_frame']}  " + "  ".join(
                     f"{stage} p50 {lat[stage]['p50']:.2f}/p99 {lat[stage]['p99']:.2f} ms"
                     for stage in ("capture", "detect", "embed", "match")))
    # The face target is the FPS of a loop that detects *and embeds* a face. With no face
    # found (the synthetic video, without scikit-image) nothing is embedded and the loop is
    # only the detector, so its FPS says nothing about the target: not met, not applicable.
    face_target, why_not = face["fps"] >= 25.0, None
    if face["regions_per_frame"] == 0:
        face_target = None
        why_not = f"no face found in any frame of the video ({content}): nothing was embedded"
        progress(f"face_loop_ge_25fps not applicable: {why_not}")
    result = {"decode_fps": decode["fps"], "loop_fps": whole["fps"],
              "face_loop_fps": face["fps"], "face_full_search_loop_fps": full["fps"],
              "loop_vs_decode": round(whole["fps"] / decode["fps"], 3),
              "cpu_ms_per_frame": {"decode": decode["cpu_ms_per_frame"],
                                   "loop": whole["cpu_ms_per_frame"],
                                   "face_loop": face["cpu_ms_per_frame"]},
              "face_regions_per_frame": face["regions_per_frame"],
              "targets_met": {"loop_ge_80pct_decode": whole["fps"] >= 0.8 * decode["fps"],
                              "face_loop_ge_25fps": face_target},
              "cores": cores, "parallel_decode_scaling": scaling,
              "load_avg_1min_at_start": load, "frames": args.frames, "content": content.split(" (")[0],
              "model": model.name}
    if why_not:
        result["targets_not_applicable"] = {"face_loop_ge_25fps": why_not}
    print(json.dumps(result))


if __name__ == "__main__":
    run_main(main, __file__, train_hint="without --model it builds a test model with onnx: "
             "pass --model MODEL.onnx")
