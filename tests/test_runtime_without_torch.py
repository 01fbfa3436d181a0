"""The runtime must import and run where torch (and the onnx package) are not installed.

A subprocess hides the training-only packages behind an import hook that raises
ModuleNotFoundError, as on a Jetson with only the runtime installed, then runs the runtime's
commands for real and records every module that got loaded.
"""

import json
import subprocess
import sys
import textwrap



FORBIDDEN = ("torch", "onnx", "onnxscript", "matplotlib", "siamese_edge.training",
             "siamese_edge.exporting")

SCRIPT = textwrap.dedent("""
    import importlib.abc, json, sys
    FORBIDDEN = {forbidden!r}
    HIDDEN = set(FORBIDDEN)

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == f or name.startswith(f + ".") for f in HIDDEN):
                raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by test)",
                                          name=name)
            return None

    sys.meta_path.insert(0, Block())
    from click.testing import CliRunner
    import siamese_edge.runtime.backends, siamese_edge.runtime.workflows
    from siamese_edge.cli import cli
    runner = CliRunner()
    codes = {{}}
    for command in ("enroll", "verify", "compare", "embed"):
        codes[command + " --help"] = runner.invoke(cli, [command, "--help"]).exit_code
    codes["--help"] = runner.invoke(cli, ["--help"]).exit_code
    model, gallery, image_dir, out = sys.argv[1:5]
    base = ["--model", model, "--gallery", gallery]
    r = runner.invoke(cli, ["enroll", *base, "--from-dir", image_dir])
    codes["enroll"] = r.exit_code
    r = runner.invoke(cli, ["verify", *base, "--json", image_dir + "/ann/0.png"])
    codes["verify"] = r.exit_code
    answer = json.loads(r.output)["results"][0]["identity"] if r.exit_code == 0 else r.output
    r = runner.invoke(cli, ["embed", "--model", model, "--out", out, image_dir])
    codes["embed"] = r.exit_code
    r = runner.invoke(cli, ["compare", "--model", model, image_dir + "/ann/0.png",
                            image_dir + "/ann/1.png"])
    codes["compare"] = r.exit_code
    loaded = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".")
                                                  for f in FORBIDDEN))
    HIDDEN -= {{"siamese_edge.training", "siamese_edge.exporting"}}
    # only torch & co. missing now (the package's own training modules are installed):
    # training and export say what is missing, in one line
    for command in (["train", image_dir, "--out", out + ".run"],
                    ["export", image_dir, "--out", out + ".onnx"]):
        r = runner.invoke(cli, command)
        last = r.output.strip().splitlines()[-1] if r.output.strip() else ""
        codes[command[0] + " without torch"] = (0 if r.exit_code == 1 and last.startswith(
            "error: ") and "train extra" in last else r.output)
    print(json.dumps({{"codes": codes, "answer": answer, "loaded": loaded}}))
""")


def test_runtime_commands_run_with_training_packages_hidden(tmp_path, tiny_model):
    from model_factory import write_random_people

    write_random_people(tmp_path / "people", ("ann", "ben"), 2, (20, 20))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(forbidden=FORBIDDEN), str(tiny_model),
         str(tmp_path / "g.sqlite"), str(tmp_path / "people"), str(tmp_path / "e.npz")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert all(code == 0 for code in report["codes"].values()), report["codes"]
    assert report["answer"] == "ann"
