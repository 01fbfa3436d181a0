"""siamese-edge doctor: report schema, real provider sessions, isolation, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

from siamese_edge import doctor


def test_report_schema_and_cpu_provider_works():
    report = doctor.run_doctor(skip=("cameras",))
    json.dumps(report)  # JSON-able
    probes = report["probes"]
    assert set(probes) == set(doctor.PROBES) - {"cameras"}
    assert probes["python"]["version"].count(".") == 2
    ort = probes["onnxruntime"]
    assert ort["providers"]["CPUExecutionProvider"]["status"] == "works"
    assert "CPUExecutionProvider" in ort["working_providers"]
    for key in ("gstreamer", "v4l2", "ffmpeg"):
        assert isinstance(probes["opencv"][key], bool)
    assert isinstance(probes["cuda"]["devices"], list)
    names = [entry["backend"] for entry in report["backends"]]
    assert {"onnxruntime-cpu", "onnxruntime-cuda", "tensorrt", "camera-gstreamer"} <= set(names)
    for entry in report["backends"]:
        assert isinstance(entry["ready"], bool)
        if not entry["ready"]:
            assert entry["missing"] and entry["fix"]
    assert "backends:" in doctor.format_report(report)


def test_tiny_model_is_valid_onnx():
    import pytest

    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(doctor.tiny_onnx_model())
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["Relu"]


def test_missing_tensorrt_gives_advice(monkeypatch):
    from siamese_edge.tensorrt.errors import TensorRTUnavailableError

    def no_tensorrt(preferred=None):
        raise TensorRTUnavailableError("TensorRT is not installed here")

    monkeypatch.setattr("siamese_edge.tensorrt.load_tensorrt", no_tensorrt)
    report = doctor.run_doctor(skip=("cameras", "onnxruntime"))
    assert report["probes"]["tensorrt"]["installed"] is False
    (trt,) = [e for e in report["backends"] if e["backend"] == "tensorrt"]
    assert trt["ready"] is False and "pip install tensorrt" in trt["fix"]


def test_jetson_advice_uses_the_jetson_index():
    probes = {"jetson": {"ok": True, "is_jetson": True, "jetpack": "6.1"},
              "onnxruntime": {"ok": True, "providers": {"CPUExecutionProvider":
                                                        {"status": "works"}},
                              "distributions": {"onnxruntime": "1.20"}},
              "tensorrt": {"installed": True, "builder": True, "module": "tensorrt"},
              "cuda": {"devices": [], "source": None},
              "opencv": {"ok": True, "gstreamer": False, "v4l2": True, "ffmpeg": True,
                         "distributions": {"opencv-python-headless": "4.10"}}}
    advice = {e["backend"]: e for e in doctor.advise(probes)}
    assert doctor.JETSON_ORT_INDEX["6"] in advice["onnxruntime-cuda"]["fix"]
    assert "python3-opencv" in advice["camera-gstreamer"]["fix"]
    assert "opencv-python-headless" in advice["camera-gstreamer"]["fix"]


def test_cuda_python_that_fails_is_not_called_missing():
    # it said "not installed" and advised installing it, when it was installed and failing
    probes = {"jetson": {"ok": True, "is_jetson": False},
              "onnxruntime": {"ok": True, "providers": {}, "distributions": {}},
              "tensorrt": {"installed": True, "builder": True, "module": "tensorrt"},
              "cuda": {"ok": True, "source": "nvidia-smi", "devices": [{"name": "RTX"}],
                       "errors": ["cuda-python: cudaErrorInsufficientDriver"]},
              "opencv": {"ok": True, "gstreamer": False, "v4l2": True, "ffmpeg": True,
                         "distributions": {}}}
    trt = {e["backend"]: e for e in doctor.advise(probes)}["tensorrt"]
    assert trt["ready"] is False and "cudaErrorInsufficientDriver" in trt["missing"]
    assert "not installed" not in trt["missing"] and "pip install" not in trt["fix"]
    probes["cuda"] = {"ok": True, "source": "nvidia-smi", "devices": [{"name": "RTX"}]}
    trt = {e["backend"]: e for e in doctor.advise(probes)}["tensorrt"]
    assert "not installed" in trt["missing"]  # absent: then installing it is the fix


def test_failing_probe_does_not_crash():
    def broken():
        raise OSError("libcuda.so: cannot open shared object file")

    def hangs_then_imports():
        import not_a_real_module  # noqa: F401

    report = doctor.run_doctor(probes={"python": doctor.probe_python, "cuda": broken,
                                       "opencv": hangs_then_imports})
    assert report["probes"]["python"]["ok"] is True
    assert report["probes"]["cuda"] == {"ok": False, "error": "OSError: libcuda.so: cannot "
                                                              "open shared object file"}
    assert report["probes"]["opencv"]["ok"] is False
    assert "FAILED" in doctor.format_report(report)


def test_call_with_timeout_gives_up():
    import threading

    import pytest

    event = threading.Event()
    with pytest.raises(TimeoutError):
        doctor.call_with_timeout(lambda: event.wait(5), 0.05)
    event.set()


def test_parsers():
    text = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:  YES (1.20.3)\n" \
           "    v4l/v4l2:                    NO\n"
    assert doctor.parse_build_information(text) == {"gstreamer": True, "v4l2": False,
                                                    "ffmpeg": True, "cuda": False}
    release = "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64"
    assert doctor.parse_tegra_release(release) == "36.4.0"
    assert doctor.jetpack_for_l4t("36.4.0") == "6.1"
    assert doctor.jetpack_for_l4t("35.4.1") == "5.1.2"


def test_jetson_probe_reads_release_files(tmp_path):
    (tmp_path / "rel").write_text("# R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref\n")
    (tmp_path / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    result = doctor.probe_jetson(str(tmp_path / "rel"), str(tmp_path / "model"))
    assert result["is_jetson"] and result["l4t"] == "35.4.1"
    assert result["model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert result["jetpack"] in ("5.1.2",) or result["jetpack_source"] == "dpkg nvidia-jetpack"


def test_doctor_command_does_not_import_torch():
    script = ("import sys, json\n"
              "from click.testing import CliRunner\n"
              "from siamese_edge.cli import cli\n"
              "r = CliRunner().invoke(cli, ['doctor', '--json', '--no-cameras'])\n"
              "assert r.exit_code == 0, r.output\n"
              "json.loads(r.output)\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('torch', 'onnx', 'matplotlib'))))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_camera_usb_ready_says_when_no_camera_is_connected():
    # "camera-usb ready" beside "no /dev/video*" read as a contradiction
    probes = {"jetson": {"ok": True, "is_jetson": False},
              "onnxruntime": {"ok": True, "providers": {}, "distributions": {}},
              "tensorrt": {"installed": False},
              "cuda": {"ok": True, "source": None, "devices": []},
              "opencv": {"ok": True, "gstreamer": False, "v4l2": True, "ffmpeg": True,
                         "distributions": {}},
              "cameras": {"ok": True, "devices": [], "indexes": {"0": {"status": "absent"}}}}
    usb = {e["backend"]: e for e in doctor.advise(probes)}["camera-usb"]
    assert usb["ready"] is True and "no camera is connected" in usb["note"]
    probes["cameras"] = {"ok": True, "devices": ["/dev/video0"],
                         "indexes": {"0": {"status": "works"}}}
    assert "note" not in {e["backend"]: e for e in doctor.advise(probes)}["camera-usb"]


def test_a_failing_cuda_python_is_reported_when_nothing_else_finds_a_gpu(monkeypatch):
    # a Jetson has no nvidia-smi: the failure was kept only in a note, and the advice was
    # again "not installed, pip install cuda-python"
    def failing():
        raise RuntimeError("cudaErrorInsufficientDriver")

    monkeypatch.setattr(doctor, "_cuda_python_devices", failing)
    monkeypatch.setattr(doctor, "_nvidia_smi_devices", lambda: None)
    cuda = doctor.probe_cuda()
    assert any(e.startswith("cuda-python:") and "InsufficientDriver" in e
               for e in cuda["errors"])
    probes = {"jetson": {"ok": True, "is_jetson": True, "jetpack": "5.1"},
              "onnxruntime": {"ok": True, "providers": {}, "distributions": {}},
              "tensorrt": {"installed": True, "builder": True, "module": "tensorrt"},
              "cuda": cuda,
              "opencv": {"ok": True, "gstreamer": True, "v4l2": True, "ffmpeg": True,
                         "distributions": {}}}
    trt = {e["backend"]: e for e in doctor.advise(probes)}["tensorrt"]
    assert "installed but fails" in trt["missing"] and "pip install" not in trt["fix"]
