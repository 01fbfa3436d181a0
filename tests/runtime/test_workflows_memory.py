"""embed_inputs / embed_directory hold one chunk of model-sized images, not every decoded
image at full resolution until a single embed call (12 links to one 8192x8192 PNG: 2.6 GB)."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from model_factory import FullSizeImages  # noqa: E402
from siamese_edge.runtime import workflows  # noqa: E402
from siamese_edge.runtime.imageio import read_image  # noqa: E402


@pytest.fixture()
def embedder(tiny_model):
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    # batch 2 and chunks of 4 (below): several chunks, each of whole batches
    with OnnxRuntimeEmbedder(tiny_model, batch_size=2, intra_op_threads=1) as active:
        yield active


@pytest.fixture()
def people(tmp_path):
    """Two identity folders of images of mixed sizes, gray and colour, one unreadable."""
    rng = np.random.default_rng(3)
    for name, count in (("ann", 7), ("bob", 4)):
        folder = tmp_path / "people" / name
        folder.mkdir(parents=True)
        for i in range(count):
            shape = (int(rng.integers(20, 90)), int(rng.integers(20, 90)))
            image = rng.integers(0, 256, shape + ((3,) if i % 2 else ()), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{i:02d}.png"), image)
    (tmp_path / "people" / "ann" / "03b.png").write_bytes(b"not a png")
    return tmp_path / "people"


class Spy(FullSizeImages):
    """Wraps ``read_image`` and ``embed``: how many full-size images were alive at once, and
    what each embed call was given."""

    def __init__(self, monkeypatch, embedder):
        super().__init__(monkeypatch, workflows)
        self.calls: list[tuple] = []
        real_embed = embedder.embed

        def embedding(images):
            self.calls.append(tuple(np.shape(image) for image in images))
            return real_embed(images)

        monkeypatch.setattr(embedder, "embed", embedding)
        monkeypatch.setattr(workflows, "EMBED_CHUNK", 4)


def test_embed_inputs_embeds_chunk_by_chunk_with_the_same_results(monkeypatch, embedder,
                                                                   people):
    files = sorted(p for p in people.rglob("*.png"))
    readable = [p for p in files if p.name != "03b.png"]
    expected = embedder.embed([read_image(p) for p in readable])
    spy = Spy(monkeypatch, embedder)
    result = workflows.embed_inputs(embedder, [people])
    assert np.array_equal(result.embeddings, expected)
    assert result.paths == [str(p) for p in readable]
    assert result.labels == [p.parent.name for p in readable]
    assert [f for f, _ in result.failures] == [str(people / "ann" / "03b.png")]
    # 11 readable images in chunks of 4, already at the model's 16x16 gray
    assert [len(call) for call in spy.calls] == [4, 4, 3]
    assert {shape for call in spy.calls for shape in call} == {(16, 16, 1)}
    # a full-resolution image is let go once fitted, before the next one is read
    assert spy.most_alive <= 1


def test_embed_directory_embeds_chunk_by_chunk_with_the_same_results(monkeypatch, embedder,
                                                                      people):
    expected = {}
    for folder in ("ann", "bob"):
        paths = sorted(p for p in (people / folder).glob("*.png") if p.name != "03b.png")
        expected[folder] = embedder.embed([read_image(p) for p in paths])
    spy = Spy(monkeypatch, embedder)
    enrolments, failures = workflows.embed_directory(embedder, people)
    assert [e.name for e in enrolments] == ["ann", "bob"]
    for enrolment in enrolments:
        assert np.array_equal(enrolment.embeddings, expected[enrolment.name])
        assert len(enrolment.sources) == len(expected[enrolment.name])
    assert [f for f, _ in failures] == [str(people / "ann" / "03b.png")]
    assert [len(call) for call in spy.calls] == [4, 3, 4]  # ann: 7 readable, bob: 4
    assert {shape for call in spy.calls for shape in call} == {(16, 16, 1)}
    assert spy.most_alive <= 1


def test_a_folder_of_unreadable_files_is_still_reported(monkeypatch, embedder, people):
    for path in (people / "bob").iterdir():
        path.write_bytes(b"broken")
    enrolments, failures = workflows.embed_directory(embedder, people)
    assert [e.name for e in enrolments] == ["ann"]
    assert (str(people / "bob"), "no readable images") in failures
