"""The real parse-and-build path. TensorRT-RTX (``pip install tensorrt-rtx``) builds on a
CPU-only machine, so CI runs it; the full TensorRT needs a GPU (``gpu`` marker)."""

from __future__ import annotations

import json

import pytest

from siamese_edge.tensorrt.builder import BatchProfile, EngineBuildOptions, build_engine
from siamese_edge.tensorrt.errors import EngineBuildError, TensorRTUnavailableError
from siamese_edge.tensorrt.sidecar import EngineSidecar, sidecar_path


def _tensorrt():
    from siamese_edge.tensorrt import load_tensorrt

    try:
        return load_tensorrt()
    except TensorRTUnavailableError as exc:
        pytest.skip(f"no TensorRT here ({exc}); 'pip install tensorrt-rtx' builds on a CPU")


def _build(tiny_model, path, **options):
    try:
        return build_engine(tiny_model, path, EngineBuildOptions(**options))
    except EngineBuildError as exc:
        if "CUDA" in str(exc) or "cuda" in str(exc):
            pytest.skip(f"this TensorRT cannot build without a GPU: {exc}")
        raise


def test_batch_profile_parsing():
    assert BatchProfile.parse("1:8:32") == BatchProfile(1, 8, 32)
    assert BatchProfile.parse("4") == BatchProfile(4, 4, 4)
    for bad in ("8:1:32", "a:b:c", "1:2", "0:1:1"):
        with pytest.raises(Exception):
            BatchProfile.parse(bad)


def test_int8_without_calibration_images_is_refused_before_any_work():
    with pytest.raises(Exception, match="--calib"):
        EngineBuildOptions(precision="int8")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tiny_model_parses_and_builds(tmp_path, tiny_model, precision):
    trt = _tensorrt()
    engine = tmp_path / "tiny.engine"
    report = _build(tiny_model, engine, precision=precision, batch=BatchProfile(1, 4, 16),
                    workspace_mb=64)
    assert engine.stat().st_size == report.engine_bytes > 1000
    sidecar = EngineSidecar.read(engine)
    assert sidecar.tensorrt_version == f"{trt.__name__} {trt.__version__}"
    assert sidecar.batch == {"min": 1, "opt": 4, "max": 16}
    assert sidecar.precision == precision and sidecar.onnx_fingerprint.startswith("sha256:")
    assert json.loads(sidecar_path(engine).read_text())["model_info"]["embedding_dim"] == 8
    if not hasattr(trt.BuilderFlag, "FP16") and precision == "fp16":
        assert "strongly typed" in report.precision_mode
    # built engine bytes are exactly what TensorRT serialized: no header glued on
    assert engine.read_bytes()[:4] != b"{\"te"
    # the converted copy it was built from does not stay beside the engine
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["tiny.engine", "tiny.engine.json"],
        ["tiny.engine", "tiny.engine.json", "tiny.engine.timing.cache"])


def test_a_model_above_its_targets_opset_gets_a_note_and_the_sidecar_names_the_target(
        tmp_path, tiny_model):
    from siamese_edge.tensorrt.op_support import require_op_support
    from siamese_edge.tensorrt.targets import resolve_engine_options

    _tensorrt()
    opset = require_op_support(tiny_model).opset
    options = resolve_engine_options(None, "1:2:4", 64, None, "jetson-jp5-fp16", True)
    assert (options.target, options.target_opset) == ("jetson-jp5-fp16", 17)
    engine = tmp_path / "jp5.engine"
    report = _build(tiny_model, engine, **{**options.__dict__, "target_opset": opset - 1})
    assert any(f"is opset {opset}, above the {opset - 1} target jetson-jp5-fp16" in note
               for note in report.notes)
    sidecar = EngineSidecar.read(engine)
    assert (sidecar.target, sidecar.workspace_mb) == ("jetson-jp5-fp16", 64)
    at_opset = _build(tiny_model, tmp_path / "same.engine",
                      **{**options.__dict__, "target_opset": opset})
    assert not any("above the" in note for note in at_opset.notes)


def test_the_target_opset_note_needs_no_onnx_package(tmp_path, tiny_model, monkeypatch):
    # the Jetson image has no onnx package: the op check is skipped, the opset still read
    import sys

    _tensorrt()
    monkeypatch.setitem(sys.modules, "onnx", None)
    report = _build(tiny_model, tmp_path / "e.engine", batch=BatchProfile(1, 2, 4),
                    workspace_mb=64, target="jetson-jp5-fp16", target_opset=17)
    assert "op-support check skipped: the onnx package is not installed" in report.notes
    assert any("is opset 18, above the 17 target jetson-jp5-fp16" in n for n in report.notes)


