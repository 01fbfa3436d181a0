"""``siamese-edge doctor``: what this machine can run, and what to install for the rest.

Every probe is a function returning a JSON-able dict; :func:`run_doctor` runs each one in
isolation (an exception becomes ``{"ok": false, "error": ...}`` for that probe only) and then
derives, per backend, whether it is ready and the command that fixes what is missing.

Nothing here imports torch, and the heavy or hardware-touching libraries (onnxruntime,
TensorRT, cuda-python, OpenCV) are imported inside their probe, so a broken install of one
of them shows up as that probe's error instead of crashing the command. Probes that could
block (camera opens, TensorRT engine builds, subprocesses) run under a timeout.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from siamese_edge.errors import first_line

#: NVIDIA's Jetson wheel index (onnxruntime-gpu built against JetPack's CUDA), per JetPack major.
JETSON_ORT_INDEX = {
    "5": "https://pypi.jetson-ai-lab.io/jp5/cu114",
    "6": "https://pypi.jetson-ai-lab.io/jp6/cu126",
}
#: L4T release → JetPack version (the ones a user is likely to meet).
L4T_TO_JETPACK = {
    "35.1": "5.0.2", "35.2": "5.1", "35.3": "5.1.1", "35.4": "5.1.2", "35.5": "5.1.3",
    "35.6": "5.1.4", "36.2": "6.0 DP", "36.3": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
    "36.4.4": "6.2.1", "36.4": "6.1/6.2",
}
#: providers worth probing; others listed by ONNX Runtime are probed too, Azure (a remote
#: endpoint, not a compute device) is not.
SKIPPED_PROVIDERS = ("AzureExecutionProvider",)

Probe = Callable[[], Dict[str, Any]]


# -- helpers ------------------------------------------------------------------------------
def call_with_timeout(function: Callable[[], Any], timeout_s: float) -> Any:
    """``function()`` in a daemon thread; TimeoutError if it has not returned in time (the
    thread is abandoned: a camera or driver call that hangs must not hang doctor)."""
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _run(command: List[str], timeout_s: float = 5.0) -> Optional[str]:
    """stdout of a command, or None when it is absent, fails or times out."""
    if shutil.which(command[0]) is None:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return None


def _installed_distribution(name: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# -- a tiny ONNX model, written by hand ---------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | int | str) -> bytes:
    """One protobuf field: varint (wire type 0) for ints, length-delimited (2) otherwise."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tensor_value_info(name: str, shape: Tuple[int, ...]) -> bytes:
    dims = b"".join(_field(1, _field(1, d)) for d in shape)  # Dimension.dim_value
    tensor_type = _field(1, 1) + _field(2, dims)  # elem_type FLOAT, shape
    return _field(1, name) + _field(2, _field(1, tensor_type))  # name, TypeProto.tensor_type


def tiny_onnx_model(width: int = 8) -> bytes:
    """A serialized ONNX model ``y = Relu(x)``, x float ``(1, width)``; opset 13, IR 7.

    Written as protobuf bytes so that doctor needs no ``onnx`` package (runtime installs have
    none); the field numbers are those of onnx.proto's ModelProto/GraphProto/NodeProto.
    """
    node = _field(1, "x") + _field(2, "y") + _field(3, "relu") + _field(4, "Relu")
    graph = (_field(1, node) + _field(2, "doctor")
             + _field(11, _tensor_value_info("x", (1, width)))
             + _field(12, _tensor_value_info("y", (1, width))))
    opset = _field(1, "") + _field(2, 13)
    return (_field(1, 7) + _field(2, "siamese-edge-doctor") + _field(7, graph)
            + _field(8, opset))


