"""enroll / verify / embed through the CLI on a generated model."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from siamese_edge.cli import COMMANDS, cli


@pytest.fixture()
def people(tmp_path):
    from model_factory import write_random_people

    return write_random_people(tmp_path / "people", ("ann", "ben", "cat"), 2, (24, 20, 3))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and command in result.output
    # --json's help speaks of --camera only where there is one
    text = " ".join(result.output.split())
    assert ("--camera" in text) == ("with --camera, one object per line" in text)


def test_enroll_verify_identify_embed(tmp_path, tiny_model, people):
    gallery = tmp_path / "g.sqlite"
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people)
    assert result.exit_code == 0, result.output
    assert "3 identities, 6 templates" in result.output
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--json", "dan",
                 people / "ann" / "0.png")
    assert json.loads(result.output)["identities"]["dan"] == 1

    result = run("verify", "-m", tiny_model, "-g", gallery, "--json", "-k", "2",
                 people / "ben" / "1.png", people / "cat" / "0.png")
    doc = json.loads(result.output)
    assert doc["mode"] == "identify"
    assert [r["answer"] for r in doc["results"]] == ["ben", "cat"]
    assert len(doc["results"][0]["candidates"]) == 2
    assert doc["threshold_source"].startswith("model")
    result = run("verify", "-m", tiny_model, "-g", gallery, "--json", "--threshold", "0.5",
                 people / "ben" / "1.png")
    assert json.loads(result.output)["threshold_source"] == "--threshold"
    pair = [people / "ann" / "0.png", people / "ann" / "1.png"]
    assert json.loads(run("compare", "-m", tiny_model, "--json", "-t", "0.5", *pair).output)[
        "threshold_source"] == "--threshold"
    assert json.loads(run("compare", "-m", tiny_model, "--json", *pair).output)[
        "threshold_source"].startswith("model")

    result = run("verify", "-m", tiny_model, "-g", gallery, "--identity", "ann",
                 "--threshold", "0.9999", people / "ann" / "1.png", people / "ben" / "0.png")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "MATCH" in lines[0] and "NO MATCH" in lines[1]
    result = run("verify", "-m", tiny_model, "-g", gallery, "--identity", " ann ",
                 people / "ann" / "1.png")
    assert "MATCH     ann  score" in result.output  # the name as stored, not " ann "

    result = run("verify", "-m", tiny_model, "-g", gallery, "--threshold", "1.5",
                 people / "ann" / "1.png")
    assert " unknown " in result.output

    out = tmp_path / "e.npz"
    result = run("embed", "-m", tiny_model, "--out", out, people)
    assert result.exit_code == 0, result.output
    data = np.load(out, allow_pickle=False)
    assert data["embeddings"].shape == (6, 8)
    assert sorted(set(data["labels"].tolist())) == ["ann", "ben", "cat"]


@pytest.mark.parametrize("case", ["missing-image", "unknown-identity", "other-model",
                                  "missing-model", "not-a-model", "not-a-gallery"])
def test_bad_input_is_one_line_and_nonzero(tmp_path, tiny_model, other_tiny_model, people, case):
    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people).exit_code == 0
    before = gallery.read_bytes()
    probe = people / "ann" / "0.png"
    args = {
        "missing-image": ("verify", "-m", tiny_model, "-g", gallery, tmp_path / "nope.png"),
        "unknown-identity": ("verify", "-m", tiny_model, "-g", gallery, "-i", "zed", probe),
        "other-model": ("verify", "-m", other_tiny_model, "-g", gallery, probe),
        "missing-model": ("verify", "-m", tmp_path / "none.onnx", "-g", gallery, probe),
        "not-a-model": ("verify", "-m", probe, "-g", gallery, probe),
        "not-a-gallery": ("enroll", "-m", tiny_model, "-g", probe, "x", probe),
    }[case]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert gallery.read_bytes() == before


def test_partial_directory_enrolment_keeps_good_files(tmp_path, tiny_model, people):
    (people / "ann" / "broken.png").write_bytes(b"\x89PNG garbage")
    gallery = tmp_path / "g.sqlite"
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["identities"] == {"ann": 2, "ben": 2, "cat": 2}
    assert doc["failures"][0]["file"].endswith("broken.png")


def test_unreadable_identity_folder_is_skipped_and_the_others_are_kept(tmp_path, tiny_model,
                                                                       people, monkeypatch):
    # chmod 000 does not stop root (the test may run as root), so the OS refusal is simulated
    from pathlib import Path

    listdir = Path.iterdir

    def iterdir(self):
        if self.name == "ben":
            raise PermissionError(13, "Permission denied", str(self))
        return listdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    gallery = tmp_path / "g.sqlite"
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people, "--json")
    assert result.exit_code == 3, result.output
    doc = json.loads(result.output)
    assert doc["identities"] == {"ann": 2, "cat": 2}
    assert doc["failures"] == [{"file": str(people / "ben"),
                                "error": "cannot list the folder (Permission denied)"}]
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people)
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert f"skipped {people / 'ben'}: cannot list the folder (Permission denied)" \
        in result.output


def test_unreadable_enrolment_folder_is_a_one_line_error(tmp_path, tiny_model, people,
                                                         monkeypatch):
    from pathlib import Path

    def iterdir(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", iterdir)
    result = run("enroll", "-m", tiny_model, "-g", tmp_path / "g.sqlite", "--from-dir", people)
    assert result.exit_code == 1
    assert result.output == f"error: {people}: cannot list the folder (Permission denied)\n"


def test_a_failed_first_enrolment_leaves_no_gallery_behind(tmp_path, tiny_model, people):
    # a new gallery file is bound to the model: an empty one left by a typo would refuse the
    # next model the user meant to enroll with
    gallery = tmp_path / "g.sqlite"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk" / "zed").mkdir(parents=True)
    (tmp_path / "junk" / "zed" / "0.png").write_bytes(b"\x89PNG garbage")
    for args, status in [(("ann", tmp_path / "bad.png"), 1), (("--from-dir", tmp_path / "empty"), 1),
                         (("--from-dir", tmp_path / "junk"), 3)]:
        result = run("enroll", "-m", tiny_model, "-g", gallery, *args)
        assert result.exit_code == status, result.output
        assert not gallery.exists() and not list(tmp_path.glob("g.sqlite*")), args
    assert "nothing enrolled; " in result.output  # not "0 identities" of a file not there
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", tmp_path / "junk",
                 "--json")
    assert json.loads(result.stdout)["gallery_exists"] is False and not gallery.exists()
    gallery.touch()  # an empty file is a gallery being created, as Gallery.open has it
    result = run("enroll", "-m", tiny_model, "-g", gallery, "ann", people / "ann" / "0.png")
    assert result.exit_code == 0, result.output


def test_enroll_checks_an_existing_gallery_before_reading_any_image(tmp_path, tiny_model,
                                                                    other_tiny_model, people):
    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people).exit_code == 0
    before = gallery.read_bytes()
    (tmp_path / "bad.png").write_bytes(b"not an image")
    result = run("enroll", "-m", other_tiny_model, "-g", gallery, "dan", tmp_path / "bad.png")
    assert result.exit_code == 1 and "bad.png" not in result.output  # the model, not the image
    result = run("enroll", "-m", tiny_model, "-g", gallery, "--on-duplicate", "refuse", "ann",
                 tmp_path / "bad.png")
    assert result.exit_code == 1 and "already enrolled" in result.output
    assert gallery.read_bytes() == before


def test_ctrl_c_exits_130_with_one_line(tmp_path, tiny_model, people, monkeypatch):
    from siamese_edge.runtime import workflows

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(workflows, "embed_inputs", interrupted)
    result = CliRunner().invoke(cli, ["embed", "-m", tiny_model, "--out",
                                      str(tmp_path / "e.npz"), str(people)])
    assert result.exit_code == 130 and result.output == "interrupted\n"  # was 1, "Aborted!"


def test_model_and_gallery_default_to_the_container_environment(tmp_path, tiny_model, people):
    env = {"SIAMESE_EDGE_MODEL": str(tiny_model), "SIAMESE_EDGE_GALLERY": str(tmp_path / "g.db")}
    result = CliRunner().invoke(cli, ["enroll", "--from-dir", str(people)], env=env)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["verify", "--json", str(people / "ben" / "1.png")],
                                env=env)
    assert json.loads(result.output)["results"][0]["answer"] == "ben"


@pytest.mark.parametrize("args,said", [
    (("verify", "--camera", "v.avi", "--vote", "7/5"), "7/5: need 1 <= k <= n"),
    (("verify", "--camera", "v.avi", "--roi", "banana"), "expected whole, face or x,y,w,h"),
    (("enroll", "--camera", "v.avi", "--name", "a", "--roi", "1,2,0,4"), "w,h > 0"),
    (("engine", "MODEL", "--batch", "8:1:2"), "1 <= min <= opt <= max"),
    (("engine", "MODEL", "--target", "nope"), "unknown target 'nope'"),
])
def test_a_bad_option_value_is_a_usage_error(tmp_path, tiny_model, args, said):
    # exit 2, as the README's table has it, before any model is loaded (they were 1)
    args = [str(tiny_model) if a == "MODEL" else a for a in args]
    if args[0] != "engine":
        args[1:1] = ["-m", str(tiny_model), "-g", str(tmp_path / "g.sqlite")]
    result = run(*args)
    assert result.exit_code == 2 and said in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "g.sqlite").exists()


def test_evaluate_names_its_backend_and_stores_the_classes_it_calibrated_on(tmp_path,
                                                                           tiny_model):
    import shutil

    from model_factory import write_random_people
    from siamese_edge.runtime.model_file import read_model_info

    names = tuple(f"p{i:02d}" for i in range(12))
    data = write_random_people(tmp_path / "data", names, 3, (24, 20, 3))
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    result = run("evaluate", "-m", model, data, "--classes", ",".join(names[:10]), "--far",
                 "0.05", "--write-threshold", "--bootstrap", "0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["backend"].startswith("onnxruntime")
    info = read_model_info(model)
    calibration = info.calibration
    assert calibration["classes"] == list(names[:10])  # not all twelve: say which
    # the threshold at the target FAR, and the rates it was calibrated with, not the EER's
    assert info.threshold == doc["threshold_written"] == doc["threshold_at_target"]
    assert doc["threshold_at_target"] != doc["eer_threshold"]
    assert (calibration["far"], calibration["tar"], calibration["impostor_pairs"]) == \
        (0.05, doc["tar_at_target"], doc["impostor_pairs"])
    assert "classes p00," in read_model_info(model).threshold_source
    text = run("evaluate", "-m", model, data, "--bootstrap", "0").stdout
    assert ", backend onnxruntime" in text.splitlines()[0]


def test_an_unexpected_file_error_is_one_line_not_a_traceback(tmp_path, tiny_model, people,
                                                             monkeypatch):
    from siamese_edge.runtime import workflows

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/photos/a.png")

    monkeypatch.setattr(workflows, "embed_inputs", denied)
    result = run("embed", "-m", tiny_model, "--out", tmp_path / "e.npz", people)
    assert result.exit_code == 1
    assert result.output == "error: /srv/photos/a.png: Permission denied\n"


def test_engine_out_in_a_folder_that_cannot_exist_is_one_line(tmp_path, tiny_model):
    (tmp_path / "afile").touch()
    result = run("engine", tiny_model, "--out", tmp_path / "afile" / "x.engine")
    assert result.exit_code == 1, result.output  # was a FileExistsError traceback
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "cannot create its folder" in result.output  # checked before TensorRT loads


def test_enroll_usage_errors(tmp_path, tiny_model, people):
    assert run("enroll", "-m", tiny_model, "-g", tmp_path / "g.sqlite").exit_code == 2
    assert run("enroll", "-m", tiny_model, "-g", tmp_path / "g.sqlite", "ann").exit_code == 2


def test_evaluate_prints_the_numbers_and_where_the_errors_fall(tiny_model, people):
    result = run("evaluate", "-m", tiny_model, people, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["num_identities"] == 3 and doc["genuine_pairs"] == 3
    assert doc["impostor_pairs"] == 12 and 0.0 <= doc["auc"] <= 1.0
    errors = doc["errors"]
    assert errors["basis"] == "EER" and errors["threshold"] == doc["eer_threshold"]
    named = {e["identity"] for e in errors["false_rejects"]}
    named |= {p["first"] for p in errors["false_accepts"]}
    assert named <= {"ann", "ben", "cat"}
    text = run("evaluate", "-m", tiny_model, people)
    assert text.exit_code == 0, text.output
    assert "ROC AUC" in text.output and "EER" in text.output
    assert errors["false_rejects"] or errors["false_accepts"]  # a random model errs
    assert f"errors at threshold {errors['threshold']:.4f} (EER)" in text.output


def test_evaluate_brackets_intervals_from_resampled_identities(tiny_model, people):
    doc = json.loads(run("evaluate", "-m", tiny_model, people, "--json").output)
    ci = doc["confidence"]
    assert ci["unit"] == "identity" and ci["level"] == 0.95 and ci["replicates"] > 100
    assert ci["eer"][0] <= ci["eer"][1] and ci["threshold"] == doc["eer_threshold"]
    assert any("only 3 identities" in note for note in ci["notes"])
    text = run("evaluate", "-m", tiny_model, people).output
    assert f"EER       {doc['eer']:.4f}  [{ci['eer'][0]:.3f}, {ci['eer'][1]:.3f}]" in text
    assert "95% intervals in brackets" in text
    off = run("evaluate", "-m", tiny_model, people, "--bootstrap", "0", "--json")
    assert off.exit_code == 0 and json.loads(off.output)["confidence"] is None
    bad = run("evaluate", "-m", tiny_model, people, "--bootstrap", "1")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    empty = run("evaluate", "-m", tiny_model, people, "--classes", ",")
    assert empty.exit_code == 2 and "names no class" in empty.output


def test_evaluate_says_which_files_it_left_out_and_exits_3(tiny_model, people):
    (people / "ann" / "broken.png").write_bytes(b"\x89PNG garbage")
    result = run("evaluate", "-m", tiny_model, people, "--json", "--bootstrap", "0")
    assert result.exit_code == 3, result.output  # it used to measure quietly, exit 0
    doc = json.loads(result.stdout)
    assert doc["num_images"] == 6 and doc["extras"]["skipped_count"] == 1
    assert doc["extras"]["skipped"][0].startswith(str(people / "ann" / "broken.png"))
    text = run("evaluate", "-m", tiny_model, people, "--bootstrap", "0")
    assert text.exit_code == 3 and "ROC AUC" in text.output
    assert "1 unreadable file(s) left out of every number" in text.output
    (people / "ann" / "broken.png").unlink()
    assert run("evaluate", "-m", tiny_model, people, "--bootstrap", "0").exit_code == 0
    # when what could be read is not enough, the refusal still says what was left out
    (people / "ann" / "1.png").write_bytes(b"\x89PNG garbage")
    protocol = people / "protocol.csv"
    protocol.write_text("ann/0.png,ann/1.png,1\nann/0.png,ben/0.png,0\n")
    result = run("evaluate", "-m", tiny_model, protocol)
    assert result.exit_code == 1 and "0 genuine" in result.output
    assert "1 unreadable file(s) left out, first " in result.output
    assert "ann/1.png" in result.output


def test_evaluate_on_a_pairs_csv_scores_the_listed_pairs(tmp_path, tiny_model, people):
    protocol = people / "protocol.csv"
    protocol.write_text("img1,img2,label\n"
                        "ann/0.png,ann/1.png,1\n"
                        "ben/0.png,ben/1.png,1\n"
                        "cat/0.png,cat/1.png,1\n"
                        "ann/0.png,ben/0.png,0\n"
                        "cat/0.png,ann/1.png,0\n")
    result = run("evaluate", "-m", tiny_model, protocol, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    # the list's 3 + 2 pairs, not the 3 + 12 of every pair among its six images
    assert (doc["genuine_pairs"], doc["impostor_pairs"]) == (3, 2)
    assert doc["extras"]["protocol"] == "listed pairs"
    assert doc["rank1"] is None and doc["errors"] is None
    # intervals resample the three identities the genuine pairs imply
    assert doc["confidence"]["replicates"] > 0 and doc["confidence"]["eer"] is not None
    assert "genuine pairs" in doc["confidence"]["notes"][0]
    flipped = json.loads(run("evaluate", "-m", tiny_model, protocol, "--json",
                             "--pairs-label-means", "dissimilar").output)
    assert (flipped["genuine_pairs"], flipped["impostor_pairs"]) == (2, 3)
    assert flipped["auc"] == pytest.approx(1 - doc["auc"])
    text = run("evaluate", "-m", tiny_model, protocol)
    assert text.exit_code == 0, text.output
    assert "3 genuine / 2 impostor pairs (as listed)" in text.output
    assert "not measured: rank-1" in text.output and "rank-1    " not in text.output
    assert "resamples of the identities (identities as the list implies them" in text.output
    # two impostor pairs cannot calibrate FAR 1e-3: a one-line refusal, the model untouched
    before = Path(tiny_model).read_bytes()
    refused = run("evaluate", "-m", tiny_model, protocol, "--write-threshold")
    assert refused.exit_code == 1 and "too few impostor pairs" in refused.output
    assert Path(tiny_model).read_bytes() == before


@pytest.mark.parametrize("option", ["--threshold", "--margin"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_verify_refuses_a_threshold_or_margin_that_is_not_a_number(tmp_path, tiny_model, people,
                                                                    option, value):
    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people).exit_code == 0
    result = run("verify", "-m", tiny_model, "-g", gallery, "--json", f"{option}={value}",
                 people / "ann" / "0.png")
    assert result.exit_code == 2, result.output
    assert "finite" in result.output and "Traceback" not in result.output


def test_json_output_is_strict_json_with_null_for_non_finite_numbers(capsys):
    from siamese_edge.cli.options import print_json, print_json_line

    document = {"a": float("nan"), "b": [float("inf"), 1.5, (float("-inf"),)],
                "c": np.float64("nan"), "d": "nan"}
    expected = {"a": None, "b": [None, 1.5, [None]], "c": None, "d": "nan"}
    print_json(document)
    print_json_line(document)
    pretty, line = capsys.readouterr().out.split("\n}\n")

    def strict(constant):
        raise ValueError(f"not JSON: {constant}")

    assert json.loads(pretty + "}", parse_constant=strict) == expected
    assert json.loads(line, parse_constant=strict) == expected


def test_template_sources_are_stored_absolute_so_reembed_works_from_elsewhere(
        tmp_path, tiny_model, other_tiny_model, people, monkeypatch):
    monkeypatch.chdir(people.parent)
    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people.name).exit_code == 0
    assert run("enroll", "-m", tiny_model, "-g", gallery, "dan",
               f"{people.name}/ann/0.png").exit_code == 0
    shown = json.loads(run("gallery", "show", "-g", gallery, "--json", "ben").output)
    assert [t["source"] for t in shown["templates"]] == \
        [str((people / "ben" / f).resolve()) for f in ("0.png", "1.png")]
    shown = json.loads(run("gallery", "show", "-g", gallery, "--json", "dan").output)
    assert shown["templates"][0]["source"] == str((people / "ann" / "0.png").resolve())

    monkeypatch.chdir(tmp_path.parent)
    result = run("gallery", "reembed", "-g", gallery, "-m", other_tiny_model, "--from-images",
                 "--out", tmp_path / "new.sqlite", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reembedded"] == {"ann": 2, "ben": 2, "cat": 2, "dan": 1}


def test_embed_writes_exactly_out_and_refuses_bad_out_in_one_line(tmp_path, tiny_model, people):
    out = tmp_path / "vectors"  # no .npz: np.savez alone would write vectors.npz
    result = run("embed", "-m", tiny_model, "--out", out, "--json", people)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["out"] == str(out)
    assert np.load(out, allow_pickle=False)["embeddings"].shape == (6, 8)
    assert not (tmp_path / "vectors.npz").exists()

    result = run("embed", "-m", tiny_model, "--out", tmp_path / "missing" / "e.npz", people)
    assert result.exit_code != 0 and "does not exist" in result.output
    assert not isinstance(result.exception, OSError)

    result = run("embed", "-m", tiny_model, "--out", out, people)
    assert result.exit_code == 1 and "--overwrite replaces it" in result.output
    assert run("embed", "-m", tiny_model, "--out", out, people, "--overwrite").exit_code == 0

    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people).exit_code == 0
    # none of these is an .npz: the model, a gallery, an image (it used to replace them all)
    for target in (Path(tiny_model), gallery, people / "ann" / "0.png"):
        before = target.read_bytes()
        result = run("embed", "-m", tiny_model, "--out", target, people / "ann" / "0.png")
        assert result.exit_code == 1 and "not an .npz archive" in result.output, target
        assert target.read_bytes() == before
    empty = people / "ann" / "empty.png"  # an empty file is no archive, but is an input
    empty.touch()
    result = run("embed", "-m", tiny_model, "--out", empty, empty, people / "ann" / "0.png",
                 "--overwrite")
    assert result.exit_code == 1 and "input images" in result.output


def test_embed_skips_unreadable_images_writes_the_rest_and_exits_3(tmp_path, tiny_model,
                                                                   people):
    (people / "ann" / "broken.png").write_bytes(b"\x89PNG garbage")
    out = tmp_path / "e.npz"
    result = run("embed", "-m", tiny_model, "--out", out, "--json", people)
    assert result.exit_code == 3, result.output  # as enroll --from-dir; it used to be 0
    doc = json.loads(result.stdout)
    assert doc["count"] == 6 and [f["file"] for f in doc["failures"]] == [
        str(people / "ann" / "broken.png")]
    assert len(np.load(out, allow_pickle=False)["paths"]) == 6
    result = run("embed", "-m", tiny_model, "--out", out, people, "--overwrite")
    assert result.exit_code == 3 and "skipped" in result.output
    assert "Traceback" not in result.output


def test_evaluate_plot_and_calibration_failures_are_one_line_after_the_numbers(tmp_path,
                                                                                tiny_model,
                                                                                people):
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    a_file = tmp_path / "plots.txt"
    a_file.write_text("not a folder")
    result = run("evaluate", "-m", tiny_model, people, "--plots", a_file)
    assert result.exit_code == 2 and "is a file" in result.output  # before any work
    plots = tmp_path / "plots"
    (plots / "roc.png").mkdir(parents=True)  # a folder where the plot goes
    result = run("evaluate", "-m", tiny_model, people, "--plots", plots, "--json",
                 "--bootstrap", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    doc = json.loads(result.stdout)
    assert doc["auc"] >= 0  # the numbers came first, not lost
    assert "cannot write the plots" in result.output
    assert "cannot write the plots" in doc["error"]  # the document says why it exits 1
    before = Path(tiny_model).read_bytes()
    result = run("evaluate", "-m", tiny_model, people, "--far", "1e-9", "--write-threshold",
                 "--bootstrap", "0")
    assert result.exit_code == 1
    assert "at FAR 1e-09: needs >= " in result.output
    assert "ROC AUC" in result.stdout  # the numbers it computed are printed first
    assert result.stderr.strip().splitlines()[-1].startswith("error: too few impostor")
    assert Path(tiny_model).read_bytes() == before
    result = run("evaluate", "-m", tiny_model, people, "--far", "1e-9", "--write-threshold",
                 "--bootstrap", "0", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["threshold_written"] is None
    assert doc["error"].startswith("too few impostor pairs to calibrate")


def test_evaluate_json_says_why_a_threshold_could_not_be_written(tmp_path, tiny_model, people,
                                                                  monkeypatch):
    # a read-only model printed no document at all: the write came before the printing
    from siamese_edge.runtime import workflows

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tiny_model))

    from model_factory import write_random_people

    data = write_random_people(tmp_path / "data", tuple(f"p{i}" for i in range(12)), 3,
                               (24, 20, 3))  # 594 impostor pairs: FAR 0.1 is measurable
    monkeypatch.setattr(workflows, "write_threshold", read_only)
    result = run("evaluate", "-m", tiny_model, data, "--far", "0.1", "--write-threshold",
                 "--bootstrap", "0", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["threshold_written"] is None and doc["auc"] >= 0
    assert doc["error"] == f"{tiny_model}: cannot write the threshold (Permission denied)"
    assert result.stderr.strip().endswith("cannot write the threshold (Permission denied)")


def test_a_reader_that_stops_early_is_no_error(tmp_path, tiny_model, people):
    # `siamese-edge gallery show ... | head -1` printed "error: Broken pipe"
    import subprocess
    import sys

    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people).exit_code == 0
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(1); "
         "from siamese_edge.cli import main; main()", "gallery", "show", "-g", str(gallery),
         "ann", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # the reader is gone before anything is written
    error = child.stderr.read().decode()
    child.wait(timeout=60)
    assert "error" not in error and "Traceback" not in error, error


def test_identify_text_says_why_a_probe_is_unknown(tmp_path):
    # an unknown answer dropped the best candidate's name ("next:" listed only the others)
    # and a margin rejection showed only in --json
    root = Path(__file__).resolve().parents[2] / "models"
    model, probes = root / "fashion-mnist.onnx", root / "samples" / "probes"
    gallery = tmp_path / "twins.sqlite"
    for name in ("alice", "bob"):  # one image each: no margin between them
        assert run("enroll", "-m", model, "-g", gallery, name,
                   probes / "probe-05-bag.png").exit_code == 0
    result = run("verify", "-m", model, "-g", gallery, "--margin", "0.05",
                 probes / "probe-05-bag.png")
    assert result.exit_code == 0, result.output
    line = result.output.splitlines()[0]
    assert " unknown " in line and "nearest: " in line and "margin 0.000 < 0.05" in line
    assert "alice 1.000" in line and "bob 1.000" in line  # the best one included
    result = run("verify", "-m", model, "-g", gallery, "--threshold", "1.5",
                 probes / "probe-05-bag.png", probes / "probe-11-shirt.png")
    for line in result.output.splitlines()[:2]:  # below the threshold, no margin asked
        assert " unknown " in line and "(nearest: alice " in line and "margin" not in line
    result = run("verify", "-m", model, "-g", gallery, probes / "probe-05-bag.png")
    line = result.output.splitlines()[0]  # an accepted answer keeps its format
    assert line.split()[1] in ("alice", "bob") and "  (next: " in line and "nearest" not in line


def test_enroll_names_its_backend(tmp_path, tiny_model, people):
    # "Each result says which backend ran": enroll's text output did not
    gallery = tmp_path / "g.sqlite"
    for args in (["--from-dir", people], ["dan", people / "ann" / "0.png"]):
        result = run("enroll", "-m", tiny_model, "-g", gallery, *args)
        assert result.exit_code == 0, result.output
        assert "templates, backend onnxruntime" in result.output.splitlines()[-1]


def test_enrolling_a_folder_again_adds_only_new_images(tmp_path, tiny_model, people):
    # a second run used to add a second copy of every template (skewing mean-of-top-k)
    import shutil

    gallery = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people).exit_code == 0
    again = run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people, "--json")
    assert again.exit_code == 0, again.output
    doc = json.loads(again.output)
    assert doc["enrolled"] == {} and doc["already_enrolled"] == {"ann": 2, "ben": 2, "cat": 2}
    assert doc["identities"] == {"ann": 2, "ben": 2, "cat": 2}
    shutil.copy(people / "ben" / "0.png", people / "ann" / "2.png")  # a new photo of ann
    shutil.copy(people / "cat" / "1.png", people / "ann" / "0.png")  # and one replaced
    doc = json.loads(run("enroll", "-m", tiny_model, "-g", gallery, "--from-dir", people,
                         "--json").output)
    assert doc["enrolled"] == {"ann": 2} and doc["already_enrolled"]["ann"] == 1
    assert doc["identities"]["ann"] == 4


def test_a_gallery_that_cannot_be_created_is_refused_before_any_image_is_read(tmp_path,
                                                                              tiny_model):
    # a camera enrolment made the person pose first, then failed to create the file
    (tmp_path / "bad.png").write_bytes(b"not an image")
    result = run("enroll", "-m", tiny_model, "-g", tmp_path / "no-such-dir" / "g.sqlite",
                 "ann", tmp_path / "bad.png")
    assert result.exit_code == 1 and "cannot create it" in result.output
    assert "bad.png" not in result.output  # the gallery, not the image, was checked first


def test_hostile_metadata_and_models_are_one_line(tmp_path, tiny_model, people, monkeypatch):
    deep = "[" * 50000  # was a 37-line RecursionError traceback
    result = run("enroll", "-m", tiny_model, "-g", tmp_path / "g.sqlite", "--metadata", deep,
                 "ann", people / "ann" / "0.png")
    assert result.exit_code == 2 and "nested too deeply" in result.output
    from siamese_edge.model_info import ModelInfo, Preprocessing
    from siamese_edge.errors import ModelError

    with pytest.raises(ModelError, match="nested too deeply"):
        ModelInfo.from_json(deep)
    with pytest.raises(ModelError, match="1 to 4096 pixels a side"):
        Preprocessing(50000, 50000, 1, (0.5,), (0.5,))  # every call allocated gigabytes
    from siamese_edge.runtime import workflows

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 18.6 GiB")

    monkeypatch.setattr(workflows, "embed_inputs", too_big)
    result = run("embed", "-m", tiny_model, "--out", tmp_path / "e.npz", people)
    assert result.exit_code == 1 and result.output.startswith("error: out of memory")


def test_enroll_and_embed_leave_hidden_entries_out_and_name_dead_links(tmp_path, tiny_model,
                                                                      people):
    (people / ".hidden_id").mkdir()
    (people / ".hidden_id" / "0.png").write_bytes((people / "ann" / "0.png").read_bytes())
    (people / "ann" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (people / "ben" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    result = run("enroll", "-m", tiny_model, "-g", tmp_path / "g.sqlite", "--from-dir", people,
                 "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 3 and sorted(doc["identities"]) == ["ann", "ben", "cat"]
    assert [f["file"].rsplit("/", 1)[-1] for f in doc["failures"]] == ["gone.png"]
    result = run("embed", "-m", tiny_model, "--out", tmp_path / "e.npz", people, "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 3 and doc["count"] == 6
    assert [f["file"].rsplit("/", 1)[-1] for f in doc["failures"]] == ["gone.png"]