def test_int8_builds_from_qdq_or_calibrator(tmp_path, tiny_model):
    trt = _tensorrt()
    from model_factory import write_random_people

    write_random_people(tmp_path / "calib", ("a", "b"), 20, (16, 16))
    if hasattr(trt, "IInt8EntropyCalibrator2"):
        from siamese_edge.tensorrt.cuda_memory import device_count
        if device_count() == 0:
            pytest.skip("implicit INT8 calibration runs the network: needs a GPU")
    report = _build(tiny_model, tmp_path / "tiny.int8.engine", precision="int8",
                    calib_dir=str(tmp_path / "calib"), batch=BatchProfile(1, 4, 16))
    assert "Q/DQ" in report.precision_mode or "Calibrator" in report.precision_mode
    assert not list(tmp_path.glob("*.qdq.onnx"))


def test_parse_errors_are_all_reported(tmp_path, tiny_model):
    _tensorrt()
    onnx = pytest.importorskip("onnx")
    from siamese_edge.model_info import METADATA_KEY
    from siamese_edge.runtime.model_file import read_model_info

    model = onnx.load(str(tiny_model))
    model.graph.node[1].op_type = "NoSuchOp"
    model.graph.node[1].name = "mystery"
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, read_model_info(tiny_model).to_json()
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(Exception, match="could not parse.*NoSuchOp"):
        build_engine(path, tmp_path / "broken.engine", EngineBuildOptions(check_ops=False))


def test_fixed_input_name_mismatch_is_reported(tmp_path, tiny_model):
    _tensorrt()
    from dataclasses import replace

    from siamese_edge.model_info import METADATA_KEY
    from siamese_edge.onnx_metadata import write_metadata_entry
    from siamese_edge.runtime.model_file import read_model_info

    path = tmp_path / "renamed.onnx"
    path.write_bytes(tiny_model.read_bytes())
    write_metadata_entry(path, METADATA_KEY,
                         replace(read_model_info(tiny_model), input_name="pixels").to_json())
    with pytest.raises(EngineBuildError, match="names input 'pixels'"):
        build_engine(path, tmp_path / "x.engine")


def test_an_engine_failing_parity_never_replaces_the_one_in_place(tmp_path, tiny_model,
                                                                 monkeypatch):
    from siamese_edge.tensorrt import cuda_memory, parity
    from siamese_edge.tensorrt.errors import ParityError

    _tensorrt()
    engine = tmp_path / "tiny.engine"
    _build(tiny_model, engine, parity=False)  # the good engine a deployment runs today
    good, good_sidecar = engine.read_bytes(), sidecar_path(engine).read_text()
    checked = []

    def verdict(failures):
        def check(onnx_path, engine_path, *args, **kwargs):
            checked.append(engine_path)
            return parity.ParityReport("fp32", 8, 28, 0.5, 0.0, 1.0, 0.0, None, None, None,
                                       None, parity.ParityBounds(0.01, 0.01, 0.01),
                                       failures=list(failures))
        return check

    monkeypatch.setattr(cuda_memory, "device_count", lambda: 1)  # as if a GPU ran the check
    monkeypatch.setattr(parity, "check_engine_parity", verdict(["max |diff| 0.5 > 0.01"]))
    with pytest.raises(ParityError, match="tiny.engine is unchanged"):
        _build(tiny_model, engine, batch=BatchProfile(1, 2, 4))
    assert checked[-1].name == "tiny.engine.candidate"
    assert engine.read_bytes() == good and sidecar_path(engine).read_text() == good_sidecar
    rejected = tmp_path / "tiny.engine.rejected"
    assert EngineSidecar.read(rejected).batch == {"min": 1, "opt": 2, "max": 4}
    assert not (tmp_path / "tiny.engine.candidate").exists()

    monkeypatch.setattr(parity, "check_engine_parity", verdict([]))
    _build(tiny_model, engine, batch=BatchProfile(1, 2, 4))
    assert EngineSidecar.read(engine).batch == {"min": 1, "opt": 2, "max": 4}
    assert not (tmp_path / "tiny.engine.candidate").exists()


def test_an_opset_note_is_shown_only_for_the_tensorrt_it_is_about():
    import types

    from siamese_edge.tensorrt.op_support import opset_note

    def trt(name, version):
        return types.SimpleNamespace(__name__=name, __version__=version)

    assert "above 17, the newest TensorRT 8.5 (JetPack 5)" in opset_note(18, trt("tensorrt",
                                                                               "8.5.2.2"))
    # it was on every build: desktops and TensorRT-RTX were told to re-export for JetPack 5
    assert opset_note(18, trt("tensorrt", "10.3.0")) is None
    assert opset_note(18, trt("tensorrt_rtx", "1.7.1.116")) is None
    assert "above 20, the newest TensorRT 10.0 parses" in opset_note(21, trt("tensorrt",
                                                                        "10.0.1"))
    assert opset_note(21, trt("tensorrt", "10.7.0")) is None
    assert opset_note(17, trt("tensorrt", "8.5.2.2")) is None  # within its limit
    # JetPack 4's TensorRT 8.2 (the original Nano) was told "export with --opset 17", which
    # it cannot parse either
    for old in ("8.2.1.8", "7.1.3"):
        note = opset_note(17, trt("tensorrt", old))
        assert note and "predates 8.5" in note and "--opset 17" not in note
    assert opset_note(17, trt("tensorrt", "8.6.1")) is None
