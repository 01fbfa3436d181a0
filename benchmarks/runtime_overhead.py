#!/usr/bin/env python3
"""CPU target check: is the runtime's overhead small?

    python benchmarks/runtime_overhead.py [--model MODEL.onnx --run RUN_DIR] [--iterations N]

Targets (issue 7), at batch 1 on the CPU:
* ``Embedder.embed()`` from uint8 images reaches >= 90 % of the throughput of a bare
  ``InferenceSession.run`` on already-prepared float32 tensors;
* and >= 3x torch eager on the same model.

Default model: ``models/fashion-mnist.onnx`` with its run ``runs/fashion-mnist`` when both are
here; otherwise a small CNN of the same architecture (random weights) is exported with
``torch.onnx.export(dynamo=True)`` and its siamese-edge metadata, so the torch twin is exact.

Fairness on a shared 2-core machine: the bare session is the embedder's *own* session (one
thread pool; two sessions' spinning worker threads would slow each other), the three calls
are interleaved in a new random order each round, and throughput is given both from the
mean and from the median latency (the latter robust to a neighbour's load spikes; it decides
the targets).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _script (see there)
from _script import run_main  # noqa: E402

from siamese_edge.benchmarking import summarize, time_interleaved  # noqa: E402


def progress(*parts: object) -> None:
    """Progress goes to stderr: stdout carries only the final JSON line."""
    print(*parts, file=sys.stderr)


def export_small_cnn(out: Path, size: int = 28, channels: int = 1, dim: int = 64):
    """The shipped model's architecture (small_cnn) with random weights → ONNX + metadata."""
    import logging
    import warnings

    import onnx
    import torch

    from siamese_edge.exporting.onnx_export import graph_fingerprint, set_model_info
    from siamese_edge.model_info import ModelInfo, Preprocessing
    from siamese_edge.training.backbones import build_backbone

    torch.manual_seed(0)
    net = build_backbone("small_cnn", channels, size, size, dim).eval()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    # torch.onnx prints its progress on stdout
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, channels, size, size),), str(out), dynamo=True,
                          external_data=False, opset_version=18, input_names=["images"],
                          output_names=["embeddings"],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    proto = onnx.load(str(out))
    set_model_info(proto, ModelInfo(
        Preprocessing(size, size, channels, (0.5,) * channels, (0.25,) * channels),
        embedding_dim=dim, threshold=0.6, fingerprint=graph_fingerprint(proto),
        name="overhead-small-cnn", threshold_source="arbitrary (benchmark)"))
    onnx.save(proto, str(out))
    return out, net


def batch1_targets(results: dict) -> dict:
    """The targets (issue 7) are stated at batch 1, so they judge batch 1's row, wherever it
    comes in --batches (judging the first batch listed, ``--batches 32,1`` passed on batch 32
    while batch 1 missed). Without batch 1 they are None, not measured: another batch's
    numbers must not pass them. The torch target is None too when no torch twin was timed."""
    row = results.get("1")
    if row is None:
        return {"embed_vs_session_batch1_ge_0.90": None, "embed_vs_torch_batch1_ge_3x": None}
    return {"embed_vs_session_batch1_ge_0.90": row["embed_vs_session"] >= 0.90,
            "embed_vs_torch_batch1_ge_3x": (row["embed_vs_torch"] >= 3.0
                                            if "embed_vs_torch" in row else None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="ONNX model (default: see module doc)")
    parser.add_argument("--run", help="training run of --model, for the torch twin")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    shipped, shipped_run = ROOT / "models/fashion-mnist.onnx", ROOT / "runs/fashion-mnist"
    torch_net = None
    workdir = tempfile.TemporaryDirectory()
    if args.model:
        model = Path(args.model)
    elif shipped.is_file() and (shipped_run / "checkpoint.pt").is_file():
        model, args.run = shipped, str(shipped_run)
    else:
        model, torch_net = export_small_cnn(Path(workdir.name) / "small_cnn.onnx")
    if torch_net is None and args.run:
        from siamese_edge.training.checkpoint import load_run

        torch_net = load_run(args.run).model.eval()
    torch = None
    if torch_net is not None:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)

    batches = [int(b) for b in args.batches.split(",")]
    embedder = OnnxRuntimeEmbedder(model, batch_size=max(batches),
                                   intra_op_threads=args.threads)
    info = embedder.info
    pre = info.preprocessing
    rng = np.random.default_rng(0)
    results = {}
    with embedder:
        session = embedder._session  # the same session and thread pool: see module doc
        for batch in batches:
            images = rng.integers(0, 256, (batch, pre.height, pre.width, pre.channels),
                                  dtype=np.uint8)
            tensor = embedder.prepare(images)
            calls = {
                "embed": lambda: embedder.embed(images),
                "session_run": lambda: session.run([info.output_name], {info.input_name: tensor}),
            }
            if torch_net is not None:
                x = torch.from_numpy(tensor)

                def torch_eager(x=x):
                    with torch.inference_mode():
                        return torch_net(x)
                calls["torch_eager"] = torch_eager
            timings = time_interleaved(calls, args.iterations, args.warmup)
            rows = {}
            for name, latencies in timings.items():
                row = summarize(latencies, batch)
                row["images_per_s_median"] = round(batch / (row["p50_ms"] / 1000.0), 2)
                rows[name] = row
            ref = rows["session_run"]["images_per_s_median"]
            rows["embed_vs_session"] = round(rows["embed"]["images_per_s_median"] / ref, 3)
            if "torch_eager" in rows:
                rows["embed_vs_torch"] = round(rows["embed"]["images_per_s_median"]
                                               / rows["torch_eager"]["images_per_s_median"], 2)
            results[str(batch)] = rows
            progress(f"batch {batch:>3}: embed {rows['embed']['p50_ms']:.3f} ms, session.run "
                     f"{rows['session_run']['p50_ms']:.3f} ms"
                     + (f", torch {rows['torch_eager']['p50_ms']:.3f} ms"
                        if "torch_eager" in rows else "")
                     + f" (p50) -> embed/session {rows['embed_vs_session']:.1%}"
                     + (f", embed/torch {rows['embed_vs_torch']:.2f}x"
                        if "embed_vs_torch" in rows else ""))
    targets = batch1_targets(results)
    if "1" not in results:
        progress("batch 1 not in --batches: the batch-1 targets are not measured (null)")
    print(json.dumps({"model": str(model), "model_name": info.name,
                      "input": f"{pre.channels}x{pre.height}x{pre.width}",
                      "torch_twin": torch_net is not None, "threads": args.threads,
                      "iterations": args.iterations, "results": results,
                      "targets": targets}))
    return 0 if all(v is not False for v in targets.values()) else 1


if __name__ == "__main__":
    run_main(main, __file__, train_hint="without --model, or with --run, it times a torch "
             "twin: pass --model MODEL.onnx alone to time without torch")
