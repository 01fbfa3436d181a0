"""siamese-edge compare, with the shipped model and its sample images."""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from siamese_edge.cli import cli

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "fashion-mnist.onnx"
SAMPLES = ROOT / "models" / "samples"
SNEAKER = SAMPLES / "probes" / "probe-03-sneaker.png"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_two_images_match_or_not_at_the_models_threshold():
    same = run("compare", "-m", MODEL, SNEAKER, SAMPLES / "gallery" / "sneaker" / "sneaker-0.png",
               "--json")
    assert same.exit_code == 0, same.output
    same = json.loads(same.output)
    other = json.loads(run("compare", "-m", MODEL, SNEAKER,
                           SAMPLES / "gallery" / "bag" / "bag-0.png", "--json").output)
    assert same["pairs"][0]["accepted"] and not other["pairs"][0]["accepted"]
    assert other["pairs"][0]["score"] < same["threshold"] <= same["pairs"][0]["score"]
    # an explicit threshold above the score turns the match down; the text says so
    strict = run("compare", "-m", MODEL, SNEAKER,
                 SAMPLES / "gallery" / "sneaker" / "sneaker-0.png",
                 "-t", same["pairs"][0]["score"] + 1e-6)
    assert strict.exit_code == 0 and strict.output.startswith("NO MATCH")


def test_pair_list_skips_unreadable_images_and_exits_3(tmp_path):
    shutil.copytree(SAMPLES, tmp_path / "samples")
    listing = tmp_path / "samples" / "pairs.tsv"
    listing.write_text("probes/probe-03-sneaker.png\tgallery/sneaker/sneaker-0.png\n"
                       "probes/probe-03-sneaker.png\tgallery/bag/bag-0.png\n"
                       "missing.png\tgallery/bag/bag-0.png\n")
    result = run("compare", "-m", MODEL, "--pairs", listing, "--json")
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert [p["accepted"] for p in doc["pairs"]] == [True, False]
    assert doc["pairs"][0]["first"] == str(tmp_path / "samples" / "probes" /
                                          "probe-03-sneaker.png")
    assert [f["file"] for f in doc["failures"]] == [str(tmp_path / "samples" / "missing.png")]
    result = run("compare", "-m", MODEL, "--pairs", listing)
    assert result.exit_code == 3 and "its pairs were skipped" in result.output
    assert result.output.count("MATCH") == 2


def test_bad_input_is_one_line(tmp_path):
    result = run("compare", "-m", MODEL, SNEAKER, tmp_path / "missing.png")
    assert result.exit_code == 1 and result.output.startswith("error: ")  # not a skip
    assert run("compare", "-m", MODEL, SNEAKER).exit_code == 2
    assert run("compare", "-m", MODEL, SNEAKER, SNEAKER, "--pairs", "x.tsv").exit_code == 2
    assert run("compare", "-m", MODEL, SNEAKER, SNEAKER, "-t", "nan").exit_code == 2
    (tmp_path / "bad.tsv").write_text("only-one.png\n")
    result = run("compare", "-m", MODEL, "--pairs", tmp_path / "bad.tsv")
    assert result.exit_code == 1 and "line 1: expected two image paths" in result.output
    assert "Traceback" not in result.output
