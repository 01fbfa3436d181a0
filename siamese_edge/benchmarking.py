"""``siamese-edge bench``: latency and throughput of every backend that works here, side by side.

Each backend is a small runner (a context manager whose call embeds one batch). For every
batch size all runners are warmed up, then timed round by round, one call each per round, in a
new random order each round, so that a noisy machine (thermal throttling on a Jetson, a
neighbour on a server) penalises every backend alike instead of whichever ran last.

What is timed:

* the runtime's backends (``onnxruntime-cpu|cuda|tensorrt``, native ``tensorrt``) through
  :meth:`Embedder.embed` on uint8 images of the model's size — what an application gets;
* the **reference**: a bare ``onnxruntime.InferenceSession.run`` (CPU) on already-prepared
  float32 tensors, i.e. the model alone, so the runtime's own overhead is visible
  (``vs_reference``: the reference's p50 latency over the backend's; above 1 is faster);
* ``torch``: the model's torch twin (the training run given with ``run_dir``) in eager mode
  on the prepared tensor;
* preprocessing (uint8 of the model's size, and 640x480 RGB frames) and the gallery search
  (random ``gallery_size x D`` templates, top-k) separately.

Nothing here imports torch unless the torch backend is asked for and a run is given.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from siamese_edge.errors import InvalidInputError, first_line

#: the backends bench knows, in the order they are reported
BACKENDS = ("onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt", "torch")
REFERENCE = "onnxruntime-session"
CAMERA_FRAME = (480, 640, 3)


@dataclass
class BenchConfig:
    """What ``siamese-edge bench`` measures; its options map onto these fields one to one.

    Attributes:
        model: exported ONNX model.
        batches: batch sizes to time.
        iterations: timed calls per backend and batch (after warm-up).
        warmup: untimed calls per backend and batch first.
        threads: intra-op threads of ONNX Runtime and torch (default: their own choice).
        pin: also pin the process to the first ``threads`` CPUs (Linux).
        backends: backends to try (default: all of :data:`BACKENDS`); those that cannot run
            here are reported under ``skipped`` with the reason.
        run_dir: training run of the model, for the torch twin.
        engine: TensorRT engine for the native backend (default: ``MODEL.engine``).
        gallery_size: templates in the random gallery searched.
        top_k: candidates returned per query in the gallery search.
        seed: random images, gallery and queries.
    """

    model: str
    batches: Tuple[int, ...] = (1, 8, 32)
    iterations: int = 50
    warmup: int = 5
    threads: Optional[int] = None
    pin: bool = False
    backends: Optional[Tuple[str, ...]] = None
    run_dir: Optional[str] = None
    engine: Optional[str] = None
    gallery_size: int = 10000
    top_k: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        self.batches = tuple(int(b) for b in self.batches)
        if not self.batches or min(self.batches) < 1:
            raise InvalidInputError("batch sizes must be positive integers")
        if self.iterations < 1 or self.warmup < 0:
            raise InvalidInputError("--iterations must be >= 1 and --warmup >= 0")
        if self.threads is not None and self.threads < 1:
            raise InvalidInputError("--threads must be >= 1")
        if self.backends is not None:
            unknown = [b for b in self.backends if b not in BACKENDS]
            if unknown:
                raise InvalidInputError(f"unknown backend(s) {', '.join(unknown)} (choose from "
                                        f"{', '.join(BACKENDS)})")


# -- runners ------------------------------------------------------------------------------
class Runner:
    """One thing to time: entered once, then called with (uint8 images, prepared tensor)."""

    name = "runner"
    device = "?"
    #: what the call consumes: "uint8 images" or "prepared float32 NCHW tensor"
    consumes = "uint8 images"

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __call__(self, images: np.ndarray, tensor: np.ndarray) -> Any:
        raise NotImplementedError


class SessionRunner(Runner):
    """The reference: a bare ONNX Runtime CPU session on prepared tensors."""

    name = REFERENCE
    device = "CPUExecutionProvider"
    consumes = "prepared float32 NCHW tensor"

    def __init__(self, model: str, info, threads: Optional[int]) -> None:
        from siamese_edge.runtime.model_file import open_session

        self._session = open_session(model, intra_op_threads=threads)
        self._output = [info.output_name]
        self._input = info.input_name

    def __call__(self, images: np.ndarray, tensor: np.ndarray) -> Any:
        return self._session.run(self._output, {self._input: tensor})


class EmbedderRunner(Runner):
    """A runtime :class:`Embedder`, timed through ``embed(uint8 images)``."""

    def __init__(self, name: str, embedder, required_provider: Optional[str] = None) -> None:
        self.name = name
        self._embedder = embedder
        self._required = required_provider

    def __enter__(self) -> EmbedderRunner:
        self._embedder.__enter__()
        active = getattr(self._embedder, "active_providers", None)
        if self._required and active is not None and self._required not in active:
            self._embedder.__exit__(None, None, None)
            raise RuntimeError(f"{self._required} fell back to {', '.join(active)}")
        self.device = self._embedder.device_description
        return self

    def __exit__(self, *exc: object) -> None:
        self._embedder.__exit__(*exc)

    def __call__(self, images: np.ndarray, tensor: np.ndarray) -> Any:
        return self._embedder.embed(images)


class TorchRunner(Runner):
    """A torch module in eager mode (``inference_mode``) on the prepared tensor."""

    name = "torch"
    consumes = "prepared float32 NCHW tensor"

    def __init__(self, module, threads: Optional[int] = None) -> None:
        import torch

        self._torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self._module = module.eval().cpu()
        self.device = f"torch {torch.__version__} eager (cpu, {torch.get_num_threads()} threads)"

    def __call__(self, images: np.ndarray, tensor: np.ndarray) -> Any:
        with self._torch.inference_mode():
            return self._module(self._torch.from_numpy(tensor)).numpy()


def _make_runner(name: str, config: BenchConfig, info, max_batch: int,
                 torch_model=None) -> Runner:
    """The runner of one backend (not entered); raises with the reason it cannot run here."""
    from siamese_edge.runtime.backends import available_providers, onnxruntime_providers
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    if name == "onnxruntime-cpu":
        return EmbedderRunner(name, OnnxRuntimeEmbedder(
            config.model, batch_size=max_batch, intra_op_threads=config.threads))
    if name in ("onnxruntime-cuda", "onnxruntime-tensorrt"):
        provider = "CUDAExecutionProvider" if name == "onnxruntime-cuda" \
            else "TensorrtExecutionProvider"
        if provider not in available_providers():
            raise RuntimeError(f"this ONNX Runtime build has no {provider}")
        providers = [provider] if name == "onnxruntime-cuda" else onnxruntime_providers(
            config.model, info, max_batch, available=[provider])[:1]
        return EmbedderRunner(name, OnnxRuntimeEmbedder(
            config.model, providers=providers + ["CPUExecutionProvider"], batch_size=max_batch,
            intra_op_threads=config.threads, require_gpu=True), required_provider=provider)
    if name == "tensorrt":
        from siamese_edge.runtime.backends import create_embedder

        return EmbedderRunner(name, create_embedder(config.model, backend="tensorrt",
                                                    batch_size=max_batch, engine=config.engine))
    if name == "torch":
        if torch_model is None:
            if not config.run_dir:
                raise RuntimeError("give the model's training run (--run RUN_DIR) to time its "
                                   "torch twin")
            from siamese_edge.training.checkpoint import load_run

            torch_model = load_run(config.run_dir).model
        return TorchRunner(torch_model, config.threads)
    raise InvalidInputError(f"unknown backend {name}")


# -- measuring ----------------------------------------------------------------------------
def summarize(latencies_s: Sequence[float], batch: int) -> Dict[str, float]:
    """p50/p99/mean latency in ms and throughput (images over total time) of timed calls."""
    seconds = np.asarray(latencies_s, np.float64)
    ms = seconds * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4),
            "p99_ms": round(float(np.percentile(ms, 99)), 4),
            "mean_ms": round(float(ms.mean()), 4),
            "images_per_s": round(float(batch * len(seconds) / max(seconds.sum(), 1e-12)), 2),
            "iterations": int(len(seconds))}


def time_interleaved(calls: Dict[str, Callable[[], Any]], iterations: int, warmup: int,
                     seed: int = 0) -> Dict[str, List[float]]:
    """Warm every call up, then time them round by round, each round in a new random order.

    A random order (seeded, so runs are repeatable) rather than a rotation: rotating keeps
    the cyclic order, so each call would always follow the same neighbour and inherit its
    after-effects (e.g. torch's or another session's worker threads still spinning).
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    timings: Dict[str, List[float]] = {name: [] for name in names}
    clock = time.perf_counter
    order = np.random.default_rng(seed)
    for _ in range(iterations):
        for index in order.permutation(len(names)):
            name = names[index]
            start = clock()
            calls[name]()
            timings[name].append(clock() - start)
    return timings


