import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from siamese_edge.cli import cli
from siamese_edge.errors import ExportError
from siamese_edge.exporting.onnx_export import export_run, graph_fingerprint
from siamese_edge.model_info import METADATA_KEY
from siamese_edge.runtime.model_file import read_model_info
from siamese_edge.runtime.workflows import write_threshold


def test_exported_model_describes_itself(exported_model, trained_run):
    info = read_model_info(exported_model)
    run = json.loads((trained_run / "run.json").read_text())
    # the default readout exports the 2x2-pooled 128-channel maps, not the 32-d projection,
    # and the 8 x 4 x 4 gradient histogram beside them
    assert info.embedding_dim == 512 + 128 and info.metric == "cosine"
    assert info.training["readout"] == "features" and info.training["hog_weight"] == 0.3
    assert (info.preprocessing.height, info.preprocessing.width,
            info.preprocessing.channels) == (28, 28, 1)
    assert list(info.preprocessing.mean) == pytest.approx(run["preprocessing"]["mean"])
    assert info.threshold == pytest.approx(run["threshold"])
    assert info.training["loss"] == "triplet" and info.training["classes"] == [
        "0", "1", "5", "8", "9"]
    model = onnx.load(str(exported_model))
    assert info.fingerprint == graph_fingerprint(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def test_dynamic_batch_axis(exported_model):
    session = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] not in (1, 2)  # symbolic
    for batch in (1, 3, 37):
        out = session.run(None, {"images": np.random.rand(batch, 1, 28, 28).astype(np.float32)})
        assert out[0].shape == (batch, 512 + 128)  # features readout + gradient histogram
        np.testing.assert_allclose(np.linalg.norm(out[0], axis=1), 1, rtol=1e-5)


def test_threshold_rewrite_keeps_the_fingerprint(exported_model, tmp_path):
    copy = tmp_path / "m.onnx"
    copy.write_bytes(exported_model.read_bytes())
    before = read_model_info(copy)
    write_threshold(copy, 0.42, 1e-3, 0.9, "some data", 12345)
    after = read_model_info(copy)
    assert after.threshold == 0.42 and after.fingerprint == before.fingerprint
    assert after.calibration["far"] == 1e-3
    assert graph_fingerprint(onnx.load(str(copy))) == before.fingerprint
    # ... while one changed weight is another model: galleries and engines must tell
    model = onnx.load(str(copy))
    weights = model.graph.initializer[0]
    values = onnx.numpy_helper.to_array(weights).copy()
    values.flat[0] += 1.0
    weights.CopyFrom(onnx.numpy_helper.from_array(values, weights.name))
    assert graph_fingerprint(model) != before.fingerprint


def test_parity_failure_leaves_no_file(trained_run, tmp_path):
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"max \|diff\|"):
        export_run(trained_run, out, tolerance=-1.0)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_model_that_outputs_nan_is_not_exported(trained_run, tmp_path):
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    weight = next(k for k in state["state_dict"] if k.endswith("weight"))
    state["state_dict"][weight] = torch.full_like(state["state_dict"][weight], float("nan"))
    torch.save(state, run / "checkpoint.pt")
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="NaN or inf"):  # it passed parity with diff 0
        export_run(run, out)
    assert not out.exists()


def test_cli_export_json_and_bad_run(trained_run, tmp_path):
    result = CliRunner().invoke(cli, ["export", str(trained_run), "--out",
                                      str(tmp_path / "m.onnx"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["max_abs_diff"] <= doc["tolerance"] == 1e-4
    assert METADATA_KEY  # the key the runtime reads
    result = CliRunner().invoke(cli, ["export", str(tmp_path), "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "not a training run" in result.output


def test_cli_export_keeps_an_existing_model_unless_overwrite(trained_run, tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"the model galleries were enrolled with")
    result = CliRunner().invoke(cli, ["export", str(trained_run), "--out", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert out.read_bytes() == b"the model galleries were enrolled with"
    result = CliRunner().invoke(cli, ["export", str(trained_run), "--out", str(out),
                                      "--overwrite", "--tolerance", "nan"])
    assert result.exit_code == 2 and "finite" in result.output
    result = CliRunner().invoke(cli, ["export", str(trained_run), "--out", str(out),
                                      "--overwrite"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x08")  # an ONNX protobuf now


def test_opset_17_for_tensorrt_8_5(trained_run, tmp_path):
    out = tmp_path / "m17.onnx"
    report = export_run(trained_run, out, opset=17)
    model = onnx.load(str(out))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    onnx.checker.check_model(model)
    assert report.max_abs_diff <= 1e-4
    with pytest.raises(ExportError, match="below 17"):
        export_run(trained_run, tmp_path / "m16.onnx", opset=16)


def test_opset_17_keeps_the_seed_backbones_pad(tmp_path):
    """onnx has no 18 -> 17 adapter for Pad (the seed backbone's LRN pads channels): its
    runs could not be exported for TensorRT 8.5 / JetPack 5."""
    import contextlib
    import io
    import warnings

    import torch

    from siamese_edge.exporting.onnx_export import convert_opset
    from siamese_edge.training.backbones.seed import SeedNet

    torch.manual_seed(0)
    net = SeedNet(1, 28, 28, 8).eval()
    x = torch.randn(2, 1, 28, 28)
    path = tmp_path / "seed.onnx"
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=True, external_data=False,
                          opset_version=18, input_names=["images"],
                          output_names=["embeddings"])
    model = onnx.load(str(path))
    assert any(node.op_type == "Pad" for node in model.graph.node)
    converted = convert_opset(model, 17)
    onnx.checker.check_model(converted)
    assert [o.version for o in converted.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert all(node.domain == "" for node in converted.graph.node)
    session = ort.InferenceSession(converted.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(["embeddings"], {"images": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-4)
