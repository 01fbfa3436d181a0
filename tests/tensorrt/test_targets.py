"""Target profiles in export/ load, validate and become build options."""

from __future__ import annotations

import json

import pytest

from siamese_edge.tensorrt.builder import BatchProfile
from siamese_edge.tensorrt.errors import TargetError
from siamese_edge.tensorrt.targets import list_targets, load_target

EXPECTED = {"cpu-onnx", "jetson-orin-fp16", "jetson-orin-nano-fp16", "jetson-jp5-fp16",
            "desktop-int8", "desktop-fp16"}


def test_every_shipped_target_loads_and_validates():
    targets = list_targets()
    assert EXPECTED <= set(targets)
    for name in EXPECTED:
        profile = load_target(name)
        assert profile.name == name and profile.description
        if profile.backend == "tensorrt":
            options = profile.build_options(calib_dir="photos")
            assert options.precision == profile.precision
            assert options.batch == BatchProfile.parse(profile.batch)


def test_jetpack5_target_uses_an_opset_tensorrt_8_5_parses():
    assert load_target("jetson-jp5-fp16").opset <= 17


def test_overrides_win_and_int8_needs_calibration_images():
    profile = load_target("desktop-int8")
    assert profile.build_options(calib_dir="x", precision="fp16").precision == "fp16"
    with pytest.raises(Exception, match="--calib"):
        profile.build_options()


@pytest.mark.parametrize("data, message", [
    ({"description": "x", "backend": "tensorrt", "precision": "fp8", "batch": "1:8:32",
      "opset": 18, "workspace_mb": 1}, "precision 'fp8'"),
    ({"description": "x", "backend": "tensorrt", "precision": "fp16", "batch": "8:1:32",
      "opset": 18, "workspace_mb": 1}, "min <= opt <= max"),
    ({"description": "x", "backend": "tensorrt", "precision": "fp16", "batch": "1:8:32",
      "opset": 18, "workspace_mb": 1, "wrkspace": 2}, "unknown keys wrkspace"),
    ({"description": "x", "backend": "tensorrt"}, "missing keys"),
    ({"description": "x", "backend": "tensorrt", "precision": "fp16", "batch": "1:8:32",
      "opset": "abc", "workspace_mb": 1}, "bad.json: .*opset must be an integer, got 'abc'"),
    ({"description": "x", "backend": "tensorrt", "precision": "fp16", "batch": "1:8:32",
      "opset": "18", "workspace_mb": 1}, "opset must be an integer, got '18'"),
    ({"description": "x", "backend": "onnxruntime", "precision": "fp32", "batch": "1:8:32",
      "opset": 17.5, "workspace_mb": 0}, "opset must be an integer, got 17.5"),
    ({"description": "x", "backend": "tensorrt", "precision": "fp16", "batch": "1:8:32",
      "opset": 18, "workspace_mb": "lots"}, "workspace_mb must be an integer"),
    ({"description": "x", "backend": "tensorrt", "precision": "int8", "batch": "1:8:32",
      "opset": 18, "workspace_mb": 1, "calib_count": "9"}, "calib_count must be an integer"),
    ({"description": "x", "backend": "tensorrt", "precision": "int8", "batch": "1:8:32",
      "opset": 18, "workspace_mb": 1, "calib_count": 0}, "calib_count must be at least 1"),
])
def test_bad_profiles_are_one_line_errors(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TargetError, match=message):
        load_target(path)


def test_unknown_target_lists_known_ones():
    with pytest.raises(TargetError, match="known: .*jetson-orin-fp16"):
        load_target("pdp-11")


def test_env_folder_is_searched_first(tmp_path, monkeypatch):
    (tmp_path / "mine.json").write_text(json.dumps(
        {"description": "mine", "backend": "onnxruntime", "precision": "fp32",
         "batch": "1:1:1", "opset": 18, "workspace_mb": 0}))
    monkeypatch.setenv("SIAMESE_EDGE_TARGETS", str(tmp_path))
    assert load_target("mine").description == "mine"


def test_the_renamed_nano_target_says_what_it_is_now():
    from siamese_edge.tensorrt.errors import TargetError
    from siamese_edge.tensorrt.targets import load_target

    with pytest.raises(TargetError, match="'jetson-nano-fp16' is now 'jetson-orin-nano-fp16'"):
        load_target("jetson-nano-fp16")
    assert load_target("jetson-orin-nano-fp16").workspace_mb == 512
