from pathlib import Path

import cv2
import numpy as np
import pytest

from siamese_edge.errors import ImageReadError, InvalidInputError
from siamese_edge.runtime import pairs as pairs_module
from siamese_edge.runtime.gallery import Gallery
from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder
from siamese_edge.runtime.pairs import compare_pairs, read_pair_list
from siamese_edge.runtime.verifier import Verifier


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        path = tmp_path / f"img {i}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (16, 16), dtype=np.uint8))
        paths.append(str(path))
    return paths


def test_scores_match_the_embeddings_and_the_gallery_verifier(tmp_path, tiny_model, files):
    a, b, c, _ = files
    with OnnxRuntimeEmbedder(tiny_model) as embedder:
        report = compare_pairs(embedder, [(a, b), (a, a), (c, b)], threshold=0.5)
        vectors = embedder.embed([cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in (a, b, c)])
        with Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
            gallery.enroll("b", vectors[1:2])
            verified = Verifier(embedder, gallery, threshold=0.5).verify(
                [cv2.imread(a, cv2.IMREAD_GRAYSCALE)], "b")[0]
    scores = [d.score for d in report.decisions]
    assert scores[0] == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-6)
    assert scores[1] == pytest.approx(1.0, abs=1e-5)
    assert scores[2] == pytest.approx(float(vectors[2] @ vectors[1]), abs=1e-6)
    # the same pair scored through a one-template gallery gives the same number, exactly
    assert scores[0] == verified.score
    assert [d.accepted for d in report.decisions] == [s >= 0.5 for s in scores]
    assert report.failures == []


def test_default_threshold_is_the_models_and_decisions_follow_it(tiny_model, files):
    a, b, _, _ = files
    with OnnxRuntimeEmbedder(tiny_model) as embedder:
        report = compare_pairs(embedder, [(a, b)])
        assert report.threshold == embedder.info.threshold
        score = report.decisions[0].score
        assert compare_pairs(embedder, [(a, b)], threshold=score).decisions[0].accepted
        # float64 comparison: 1e-9 above a float32 score is above it
        assert not compare_pairs(embedder, [(a, b)],
                                 threshold=score + 1e-9).decisions[0].accepted
        with pytest.raises(InvalidInputError, match="finite"):
            compare_pairs(embedder, [(a, b)], threshold=float("nan"))


def test_each_image_is_read_once_and_chunks_do_not_change_scores(tiny_model, files,
                                                                 monkeypatch):
    a, b, c, d = files
    pairs = [(a, b), (b, c), (c, d), (d, a), (a, c)]
    with OnnxRuntimeEmbedder(tiny_model) as embedder:
        whole = compare_pairs(embedder, pairs, threshold=0.0)
        reads = []
        original = pairs_module.read_image
        monkeypatch.setattr(pairs_module, "read_image",
                            lambda p: reads.append(p) or original(p))
        monkeypatch.setattr(pairs_module, "CHUNK", 3)
        chunked = compare_pairs(embedder, pairs, threshold=0.0)
    assert sorted(reads) == sorted(files)
    assert [x.score for x in chunked.decisions] == pytest.approx(
        [x.score for x in whole.decisions], abs=1e-6)


def test_pairs_with_an_unreadable_image_are_skipped_or_raise(tmp_path, tiny_model, files):
    a, b, c, _ = files
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    pairs = [(a, b), (a, str(broken)), (str(broken), c), (b, c)]
    with OnnxRuntimeEmbedder(tiny_model) as embedder:
        report = compare_pairs(embedder, pairs, threshold=0.0)
        assert [(d.first, d.second) for d in report.decisions] == [(a, b), (b, c)]
        assert [f for f, _ in report.failures] == [str(broken)]  # once, not per pair
        with pytest.raises(ImageReadError):
            compare_pairs(embedder, pairs, threshold=0.0, skip_unreadable=False)
        with pytest.raises(InvalidInputError, match="no pair could be compared.*1 unreadable, "
                                                    "first .*broken.png"):
            compare_pairs(embedder, [(a, str(broken))], threshold=0.0)


def test_pair_lists(tmp_path):
    (tmp_path / "sub").mkdir()
    listing = tmp_path / "sub" / "pairs.txt"
    listing.write_text("# questioned, reference\n\n"
                       "q1.png\tref/r1.png\n"
                       "q2.png, /abs/r2.png\n"
                       '"with, comma.png",r3.png\n')
    assert read_pair_list(listing) == [
        (str(tmp_path / "sub" / "q1.png"), str(tmp_path / "sub" / "ref" / "r1.png")),
        (str(tmp_path / "sub" / "q2.png"), "/abs/r2.png"),
        (str(tmp_path / "sub" / "with, comma.png"), str(tmp_path / "sub" / "r3.png")),
    ]
    # a labelled pairs CSV, as train and evaluate read it: the label is ignored here; any
    # first row without a label is its header; a spreadsheet's BOM is not part of a path
    for header in ("img1,img2,label\n", "left,right,same\n", ""):
        listing.write_bytes(b"\xef\xbb\xbf" + (header + "q1.png,r1.png,1\r\n"
                                               "q2.png,r2.png,0\n").encode())
        assert [tuple(Path(p).name for p in pair) for pair in read_pair_list(listing)] == [
            ("q1.png", "r1.png"), ("q2.png", "r2.png")]
    for text, message in [("a.png\n", "line 1: expected two"),
                          ("x.png,y.png\na.png,b.png,same\n", "line 2: expected two"),
                          ("x.png,y.png\na.png,b\x00.png\n", "line 2: a path holds a NUL"),
                          ("a.png,b.png,1,2\n", "line 1: expected two"),
                          ("x.png,y.png\na.png,b.png,c.png\n", "line 2: expected two"),
                          ("a.png,\n", "line 1: expected two"),
                          ("# nothing\n", "no pairs")]:
        listing.write_text(text)
        with pytest.raises(InvalidInputError, match=message):
            read_pair_list(listing)
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_pair_list(tmp_path / "missing.txt")
    listing.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_pair_list(listing)


def test_a_first_pair_labelled_plus_one_is_a_pair_not_a_header(tmp_path):
    # the same rule as the pairs CSV reader (int()): "+1" dropped the first pair
    from siamese_edge.runtime.pairs import read_pair_list

    listing = tmp_path / "p.csv"
    listing.write_text("a.png,b.png,+1\nc.png,d.png,0\n")
    assert [tuple(Path(x).name for x in pair) for pair in read_pair_list(listing)] == \
        [("a.png", "b.png"), ("c.png", "d.png")]
