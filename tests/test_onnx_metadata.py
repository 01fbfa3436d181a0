import json

import pytest

from siamese_edge.model_info import METADATA_KEY
from siamese_edge.onnx_metadata import read_metadata, write_metadata_entry
from siamese_edge.runtime.model_file import read_model_info


def test_rewrite_keeps_graph_and_other_entries(tmp_path, tiny_model):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model.read_bytes())
    model = onnx.load(str(path))
    model.metadata_props.add(key="author", value="test")
    onnx.save(model, str(path))
    graph_before = onnx.load(str(path)).graph.SerializeToString()

    info = read_model_info(path)
    updated = info.with_threshold(0.123, "FAR 1e-3 on test data")
    write_metadata_entry(path, METADATA_KEY, updated.to_json())

    assert read_model_info(path).threshold == pytest.approx(0.123)
    meta = read_metadata(path)
    assert meta["author"] == "test"
    assert json.loads(meta[METADATA_KEY])["threshold_source"] == "FAR 1e-3 on test data"
    reloaded = onnx.load(str(path))
    onnx.checker.check_model(reloaded)
    assert reloaded.graph.SerializeToString() == graph_before
    assert [p.key for p in reloaded.metadata_props].count(METADATA_KEY) == 1


def test_rewrite_keeps_permissions_and_symbolic_links(tmp_path, tiny_model):
    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    model.write_bytes(tiny_model.read_bytes())
    model.chmod(0o644)
    link = tmp_path / "current.onnx"
    link.symlink_to(model)

    write_metadata_entry(link, "author", "test")

    assert (model.stat().st_mode & 0o777) == 0o644
    assert link.is_symlink() and read_metadata(model)["author"] == "test"


def test_a_damaged_file_is_named_in_the_error(tmp_path, tiny_model):
    from siamese_edge.errors import ModelError

    path = tmp_path / "cut.onnx"
    path.write_bytes(tiny_model.read_bytes()[:len(tiny_model.read_bytes()) // 2])
    with pytest.raises(ModelError, match=f"^{path}: truncated ONNX file"):
        read_metadata(path)
    before = path.read_bytes()
    with pytest.raises(ModelError, match=f"^{path}: truncated ONNX file"):
        write_metadata_entry(path, "k", "v")
    assert path.read_bytes() == before


@pytest.mark.parametrize("opset", [18, 20])
def test_the_opset_is_read_without_the_onnx_package(tmp_path, opset):
    onnx = pytest.importorskip("onnx")
    from model_factory import make_tiny_model

    from siamese_edge.onnx_metadata import read_opset

    path = tmp_path / "m.onnx"
    make_tiny_model(path, opset=opset)
    declared = [o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")]
    assert read_opset(path) == max(declared) == opset


def test_the_opset_of_the_default_domain_is_read_among_others(tmp_path):
    onnx = pytest.importorskip("onnx")
    from model_factory import make_tiny_model

    from siamese_edge.onnx_metadata import read_opset

    path = tmp_path / "m.onnx"
    make_tiny_model(path)
    model = onnx.load(str(path))
    model.opset_import.add(domain="com.microsoft", version=99)  # a custom domain's
    model.opset_import.add(domain="ai.onnx.ml", version=5)
    onnx.save(model, str(path))
    assert read_opset(path) == 18
