"""train → export → enroll → verify on real data, deciding on images never trained on."""

import json

import numpy as np
from click.testing import CliRunner

from siamese_edge.cli import cli
from siamese_edge.data.idx import load_idx_dataset
from siamese_edge.runtime.imageio import write_image

CLASSES = [0, 1, 5, 8, 9]  # the trained_run fixture's classes (trained on the test split)


def test_identify_and_verify_held_out_images(fashion_mnist_dir, exported_model, tmp_path):
    # Held-out images: Fashion-MNIST's *training* split, which the model never saw.
    data = load_idx_dataset(fashion_mnist_dir / "train-images-idx3-ubyte.gz",
                            fashion_mnist_dir / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    probes, truth = [], []
    for c in CLASSES:
        members = rng.permutation(np.nonzero(data.labels == c)[0])
        folder = tmp_path / "gallery" / f"class{c}"
        folder.mkdir(parents=True)
        for i in members[:3]:
            write_image(folder / f"{i}.png", data.images[i])
        for i in members[3:23]:
            path = tmp_path / "probes" / f"{c}-{i}.png"
            path.parent.mkdir(exist_ok=True)
            write_image(path, data.images[i])
            probes.append(str(path))
            truth.append(f"class{c}")
    runner = CliRunner()
    gallery = str(tmp_path / "g.sqlite")
    model = str(exported_model)
    result = runner.invoke(cli, ["enroll", "-m", model, "-g", gallery, "--from-dir",
                                 str(tmp_path / "gallery")])
    assert result.exit_code == 0, result.output

    result = runner.invoke(cli, ["verify", "-m", model, "-g", gallery, "--json", *probes])
    assert result.exit_code == 0, result.output
    best = [r["nearest"] for r in json.loads(result.output)["results"]]
    accuracy = np.mean([b == t for b, t in zip(best, truth)])
    assert accuracy >= 0.7, accuracy  # chance is 0.2

    result = runner.invoke(cli, ["verify", "-m", model, "-g", gallery, "--json",
                                 "--identity", "class1", *probes])
    accepted = np.array([r["accepted"] for r in json.loads(result.output)["results"]])
    genuine = np.array([t == "class1" for t in truth])
    true_accepts, false_accepts = accepted[genuine].mean(), accepted[~genuine].mean()
    print(f"1:1 at the model's threshold: TAR {true_accepts:.2f}, FAR {false_accepts:.2f}")
    assert true_accepts >= 0.7 and true_accepts - false_accepts >= 0.5