def describe_machine() -> Dict[str, Any]:
    """CPU model and cores, GPU(s), Jetson release, and the library versions that matter."""
    from siamese_edge.doctor import probe_cuda, probe_jetson, run_probe

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                    cpu = value.strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    import onnxruntime

    machine: Dict[str, Any] = {
        "cpu": cpu, "logical_cores": os.cpu_count(), "usable_cores": usable,
        "platform": platform.platform(), "python": platform.python_version(),
        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__,
        "gpus": [f"{d['name']} (sm {d['compute_capability']})"
                 for d in run_probe(probe_cuda).get("devices", [])],
    }
    jetson = run_probe(probe_jetson)
    if jetson.get("is_jetson"):
        machine["jetson"] = {k: jetson.get(k) for k in ("model", "l4t", "jetpack")}
    return machine


def _preprocessing(info, batches: Sequence[int], iterations: int, warmup: int,
                   rng: np.random.Generator) -> Dict[str, Any]:
    from siamese_edge.runtime.preprocess import fit_images, normalize

    pre = info.preprocessing
    out: Dict[str, Any] = {}
    for label, shape in ((f"uint8 {pre.width}x{pre.height}x{pre.channels} (model size)",
                          (pre.height, pre.width, pre.channels)),
                         (f"uint8 {CAMERA_FRAME[1]}x{CAMERA_FRAME[0]} RGB frames", CAMERA_FRAME)):
        rows = {}
        for batch in batches:
            images = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
            images_list = list(images) if shape == CAMERA_FRAME else images
            timings = time_interleaved({"prepare": lambda: normalize(
                fit_images(images_list, pre.height, pre.width, pre.channels), pre.mean,
                pre.std)}, iterations, warmup)
            rows[str(batch)] = summarize(timings["prepare"], batch)
        out[label] = rows
    return out


