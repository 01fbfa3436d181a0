"""siamese_edge.data serves the runtime too: reading every format must not import torch."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from siamese_edge.data.loading import load_dataset
    import siamese_edge.data.folder, siamese_edge.data.idx, siamese_edge.data.pairs_csv
    from siamese_edge.runtime.imageio import write_image

    root = sys.argv[1]
    import os
    for name in ("ann", "ben"):
        os.makedirs(f"{root}/{name}")
        write_image(f"{root}/{name}/0.png", np.zeros((8, 8), np.uint8))
    data = load_dataset(root)
    print(json.dumps({"n": len(data), "loaded": sorted(m for m in sys.modules
                                                       if m.split(".")[0] == "torch")}))
""")


def test_data_modules_never_import_torch(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"n": 2, "loaded": []}
