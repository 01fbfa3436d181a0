import numpy as np
import pytest

from siamese_edge.errors import InvalidInputError, UnknownIdentityError
from siamese_edge.runtime.gallery import Gallery
from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder
from siamese_edge.runtime.verifier import Verifier


def images(seed, n=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(n)]


def test_enrolled_images_are_identified_and_thresholds_give_unknown(tmp_path, tiny_model):
    people = {"ann": images(1), "ben": images(2), "cat": images(3)}
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        for name, imgs in people.items():
            gallery.enroll(name, embedder.embed(imgs))
        verifier = Verifier(embedder, gallery, threshold=0.999)
        probes = people["ann"][:1] + people["cat"][2:]
        decisions = verifier.identify(probes, k=2)
        assert [d.answer for d in decisions] == ["ann", "cat"]
        assert all(d.score == pytest.approx(1.0, abs=1e-5) for d in decisions)
        assert len(decisions[0].candidates) == 2
        strict = Verifier(embedder, gallery, threshold=1.01)
        assert [d.answer for d in strict.identify(probes)] == ["unknown", "unknown"]
        one_to_one = verifier.verify(probes, "ann")
        assert one_to_one[0].accepted and one_to_one[0].identity == "ann"
        with pytest.raises(UnknownIdentityError):
            verifier.verify(probes, "zed")


def test_json_identity_is_the_answer_and_nearest_the_best_match(tmp_path, tiny_model):
    # as in the camera's events: a script reading "identity" took the nearest stranger's
    # name for an answer
    people = {"ann": images(1), "ben": images(2)}
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        for name, imgs in people.items():
            gallery.enroll(name, embedder.embed(imgs))
        probe = people["ann"][:1]
        accepted = Verifier(embedder, gallery, threshold=0.5).identify(probe)[0].to_dict()
        assert (accepted["identity"], accepted["nearest"], accepted["answer"]) == \
            ("ann", "ann", "ann")
        rejected = Verifier(embedder, gallery, threshold=1.01).identify(probe)[0].to_dict()
        assert (rejected["identity"], rejected["nearest"], rejected["answer"]) == \
            (None, "ann", "unknown")
        claim = Verifier(embedder, gallery, threshold=1.01).verify(probe, "ben")[0].to_dict()
        assert claim["identity"] == "ben" and not claim["accepted"] and "nearest" not in claim


def test_default_threshold_comes_from_the_model(tmp_path, tiny_model):
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        assert Verifier(embedder, gallery).threshold == embedder.info.threshold


def test_embedder_outside_with_block_is_an_error(tiny_model):
    with pytest.raises(RuntimeError):
        OnnxRuntimeEmbedder(tiny_model).embed(images(0))


def test_one_to_one_and_one_to_n_agree_at_a_threshold_between_float32_values(tmp_path,
                                                                             tiny_model):
    # A threshold 1e-9 above a float32 score rounds to that score in float32; compared in
    # float32 the probe would be accepted 1:1 and rejected 1:N.
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        gallery.enroll("ann", embedder.embed(images(1)))
        probe = images(2, n=1)
        score = Verifier(embedder, gallery, threshold=0.0).verify(probe, "ann")[0].score
        threshold = score + 1e-9
        assert np.float32(threshold) == np.float32(score)  # the case in question
        verifier = Verifier(embedder, gallery, threshold=threshold)
        one_to_one = verifier.verify(probe, "ann")[0]
        one_to_n = verifier.identify(probe)[0]
        assert one_to_one.score == one_to_n.score == score
        assert not one_to_one.accepted and not one_to_n.accepted


def test_claimed_identity_is_matched_as_enrolment_spells_it(tmp_path, tiny_model):
    # enrolment stores names NFC-normalised and stripped; a claim typed otherwise
    # (decomposed accents from a macOS folder, a stray space) is the same person
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        gallery.enroll("caf\u00e9", embedder.embed(images(1)))
        verifier = Verifier(embedder, gallery, threshold=0.999)
        for claim in ("cafe\u0301", " caf\u00e9 "):
            decision = verifier.verify(images(1, n=1), claim)[0]
            assert decision.accepted and decision.identity == "caf\u00e9"


@pytest.mark.parametrize("option", ["threshold", "margin"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_threshold_or_margin_that_is_not_a_number_is_refused(tmp_path, tiny_model, option,
                                                               value):
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        with pytest.raises(InvalidInputError, match=f"{option} must be a finite number"):
            Verifier(embedder, gallery, **{option: value})


class _FixedInfo:
    """Just enough of an embedder for Verifier.*_embeddings."""

    def __init__(self, info):
        self.info = info


@pytest.mark.parametrize("aggregate", ["max", "mean-top-k"])
def test_a_probe_scores_the_same_alone_in_a_batch_one_to_one_and_one_to_n(tmp_path,
                                                                         aggregate):
    """Float32 matrix products round with the shape of the call: scored alone, in a batch,
    against one identity or the whole gallery, a probe got scores a few ulps apart, and a
    threshold between them made 1:1 and 1:N decide differently."""
    from dataclasses import replace

    from siamese_edge.model_info import ModelInfo, Preprocessing
    from siamese_edge.runtime.matching import aggregation_from_name

    rng = np.random.default_rng(0)
    dim = 640
    info = ModelInfo(Preprocessing(8, 8, 1, (0.5,), (0.5,)), embedding_dim=dim,
                     threshold=0.5, fingerprint="sha256:" + "c" * 64, name="m")

    def unit(n):
        v = rng.normal(size=(n, dim)).astype(np.float32) + 3  # scores near 0.9, not 0
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    probes = unit(37)
    with Gallery.open(tmp_path / "g.sqlite", info) as gallery:
        for i in range(12):
            gallery.enroll(f"id{i}", unit(5))
        aggregation = aggregation_from_name(aggregate, 3)
        loose = Verifier(_FixedInfo(replace(info, threshold=-1.0)), gallery,
                         aggregation=aggregation)
        batch = loose.identify_embeddings(probes, k=1)
        for j, decision in enumerate(batch):
            alone = loose.identify_embeddings(probes[j:j + 1], k=1)[0]
            claimed = loose.verify_embeddings(probes[j:j + 1], decision.identity)[0]
            in_batch = loose.verify_embeddings(probes, decision.identity)[j]
            assert alone.score == decision.score == claimed.score == in_batch.score
            # at a threshold exactly at the score both modes accept; a hair above, both reject
            for threshold, accepted in ((decision.score, True),
                                        (np.nextafter(decision.score, 2.0), False)):
                strict = Verifier(_FixedInfo(info), gallery, threshold,
                                  aggregation=aggregation)
                assert strict.identify_embeddings(probes, k=1)[j].accepted is accepted
                assert strict.verify_embeddings(probes[j:j + 1], decision.identity)[0] \
                    .accepted is accepted


def test_a_gap_equal_to_the_margin_is_accepted(tmp_path, tiny_model):
    # --margin 0 with two identical templates: a gap of exactly 0 still passes (>=)
    with OnnxRuntimeEmbedder(tiny_model) as embedder, \
            Gallery.open(tmp_path / "g.sqlite", embedder.info) as gallery:
        template = embedder.embed(images(1)[:1])
        gallery.enroll("ann", template)
        gallery.enroll("twin", template)
        (decision,) = Verifier(embedder, gallery, threshold=0.5, margin=0.0).identify(
            images(1)[:1])
        assert decision.margin == 0.0 and decision.accepted
        (strict,) = Verifier(embedder, gallery, threshold=0.5, margin=1e-6).identify(
            images(1)[:1])
        assert not strict.accepted and strict.answer == "unknown"