def _gallery_search(dim: int, size: int, k: int, batches: Sequence[int], iterations: int,
                    warmup: int, rng: np.random.Generator) -> Dict[str, Any]:
    from siamese_edge.runtime.gallery import GalleryMatrix
    from siamese_edge.runtime.matching import identity_scores, top_k

    per_identity = 5  # exactly ``size`` templates: the last identity may hold fewer
    identities = -(-size // per_identity)
    templates = rng.standard_normal((size, dim)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    matrix = GalleryMatrix(templates, np.arange(size) // per_identity,
                           [f"id{i}" for i in range(identities)],
                           np.arange(0, size, per_identity, dtype=np.int64))
    rows = {}
    for batch in batches:
        queries = rng.standard_normal((batch, dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        timings = time_interleaved(
            {"search": lambda: top_k(identity_scores(queries, matrix), matrix.names, k)},
            iterations, warmup)
        row = summarize(timings["search"], batch)
        row["queries_per_s"] = row.pop("images_per_s")
        rows[str(batch)] = row
    return {"templates": size, "identities": identities, "dim": dim, "top_k": k,
            "results": rows}


def run_benchmark(config: BenchConfig, torch_model=None,
                  log: Callable[[str], None] = lambda message: None) -> Dict[str, Any]:
    """Time every backend of ``config`` that works here; the report ``bench --json`` prints.

    Args:
        config: what to measure.
        torch_model: a torch module to time as the ``torch`` backend instead of loading
            ``config.run_dir`` (benchmarks that exported the model themselves pass it).
        log: receives one line per backend skipped, and progress.

    Returns:
        ``{"model", "machine", "settings", "reference", "backends", "skipped",
        "preprocessing", "gallery_search"}``; ``reference`` and each backend hold
        ``results[str(batch)] = {p50_ms, p99_ms, mean_ms, images_per_s, iterations}``
        (backends also ``vs_reference``), or ``{"error": ...}`` for a batch that failed.
    """
    from siamese_edge.runtime.model_file import read_model_info
    from siamese_edge.runtime.preprocess import normalize

    info = read_model_info(config.model)
    pre = info.preprocessing
    rng = np.random.default_rng(config.seed)
    max_batch = max(config.batches)
    wanted = config.backends or BACKENDS
    if torch_model is not None and "torch" not in wanted:
        wanted = tuple(wanted) + ("torch",)

    original_affinity = None
    if config.pin and config.threads and hasattr(os, "sched_setaffinity"):
        original_affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, set(sorted(original_affinity)[:config.threads]))
    machine = describe_machine()  # under the pin: the cores every timing ran on

    runners: Dict[str, Runner] = {}
    skipped: Dict[str, str] = {}
    try:
        reference = SessionRunner(config.model, info, config.threads)
        runners[REFERENCE] = reference
        for name in BACKENDS:
            if name not in wanted:
                continue
            try:
                runner = _make_runner(name, config, info, max_batch, torch_model)
                runners[name] = runner.__enter__()
            except Exception as exc:  # noqa: BLE001 - a backend that cannot run is a finding
                skipped[name] = first_line(exc)
                log(f"skipping {name}: {skipped[name]}")

        timings: Dict[str, Dict[int, Any]] = {name: {} for name in runners}
        for batch in config.batches:
            images = rng.integers(0, 256, (batch, pre.height, pre.width, pre.channels),
                                  dtype=np.uint8)
            tensor = normalize(images, pre.mean, pre.std)
            calls = {}
            for name, runner in runners.items():
                try:  # a batch outside an engine's profile fails here, not mid-timing
                    runner(images, tensor)
                    calls[name] = (lambda r=runner: r(images, tensor))
                except Exception as exc:  # noqa: BLE001
                    timings[name][batch] = {"error": first_line(exc)}
            log(f"batch {batch}: timing {', '.join(calls)}")
            for name, latencies in time_interleaved(calls, config.iterations,
                                                    config.warmup).items():
                timings[name][batch] = summarize(latencies, batch)
        # still pinned: the report's "pinned" covers every timing in it
        log("timing preprocessing and gallery search")
        preprocessing = _preprocessing(info, config.batches, config.iterations, config.warmup,
                                       rng)
        gallery_search = _gallery_search(info.embedding_dim, config.gallery_size, config.top_k,
                                         config.batches, config.iterations, config.warmup, rng)
    finally:
        for runner in runners.values():
            try:
                runner.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - closing must not hide the results
                pass
        if original_affinity is not None:
            os.sched_setaffinity(0, original_affinity)

    def section(name: str) -> Dict[str, Any]:
        runner = runners[name]
        return {"device": runner.device, "input": runner.consumes,
                "results": {str(b): r for b, r in timings[name].items()}}

    reference_section = section(REFERENCE)
    backends = {}
    for name in runners:
        if name == REFERENCE:
            continue
        backends[name] = section(name)
        for batch, row in backends[name]["results"].items():
            ref = reference_section["results"].get(batch, {})
            # medians, as the table's latency column: a few slow calls on a noisy machine
            # move a mean-based throughput, and the two columns then disagreed (a lower p50
            # than the reference shown as 0.85x)
            if row.get("p50_ms") and ref.get("p50_ms"):
                row["vs_reference"] = round(ref["p50_ms"] / row["p50_ms"], 3)

    return {
        "model": {"path": str(config.model), "name": info.name,
                  "input": f"{pre.channels}x{pre.height}x{pre.width}",
                  "embedding_dim": info.embedding_dim, "fingerprint": info.fingerprint},
        "machine": machine,
        "settings": {**asdict(config), "pinned": original_affinity is not None,
                     "interleaved": True},
        "reference": reference_section,
        "backends": backends,
        "skipped": skipped,
        "preprocessing": preprocessing,
        "gallery_search": gallery_search,
    }


# -- presenting ---------------------------------------------------------------------------
def format_report(report: Dict[str, Any]) -> str:
    """The benchmark as a text table."""
    m = report["machine"]
    lines = [f"model {report['model']['name']} ({report['model']['input']} -> "
             f"{report['model']['embedding_dim']}-d), {report['model']['path']}",
             f"machine: {m['cpu']}, {m['usable_cores']}/{m['logical_cores']} cores"
             + (f", GPU {', '.join(m['gpus'])}" if m["gpus"] else ", no GPU")
             + (f", {m['jetson']['model']} JetPack {m['jetson']['jetpack']}"
                if m.get("jetson") else "")
             + f"; onnxruntime {m['onnxruntime']}, numpy {m['numpy']}",
             f"{report['settings']['iterations']} timed calls after "
             f"{report['settings']['warmup']} warm-up, backends interleaved, random order per round",
             "",
             f"{'backend':<28}{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'images/s':>12}"
             f"{'vs ref':>8}  device"]
    rows = [(f"{REFERENCE} (ref)", report["reference"])] + list(report["backends"].items())
    for name, section in rows:
        for batch, r in section["results"].items():
            if "error" in r:
                lines.append(f"{name:<28}{batch:>6}  error: {r['error']}")
                continue
            ratio = f"{r['vs_reference']:.2f}x" if "vs_reference" in r else ""
            lines.append(f"{name:<28}{batch:>6}{r['p50_ms']:>10.3f}{r['p99_ms']:>10.3f}"
                         f"{r['images_per_s']:>12.1f}{ratio:>8}  {section['device']}")
    for name, reason in report["skipped"].items():
        lines.append(f"{name:<28}skipped: {reason}")
    lines.append("")
    for label, results in report["preprocessing"].items():
        lines.append(f"preprocessing {label}: " + ", ".join(
            f"batch {b} p50 {r['p50_ms']:.3f} ms" for b, r in results.items()))
    g = report["gallery_search"]
    lines.append(f"gallery search ({g['templates']} templates x {g['dim']}, top-{g['top_k']}): "
                 + ", ".join(f"batch {b} p50 {r['p50_ms']:.3f} ms" for b, r in
                             g["results"].items()))
    return "\n".join(lines)


def plot_report(report: Dict[str, Any], path: str) -> None:
    """A grouped bar chart of images/s per batch and backend (needs matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        from siamese_edge.errors import MissingDependencyError

        raise MissingDependencyError("--plot needs matplotlib: pip install "
                                     "'siamese-edge[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = [(f"{REFERENCE} (ref)", report["reference"])] + list(report["backends"].items())
    batches = list(report["reference"]["results"])
    width = 0.8 / max(1, len(sections))
    figure, axes = plt.subplots(figsize=(2.0 + 1.6 * len(batches), 4.5))
    for i, (name, section) in enumerate(sections):
        values = [section["results"].get(b, {}).get("images_per_s", 0.0) for b in batches]
        axes.bar([j + (i - (len(sections) - 1) / 2) * width for j in range(len(batches))],
                 values, width, label=name)
    axes.set_xticks(range(len(batches)))
    axes.set_xticklabels([f"batch {b}" for b in batches])
    axes.set_ylabel("images / s (higher is better)")
    axes.set_yscale("log")
    axes.set_title(f"{report['model']['name']} on {report['machine']['cpu']}"
                   + (f" + {report['machine']['gpus'][0]}" if report["machine"]["gpus"] else ""),
                   fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
