#!/usr/bin/env python3
"""GPU check: build FP32/FP16/INT8 TensorRT engines, check numeric and decision parity against
ONNX Runtime FP32, and time batch 1/8/32 for torch, ONNX Runtime and TensorRT side by side.

    python benchmarks/gpu_check.py [--model MODEL.onnx] [--calib DATA_DIR] [--out DIR]

Without --model a small CNN is built with torch (random weights) and exported with its
siamese-edge metadata. Without --calib, synthetic identities (noisy copies of random base
images, one folder each) serve as calibration and parity sample. What cannot run here (no
TensorRT, no GPU, no torch) is reported, not fatal. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _script (see there)
from _script import run_main  # noqa: E402

BATCHES = (1, 8, 32)


def progress(*parts: object) -> None:
    """Progress goes to stderr: stdout carries only the final JSON line."""
    print(*parts, file=sys.stderr)


def make_model(out: Path, size: int = 64, channels: int = 1, dim: int = 128):
    """A torch SmallCNN exported to ONNX with metadata; returns (path, torch module)."""
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
    x = torch.randn(2, channels, size, size)
    # torch.onnx prints its progress on stdout
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(out), dynamo=True, external_data=False,
                          opset_version=18, input_names=["images"], output_names=["embeddings"],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    proto = onnx.load(str(out))
    info = ModelInfo(Preprocessing(size, size, channels, (0.5,) * channels, (0.25,) * channels),
                     embedding_dim=dim, threshold=0.6, fingerprint=graph_fingerprint(proto),
                     name="gpu-check-small-cnn", threshold_source="arbitrary (benchmark)")
    set_model_info(proto, info)
    onnx.save(proto, str(out))
    return out, net


def make_identities(root: Path, size: int, people: int = 12, per_person: int = 16) -> Path:
    from siamese_edge.runtime.imageio import write_image

    rng = np.random.default_rng(0)
    for p in range(people):
        folder = root / f"id{p:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, (size, size)).astype(np.int32)
        for i in range(per_person):
            image = np.clip(base + rng.integers(-40, 40, (size, size)), 0, 255)
            write_image(folder / f"{i}.png", image.astype(np.uint8))
    return root


def time_call(fn, batch: np.ndarray, warmup: int = 5, iters: int = 50) -> float:
    """Median milliseconds of ``fn(batch)`` (each call ends with results on the host)."""
    for _ in range(warmup):
        fn(batch)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(batch)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported siamese-edge ONNX model")
    parser.add_argument("--calib", help="folder of images (subfolders = identities)")
    parser.add_argument("--out", help="folder for engines and logs (default: a temp folder)")
    parser.add_argument("--iters", type=int, default=50)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_check_"))
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"errors": {}, "latency_ms": {}, "engines": {}, "parity": {}}

    torch_net = None
    if args.model:
        model = Path(args.model)
    else:
        # on the runtime-only image of a device there is no torch: run_main says so
        model, torch_net = make_model(out / "model.onnx")
    from siamese_edge.runtime.model_file import read_model_info
    info = read_model_info(model)
    pre = info.preprocessing
    calib = Path(args.calib) if args.calib else make_identities(out / "identities", pre.height)
    result["model"] = {"path": str(model), "input": [pre.channels, pre.height, pre.width],
                       "dim": info.embedding_dim, "threshold": info.threshold}

    # environment
    env = {"python": sys.version.split()[0]}
    try:
        import onnxruntime as ort
        env["onnxruntime"] = ort.__version__
        env["ort_providers"] = ort.get_available_providers()
    except ImportError:
        pass
    try:
        import torch
        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        torch = None
    try:
        from siamese_edge.tensorrt import load_tensorrt, tensorrt_version
        env["tensorrt"] = tensorrt_version(load_tensorrt())
    except Exception as exc:  # noqa: BLE001
        env["tensorrt"] = None
        result["errors"]["tensorrt"] = str(exc)[:300]
    from siamese_edge.tensorrt.cuda_memory import device_count
    env["cuda_python_devices"] = device_count()
    result["env"] = env

    # cuda-python memory round trip (the path the TensorRT embedder uses)
    try:
        from siamese_edge.tensorrt import cuda_memory
        from siamese_edge.tensorrt.sidecar import gpu_facts
        data = np.arange(4096, dtype=np.float32)
        back = np.empty_like(data)
        stream = cuda_memory.create_stream()
        buf = cuda_memory.DeviceBuffer(data.nbytes)
        buf.upload(data, stream)
        buf.download(back, stream)
        cuda_memory.synchronize(stream)
        buf.free()
        cuda_memory.destroy_stream(stream)
        result["cuda_python_roundtrip_ok"] = bool(np.array_equal(data, back))
        result["gpu_facts"] = list(gpu_facts())
    except Exception as exc:  # noqa: BLE001
        result["errors"]["cuda_python"] = f"{type(exc).__name__}: {exc}"[:300]

    # op support
    try:
        from siamese_edge.tensorrt.op_support import check_op_support
        result["op_support"] = check_op_support(model).to_dict()
    except Exception as exc:  # noqa: BLE001
        result["errors"]["op_support"] = str(exc)[:300]

    from siamese_edge.tensorrt.calibration import load_image_sample
    sample = load_image_sample(calib, info, limit=256)
    batches = {b: np.ascontiguousarray(np.resize(sample.batch, (b, *sample.batch.shape[1:])))
               for b in BATCHES}

    # ONNX Runtime FP32 reference (CPU) and best providers
    from siamese_edge.runtime.backends import create_embedder
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder
    with OnnxRuntimeEmbedder(model, batch_size=64) as cpu:
        reference = np.concatenate([cpu.embed_tensor(sample.batch[i:i + 64])
                                    for i in range(0, len(sample.batch), 64)])
        result["latency_ms"]["onnxruntime-cpu"] = {
            b: time_call(cpu.embed_tensor, batches[b], iters=args.iters) for b in BATCHES}
    try:
        with create_embedder(model, backend="onnxruntime", batch_size=64) as best:
            if best.active_providers != ["CPUExecutionProvider"]:
                result["latency_ms"][best.device_description] = {
                    b: time_call(best.embed_tensor, batches[b], iters=args.iters)
                    for b in BATCHES}
    except Exception as exc:  # noqa: BLE001
        result["errors"]["onnxruntime-gpu"] = str(exc)[:300]

    # torch (eager, CUDA if available), fp32 and fp16
    if torch is not None and torch_net is not None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
            if device == "cpu" and dtype_name == "fp16":
                continue
            net = torch_net.to(device=device, dtype=dtype)

            def run(batch, net=net, dtype=dtype):
                with torch.inference_mode():
                    return net(torch.from_numpy(batch).to(device, dtype)).float().cpu().numpy()
            result["latency_ms"][f"torch-{device}-{dtype_name}"] = {
                b: time_call(run, batches[b], iters=args.iters) for b in BATCHES}
            if dtype_name == "fp16":
                from siamese_edge.runtime.embedder import l2_normalize
                from siamese_edge.tensorrt.parity import compare_embeddings
                result["parity"]["torch-fp16"] = compare_embeddings(
                    reference, l2_normalize(run(sample.batch)), info.threshold, sample.labels,
                    "fp16").to_dict()

    # TensorRT engines
    if env.get("tensorrt") and env["cuda_python_devices"]:
        from siamese_edge.tensorrt.builder import BatchProfile, EngineBuildOptions, build_engine
        from siamese_edge.tensorrt.engine_embedder import TensorRTEmbedder
        from siamese_edge.tensorrt.parity import check_engine_parity
        for precision in ("fp32", "fp16", "int8"):
            engine = out / f"model.{precision}.engine"
            try:
                report = build_engine(model, engine, EngineBuildOptions(
                    precision=precision, batch=BatchProfile(1, 8, 32), calib_dir=str(calib),
                    parity=False))
                result["engines"][precision] = {k: report.to_dict()[k] for k in (
                    "precision_mode", "build_seconds", "engine_bytes", "notes")}
                parity = check_engine_parity(model, engine, sample.batch, sample.labels,
                                             precision, batch_size=32)
                result["parity"][f"tensorrt-{precision}"] = parity.to_dict()
                with TensorRTEmbedder(engine, batch_size=32, onnx_info=info) as trt_embedder:
                    result["latency_ms"][f"tensorrt-{precision}"] = {
                        b: time_call(trt_embedder.embed_tensor, batches[b], iters=args.iters)
                        for b in BATCHES}
            except Exception as exc:  # noqa: BLE001
                result["errors"][f"tensorrt-{precision}"] = f"{type(exc).__name__}: {exc}"[:400]
                traceback.print_exc()
    else:
        result["errors"]["tensorrt-engines"] = "skipped: needs TensorRT and a CUDA device"

    # table
    names = sorted(result["latency_ms"])
    progress(f"{'backend':40s}" + "".join(f"{'batch ' + str(b):>12s}" for b in BATCHES))
    for name in names:
        row = result["latency_ms"][name]
        progress(f"{name:40s}" + "".join(f"{row[b]:10.3f}ms" for b in BATCHES))
    for name, parity in result["parity"].items():
        progress(f"parity {name}: max|diff| {parity['max_abs_diff']:.3g}, flips "
                 f"{parity['flip_fraction']:.4%}, TAR change {parity['tar_change']}, "
                 f"passed {parity['passed']}")
    for name, error in result["errors"].items():
        progress(f"not run / failed: {name}: {error}")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    run_main(main, __file__, train_hint="without --model it builds a test model with torch: "
             "pass --model MODEL.onnx")
