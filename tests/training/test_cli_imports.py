"""``siamese-edge train --help`` must not load torch: the command imports it only when run."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    from click.testing import CliRunner
    from siamese_edge.cli.train import train
    result = CliRunner().invoke(train, ["--help"])
    print(json.dumps({"code": result.exit_code,
                      "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
                      "training": sorted(m for m in sys.modules
                                         if m.startswith("siamese_edge.training"))}))
""")


def test_train_help_loads_no_torch():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"code": 0, "torch": [],
                                                                   "training": []}