# -- probes -------------------------------------------------------------------------------
def probe_python() -> Dict[str, Any]:
    return {"ok": True, "version": platform.python_version(), "executable": sys.executable,
            "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine()}


def probe_numpy() -> Dict[str, Any]:
    import numpy

    return {"ok": True, "version": numpy.__version__}


def _probe_provider(ort, provider: str, model: bytes, timeout_s: float) -> Dict[str, Any]:
    """Create a session asking for ``provider`` only and run it once. A session that quietly
    runs on the CPU instead (onnxruntime-gpu without its CUDA/TensorRT libraries) is
    ``fallback``, not ``works``."""
    import numpy as np

    options = ort.SessionOptions()
    options.log_severity_level = 4
    requested: list = [provider]
    if provider == "TensorrtExecutionProvider":
        requested = [(provider, {"trt_engine_cache_enable": False})]

    def attempt() -> Dict[str, Any]:
        session = ort.InferenceSession(model, sess_options=options, providers=requested)
        active = list(session.get_providers())
        x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)
        (y,) = session.run(None, {"x": x})
        if not np.allclose(y, np.maximum(x, 0)):
            return {"status": "wrong-result", "active": active}
        return {"status": "works" if provider in active else "fallback", "active": active}

    try:
        return call_with_timeout(attempt, timeout_s)
    except Exception as exc:  # noqa: BLE001 - every failure is a finding
        return {"status": "error", "error": first_line(exc)}


def probe_onnxruntime(timeout_s: float = 90.0) -> Dict[str, Any]:
    import onnxruntime as ort

    try:  # the probes' failures are reported by us; ORT's own log lines would only alarm
        ort.set_default_logger_severity(4)
    except Exception:  # noqa: BLE001 - older builds
        pass
    listed = list(ort.get_available_providers())
    model = tiny_onnx_model()
    providers = {p: _probe_provider(ort, p, model, timeout_s)
                 for p in listed if p not in SKIPPED_PROVIDERS}
    distributions = {name: _installed_distribution(name)
                     for name in ("onnxruntime", "onnxruntime-gpu")}
    return {"ok": True, "version": ort.__version__, "device": ort.get_device(),
            "listed_providers": listed, "providers": providers,
            "working_providers": [p for p, r in providers.items() if r["status"] == "works"],
            "distributions": {k: v for k, v in distributions.items() if v}}


def probe_tensorrt(timeout_s: float = 30.0) -> Dict[str, Any]:
    from siamese_edge.tensorrt import load_tensorrt

    try:
        trt = load_tensorrt()
    except Exception as exc:  # noqa: BLE001 - TensorRTUnavailableError, broken libraries
        return {"ok": False, "installed": False, "error": first_line(exc)}
    result: Dict[str, Any] = {"ok": True, "installed": True, "module": trt.__name__,
                              "version": getattr(trt, "__version__", "?")}

    def make_builder() -> bool:
        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        return builder is not None

    try:
        result["builder"] = bool(call_with_timeout(make_builder, timeout_s))
    except Exception as exc:  # noqa: BLE001
        result["builder"] = False
        result["builder_error"] = first_line(exc)
    return result


