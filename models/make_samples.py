"""Write the quickstart's sample images from Fashion-MNIST's test split (never trained on).

    python models/make_samples.py [--root /usr/share/datasets/fashion-mnist]

Gallery: 3 images each of four classes. Probes: 2 other images of each enrolled class and
2 of two classes that are not enrolled (the right answer for those is "unknown").
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from siamese_edge.data.idx import read_idx
from siamese_edge.runtime.imageio import write_image

# benchmarks/_script.py: a missing data set is one line, not a traceback
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _script import run_main  # noqa: E402

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle-boot"]
ENROLLED = ["trouser", "sneaker", "bag", "ankle-boot"]
NOT_ENROLLED = ["dress", "shirt"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default=str(Path(__file__).parent / "samples"))
    args = parser.parse_args()
    images = read_idx(Path(args.root) / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(Path(args.root) / "t10k-labels-idx1-ubyte.gz")
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(2024)
    probe = 0
    for name in ENROLLED + NOT_ENROLLED:
        members = rng.permutation(np.nonzero(labels == CLASSES.index(name))[0])
        if name in ENROLLED:
            (out / "gallery" / name).mkdir(parents=True)
            for i, index in enumerate(members[:3]):
                write_image(out / "gallery" / name / f"{name}-{i}.png", images[index])
        (out / "probes").mkdir(parents=True, exist_ok=True)
        for index in members[3:5]:
            probe += 1
            write_image(out / "probes" / f"probe-{probe:02d}-{name}.png", images[index])


if __name__ == "__main__":
    run_main(main, __file__)