def _cuda_python_devices() -> Optional[List[Dict[str, Any]]]:
    try:
        from siamese_edge.tensorrt.cuda_memory import check, cudart

        runtime = cudart()
    except Exception:  # noqa: BLE001 - cuda-python absent
        return None
    count = int(check(runtime.cudaGetDeviceCount()))
    devices = []
    for index in range(count):
        props = check(runtime.cudaGetDeviceProperties(index))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) \
            else str(props.name)
        devices.append({"index": index, "name": name.rstrip("\x00"),
                        "compute_capability": f"{props.major}.{props.minor}",
                        "memory_mib": int(props.totalGlobalMem) // (1 << 20)})
    return devices


def _nvidia_smi_devices() -> Optional[List[Dict[str, Any]]]:
    out = _run(["nvidia-smi", "--query-gpu=index,name,compute_cap,memory.total,driver_version",
                "--format=csv,noheader,nounits"])
    if out is None:  # older drivers lack compute_cap
        out = _run(["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version",
                    "--format=csv,noheader,nounits"])
        if out is None:
            return None
        rows = [line.split(", ") for line in out.strip().splitlines() if line.strip()]
        return [{"index": int(r[0]), "name": r[1], "compute_capability": None,
                 "memory_mib": int(float(r[2])), "driver": r[3]} for r in rows if len(r) >= 4]
    rows = [line.split(", ") for line in out.strip().splitlines() if line.strip()]
    return [{"index": int(r[0]), "name": r[1], "compute_capability": r[2],
             "memory_mib": int(float(r[3])), "driver": r[4]} for r in rows if len(r) >= 5]


def probe_cuda() -> Dict[str, Any]:
    errors = []
    for source, lister in (("cuda-python", _cuda_python_devices),
                           ("nvidia-smi", _nvidia_smi_devices)):
        try:
            devices = call_with_timeout(lister, 15.0)
        except Exception as exc:  # noqa: BLE001 - e.g. no driver: try the next source
            errors.append(f"{source}: {first_line(exc)}")
            continue
        if devices is not None:
            return {"ok": True, "source": source, "devices": devices,
                    **({"errors": errors} if errors else {})}
    return {"ok": True, "source": None, "devices": [],
            "note": "neither cuda-python nor nvidia-smi is available" if not errors else
            "; ".join(errors),
            # kept apart as well: advice tells a failing cuda-python from a missing one
            **({"errors": errors} if errors else {})}


def parse_build_information(text: str) -> Dict[str, Any]:
    """Video I/O backends from ``cv2.getBuildInformation()``: ``GStreamer: YES (1.20.3)``."""
    found: Dict[str, Any] = {}
    for key, label in (("gstreamer", "GStreamer"), ("v4l2", "v4l/v4l2"),
                       ("ffmpeg", "FFMPEG")):
        match = re.search(rf"^\s*{re.escape(label)}:\s*(.+)$", text, re.MULTILINE | re.IGNORECASE)
        found[key] = bool(match and match.group(1).strip().upper().startswith("YES"))
    cuda = re.search(r"^\s*NVIDIA CUDA:\s*(.+)$", text, re.MULTILINE)
    found["cuda"] = bool(cuda and cuda.group(1).strip().upper().startswith("YES"))
    return found


def probe_opencv() -> Dict[str, Any]:
    import cv2

    backends = parse_build_information(cv2.getBuildInformation())
    # pip wheels that shadow a distribution's (GStreamer-enabled) cv2 when both are installed
    wheels = {}
    for name in ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                 "opencv-contrib-python-headless"):
        version = _installed_distribution(name)
        if version:
            wheels[name] = version
    return {"ok": True, "version": cv2.__version__, "file": getattr(cv2, "__file__", None),
            **backends, "distributions": wheels}


def probe_cameras(indexes: Tuple[int, ...] = (0, 1, 2, 3), timeout_s: float = 3.0
                  ) -> Dict[str, Any]:
    """``/dev/video*`` nodes and which indexes OpenCV opens and reads a frame from.

    On Linux an index without its ``/dev/videoN`` node is reported absent without opening
    it; every open runs under ``timeout_s`` so a stuck driver cannot hang doctor.
    """
    nodes = sorted(glob.glob("/dev/video*"))
    result: Dict[str, Any] = {"ok": True, "devices": nodes, "indexes": {},
                              "argus_socket": os.path.exists("/tmp/argus_socket")}
    linux = sys.platform.startswith("linux")
    to_open = [i for i in indexes if not linux or f"/dev/video{i}" in nodes]
    for index in indexes:
        if index not in to_open:
            result["indexes"][str(index)] = {"status": "absent"}
    if to_open:
        import cv2

        def open_and_read(index: int) -> Dict[str, Any]:
            capture = cv2.VideoCapture(index, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
            try:
                if not capture.isOpened():
                    return {"status": "cannot-open"}
                ok, frame = capture.read()
                if not ok or frame is None:
                    return {"status": "no-frame"}
                return {"status": "works", "frame": f"{frame.shape[1]}x{frame.shape[0]}"}
            finally:
                capture.release()

        for index in to_open:
            try:
                result["indexes"][str(index)] = call_with_timeout(
                    lambda i=index: open_and_read(i), timeout_s)
            except Exception as exc:  # noqa: BLE001
                result["indexes"][str(index)] = {"status": "error", "error": first_line(exc)}
    gst_inspect = shutil.which("gst-inspect-1.0")
    if gst_inspect:
        result["nvarguscamerasrc"] = _run([gst_inspect, "nvarguscamerasrc"]) is not None
    return result


def parse_tegra_release(text: str) -> Optional[str]:
    """``# R36 (release), REVISION: 4.0, ...`` → ``36.4.0``."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def jetpack_for_l4t(l4t: str) -> Optional[str]:
    parts = l4t.split(".")
    for key in (".".join(parts[:3]), ".".join(parts[:2])):
        if key in L4T_TO_JETPACK:
            return L4T_TO_JETPACK[key]
    return None


def probe_jetson(release_file: str = "/etc/nv_tegra_release",
                 model_file: str = "/proc/device-tree/model") -> Dict[str, Any]:
    release = _read_text(release_file)
    model = _read_text(model_file)
    if release is None:
        return {"ok": True, "is_jetson": False,
                **({"board": model} if model and "jetson" in model.lower() else {})}
    l4t = parse_tegra_release(release)
    jetpack = None
    dpkg = _run(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
    if dpkg:
        jetpack = dpkg.split("-")[0].split("+")[0]
    return {"ok": True, "is_jetson": True, "model": model, "l4t": l4t,
            "jetpack": jetpack or (jetpack_for_l4t(l4t) if l4t else None),
            "jetpack_source": "dpkg nvidia-jetpack" if jetpack else "L4T release table"}


#: name → probe, in the order doctor prints them
PROBES: Dict[str, Probe] = {
    "python": probe_python,
    "numpy": probe_numpy,
    "onnxruntime": probe_onnxruntime,
    "tensorrt": probe_tensorrt,
    "cuda": probe_cuda,
    "opencv": probe_opencv,
    "cameras": probe_cameras,
    "jetson": probe_jetson,
}


def run_probe(probe: Probe) -> Dict[str, Any]:
    """Run one probe; any exception (even an ImportError of its library) becomes its error."""
    try:
        result = probe()
    except BaseException as exc:  # noqa: BLE001 - isolation is the point
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"ok": False, "error": first_line(exc)}
    return result if isinstance(result, dict) else {"ok": False, "error": "probe returned "
                                                    f"{type(result).__name__}"}


# -- advice -------------------------------------------------------------------------------
def _advice(backend: str, ready: bool, missing: str = "", fix: str = "",
            note: str = "") -> Dict[str, Any]:
    entry: Dict[str, Any] = {"backend": backend, "ready": ready}
    if not ready:
        entry["missing"] = missing
        entry["fix"] = fix
    elif note:  # ready as software, with something the user should still know
        entry["note"] = note
    return entry


def advise(probes: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per backend: ready or not, what is missing and the command that fixes it."""
    jetson = probes.get("jetson", {})
    on_jetson = bool(jetson.get("is_jetson"))
    jetpack_major = str(jetson.get("jetpack") or "6")[:1]
    ort_index = JETSON_ORT_INDEX.get(jetpack_major, JETSON_ORT_INDEX["6"])
    install_ort_gpu = (f"pip uninstall -y onnxruntime onnxruntime-gpu && pip install "
                       f"onnxruntime-gpu --extra-index-url {ort_index}" if on_jetson else
                       "pip uninstall -y onnxruntime onnxruntime-gpu && pip install "
                       "'onnxruntime-gpu[cuda,cudnn]'")
    has_gpu = bool(probes.get("cuda", {}).get("devices")) or on_jetson
    advice = []

    ort = probes.get("onnxruntime", {})
    providers = ort.get("providers", {}) if ort.get("ok") else {}
    if not ort.get("ok"):
        advice.append(_advice("onnxruntime-cpu", False, f"ONNX Runtime does not import "
                              f"({ort.get('error', '?')})",
                              install_ort_gpu if on_jetson else "pip install onnxruntime"))
    else:
        cpu = providers.get("CPUExecutionProvider", {})
        advice.append(_advice("onnxruntime-cpu", cpu.get("status") == "works",
                              f"CPU provider failed ({cpu.get('error', cpu.get('status'))})",
                              "pip install --force-reinstall onnxruntime"))
        distributions = ort.get("distributions", {})
        if len(distributions) > 1:
            advice.append(_advice("onnxruntime-install", False,
                                  "both onnxruntime and onnxruntime-gpu are installed: they "
                                  "provide the same module and break each other",
                                  install_ort_gpu if has_gpu else
                                  "pip uninstall -y onnxruntime onnxruntime-gpu && pip "
                                  "install onnxruntime"))
        for backend, provider, libraries in (
                ("onnxruntime-cuda", "CUDAExecutionProvider", "CUDA 12 and cuDNN 9"),
                ("onnxruntime-tensorrt", "TensorrtExecutionProvider", "TensorRT 10")):
            status = providers.get(provider, {}).get("status")
            if status == "works":
                advice.append(_advice(backend, True))
            elif status is None:
                advice.append(_advice(backend, False, f"this ONNX Runtime build has no "
                                      f"{provider} (CPU-only onnxruntime)"
                                      + ("" if has_gpu else "; no NVIDIA GPU is visible either"),
                                      install_ort_gpu))
            elif provider == "TensorrtExecutionProvider":
                advice.append(_advice(
                    backend, False, f"{provider} is listed but falls back to the CPU "
                    f"({status}): the TensorRT libraries are not found",
                    "JetPack provides them (use the l4t-jetpack base image)" if on_jetson else
                    "pip install tensorrt-cu12 and put its tensorrt_libs folder on "
                    "LD_LIBRARY_PATH"))
            else:
                advice.append(_advice(
                    backend, False, f"{provider} is listed but falls back to the CPU "
                    f"({status}): {libraries} libraries or a visible GPU are missing",
                    "run the container with --runtime nvidia" if on_jetson else
                    "pip install 'onnxruntime-gpu[cuda,cudnn]' (and a GPU: docker run "
                    "--gpus all)"))

    trt = probes.get("tensorrt", {})
    if not trt.get("installed"):
        advice.append(_advice("tensorrt", False, "TensorRT Python bindings are not installed",
                              "sudo apt-get install python3-libnvinfer (JetPack), or a "
                              "l4t-jetpack base image" if on_jetson else
                              "pip install tensorrt 'siamese-edge[tensorrt]'"))
    elif not trt.get("builder"):
        advice.append(_advice("tensorrt", False, f"{trt.get('module')} imports but cannot "
                              f"create a builder ({trt.get('builder_error', 'no GPU')})",
                              "run on an NVIDIA GPU (docker run --runtime nvidia / --gpus "
                              "all) with a matching driver"))
    elif not has_gpu:
        advice.append(_advice("tensorrt", False, f"{trt.get('module')} builds engines here, "
                              f"but no NVIDIA GPU is visible to run them",
                              "run on an NVIDIA GPU (docker run --runtime nvidia / --gpus "
                              "all) with a matching driver"))
    else:
        cuda = probes.get("cuda", {})
        cuda_ok = cuda.get("source") == "cuda-python"
        failed = [e for e in cuda.get("errors", []) if e.startswith("cuda-python:")]
        if failed:  # installed, but it cannot reach the GPU: reinstalling will not help
            advice.append(_advice("tensorrt", False, f"cuda-python is installed but fails "
                                  f"({failed[0].split(': ', 1)[1]})",
                                  "install the cuda-python major version of the driver's "
                                  "CUDA (nvidia-smi shows it), or update the driver"))
        else:
            advice.append(_advice("tensorrt", cuda_ok, "cuda-python (GPU memory for the "
                                  "native TensorRT runtime) is not installed",
                                  "pip install 'cuda-python>=11.4,<12'" if jetpack_major == "5"
                                  and on_jetson else "pip install 'siamese-edge[tensorrt]'"))

    cv = probes.get("opencv", {})
    if not cv.get("ok"):
        advice.append(_advice("camera", False, f"OpenCV does not import "
                              f"({cv.get('error', '?')})",
                              "sudo apt-get install python3-opencv" if on_jetson else
                              "pip install 'opencv-python-headless<5'"))
    else:
        cameras = probes.get("cameras", {})
        none_seen = cameras.get("ok") and not cameras.get("devices") and not any(
            v.get("status") == "works" for v in cameras.get("indexes", {}).values())
        advice.append(_advice("camera-usb", bool(cv.get("v4l2") or cv.get("ffmpeg")),
                              "OpenCV has neither V4L2 nor FFMPEG video I/O",
                              "pip install --force-reinstall 'opencv-python-headless<5'",
                              note="but no camera is connected now: no /dev/video*, no "
                                   "index opens" if none_seen else ""))
        shadowing = sorted(cv.get("distributions", {}))
        fix = ("pip uninstall -y " + " ".join(shadowing) + " && " if shadowing else "") + \
            "sudo apt-get install python3-opencv  (a venv needs --system-site-packages)"
        advice.append(_advice("camera-gstreamer", bool(cv.get("gstreamer")),
                              "OpenCV is built without GStreamer (pip wheels are): no CSI "
                              "cameras (nvarguscamerasrc) or GStreamer pipelines", fix))
    return advice


def run_doctor(probes: Optional[Dict[str, Probe]] = None,
               skip: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Run every probe (isolated) and derive the per-backend advice.

    Args:
        probes: name → probe function (default :data:`PROBES`).
        skip: probe names not to run (e.g. ``("cameras",)``).

    Returns:
        ``{"siamese_edge": version, "probes": {name: result}, "backends": [advice...]}``.
    """
    from siamese_edge import __version__

    probes = PROBES if probes is None else probes
    results = {name: run_probe(probe) for name, probe in probes.items() if name not in skip}
    try:
        backends = advise(results)
    except Exception as exc:  # noqa: BLE001 - advice must never cost the report
        backends = [{"backend": "doctor", "ready": False, "missing": first_line(exc),
                     "fix": "report this as a siamese-edge bug"}]
    return {"siamese_edge": __version__, "probes": results, "backends": backends}


def format_report(report: Dict[str, Any]) -> str:
    """The doctor report as text, one line per finding."""
    p = report["probes"]
    lines = [f"siamese-edge {report['siamese_edge']}"]

    def line(name: str, text: str) -> None:
        lines.append(f"  {name:<12} {text}")

    def failed(name: str) -> bool:
        if name in p and not p[name].get("ok", False) and "error" in p[name]:
            line(name, f"FAILED: {p[name]['error']}")
            return True
        return name not in p

    if not failed("python"):
        line("python", f"{p['python']['version']} ({p['python']['machine']}, "
                       f"{p['python']['platform']})")
    if not failed("numpy"):
        line("numpy", p["numpy"]["version"])
    if not failed("onnxruntime"):
        ort = p["onnxruntime"]
        statuses = ", ".join(f"{name.replace('ExecutionProvider', '')}: {r['status']}"
                             for name, r in ort["providers"].items())
        line("onnxruntime", f"{ort['version']} ({statuses})")
    if "tensorrt" in p:
        trt = p["tensorrt"]
        if trt.get("installed"):
            line("tensorrt", f"{trt['module']} {trt['version']}, builder: "
                             f"{'yes' if trt.get('builder') else 'no'}"
                             + (f" ({trt['builder_error']})" if trt.get("builder_error") else ""))
        else:
            line("tensorrt", f"not installed ({trt.get('error', '?')})")
    if not failed("cuda"):
        devices = p["cuda"]["devices"]
        line("cuda", "; ".join(f"{d['name']} (sm {d['compute_capability']})" for d in devices)
             if devices else f"no GPU visible ({p['cuda'].get('note', 'none found')})")
    if not failed("opencv"):
        cv = p["opencv"]
        flags = ", ".join(f"{k}: {'yes' if cv[k] else 'no'}"
                          for k in ("gstreamer", "v4l2", "ffmpeg"))
        line("opencv", f"{cv['version']} ({flags})")
    if not failed("cameras"):
        cams = p["cameras"]
        working = [i for i, r in cams["indexes"].items() if r["status"] == "works"]
        line("cameras", f"{', '.join(cams['devices']) or 'no /dev/video*'}; working "
                        f"indexes: {', '.join(working) or 'none'}"
                        + ("; argus socket present" if cams.get("argus_socket") else ""))
    if not failed("jetson"):
        jet = p["jetson"]
        line("jetson", f"{jet['model']}, L4T {jet['l4t']}, JetPack {jet['jetpack']}"
             if jet.get("is_jetson") else "not a Jetson")
    lines.append("backends:")
    for entry in report["backends"]:
        if entry["ready"]:
            lines.append(f"  {entry['backend']:<22} ready"
                         + (f" ({entry['note']})" if entry.get("note") else ""))
        else:
            lines.append(f"  {entry['backend']:<22} missing: {entry['missing']}")
            lines.append(f"  {'':<22} fix: {entry['fix']}")
    return "\n".join(lines)
