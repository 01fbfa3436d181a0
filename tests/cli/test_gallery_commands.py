"""siamese-edge gallery ... through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from siamese_edge.cli import cli
from unprivileged import unprivileged_python


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture()
def gallery(tmp_path, tiny_model):
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("ann", "ben"), 2, (24, 20, 3))
    path = tmp_path / "g.sqlite"
    assert run("enroll", "-m", tiny_model, "-g", path, "--from-dir", people).exit_code == 0
    return path


@pytest.mark.parametrize("command", ["list", "show", "rename", "remove", "export", "import",
                                     "stats", "reembed", "set-metadata"])
def test_every_subcommand_has_help(command):
    result = run("gallery", command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_list_show_rename_remove_stats(gallery):
    assert json.loads(run("gallery", "list", "-g", gallery, "--json").output)["identities"] \
        == {"ann": 2, "ben": 2}
    shown = json.loads(run("gallery", "show", "-g", gallery, "--json", "ann").output)
    assert len(shown["templates"]) == 2 and shown["templates"][0]["source"].endswith(".png")
    assert run("gallery", "rename", "-g", gallery, "ann", "anna").exit_code == 0
    template = shown["templates"][0]["id"]
    result = run("gallery", "remove", "-g", gallery, "anna", "--template", template)
    assert result.exit_code == 0, result.output
    for bad in ("99999999999999999999", "0"):  # past SQLite's integers: was a traceback
        result = run("gallery", "remove", "-g", gallery, "anna", "--template", bad)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert run("gallery", "remove", "-g", gallery, "ben").exit_code == 0
    stats = json.loads(run("gallery", "stats", "-g", gallery, "--json").output)
    assert stats["identities"] == 1 and stats["templates"] == 1 and stats["schema_version"] == 2
    assert "1 identities, 1 templates" in run("gallery", "list", "-g", gallery).output


def test_rename_reports_the_name_as_stored(gallery):
    result = run("gallery", "rename", "-g", gallery, "ann", " anna ", "--json")
    assert json.loads(result.output) == {"renamed": {"from": "ann", "to": "anna"}}
    assert run("gallery", "rename", "-g", gallery, "anna", "cafe\u0301").output \
        == "renamed anna -> caf\u00e9\n"
    assert json.loads(run("gallery", "list", "-g", gallery, "--json").output)["identities"] \
        == {"ben": 2, "caf\u00e9": 2}
    # every command echoes the identity as stored, whatever spelling found it
    result = run("gallery", "rename", "-g", gallery, " cafe\u0301", "cafe", "--json")
    assert json.loads(result.output) == {"renamed": {"from": "caf\u00e9", "to": "cafe"}}
    result = run("gallery", "set-metadata", "-g", gallery, " cafe ", '{"a": 1}', "--json")
    assert json.loads(result.output) == {"identity": "cafe", "metadata": {"a": 1}}
    assert run("gallery", "set-metadata", "-g", gallery, " ben", "{}").output \
        == "ben: metadata set\n"
    result = run("gallery", "remove", "-g", gallery, " cafe", "--json")
    assert json.loads(result.output)["identity"] == "cafe"
    assert run("gallery", "remove", "-g", gallery, "ben ").output \
        == "removed ben: 2 template(s)\n"


def test_export_import_reembed_and_duplicates(tmp_path, gallery, tiny_model, other_tiny_model):
    out = tmp_path / "e.npz"
    assert run("gallery", "export", "-g", gallery, out).exit_code == 0
    result = run("gallery", "import", "-g", tmp_path / "copy.sqlite", "--json", out)
    assert json.loads(result.output)["imported"] == {"ann": 2, "ben": 2}
    assert run("gallery", "import", "-g", tmp_path / "copy.sqlite", out).exit_code == 3
    people = tmp_path / "people"
    assert run("enroll", "-m", tiny_model, "-g", gallery, "--on-duplicate", "refuse", "ann",
               people / "ann" / "0.png").exit_code == 1
    (people / "ben" / "1.png").unlink()
    result = run("gallery", "reembed", "-g", gallery, "-m", other_tiny_model, "--from-images",
                 "--out", tmp_path / "new.sqlite", "--json")
    assert result.exit_code == 3
    doc = json.loads(result.output)
    assert doc["reembedded"] == {"ann": 2, "ben": 1} and len(doc["missing"]) == 1
    assert doc["source"] == str(gallery) and doc["backend"].startswith("onnxruntime")
    result = run("verify", "-m", other_tiny_model, "-g", tmp_path / "new.sqlite", "--json",
                 "--aggregate", "mean-top-k", "--aggregate-k", "1", "--margin", "0", people / "ann" / "0.png")
    assert json.loads(result.output)["results"][0]["answer"] == "ann"


def test_reembed_refuses_an_existing_out_gallery_untouched(tmp_path, gallery, other_tiny_model):
    out = tmp_path / "existing.sqlite"
    out.write_bytes(gallery.read_bytes())
    result = run("gallery", "reembed", "-g", gallery, "-m", other_tiny_model, "--from-images",
                 "--out", out)
    assert result.exit_code == 1
    assert result.output == f"error: {out}: already exists; reembed writes a new gallery, " \
                            f"give an --out path that does not exist\n"
    assert out.read_bytes() == gallery.read_bytes()


@pytest.mark.parametrize("case", ["truncated", "garbage", "plain-sqlite", "newer",
                                  "damaged-page"])
def test_broken_gallery_files_are_one_line_errors_and_untouched(tmp_path, gallery, case):
    import sqlite3

    path = tmp_path / "broken.sqlite"
    if case == "truncated":
        path.write_bytes(gallery.read_bytes()[:1500])
    elif case == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    elif case == "plain-sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.commit()
    elif case == "newer":
        path.write_bytes(gallery.read_bytes())
        db = sqlite3.connect(path)
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        db.commit()
        db.close()
    elif case == "damaged-page":  # the identities table: opening still works, reading not
        data = bytearray(gallery.read_bytes())
        data[4096 * 3:4096 * 3 + 64] = b"\x07" * 64
        path.write_bytes(bytes(data))
    else:
        path.mkdir()
    before = None if path.is_dir() else path.read_bytes()
    for command in (("list",), ("stats",), ("remove", "ann"), ("rename", "ann", "x")):
        result = run("gallery", command[0], "-g", path, *command[1:])
        assert result.exit_code == 1, result.output
        assert len(result.output.strip().splitlines()) == 1 and "error:" in result.output
    if before is not None:
        assert path.read_bytes() == before


def test_enroll_metadata_float16_and_set_metadata(tmp_path, tiny_model):
    from model_factory import write_random_people

    people = write_random_people(tmp_path / "people", ("ann",), 2, (24, 20, 3))
    path = tmp_path / "half.sqlite"
    images = sorted((people / "ann").iterdir())
    result = run("enroll", "-m", tiny_model, "-g", path, "--template-dtype", "float16",
                 "--metadata", '{"badge": 7}', "ann", *images)
    assert result.exit_code == 0, result.output
    stats = json.loads(run("gallery", "stats", "-g", path, "--json").output)
    assert stats["template_dtype"] == "float16"
    shown = json.loads(run("gallery", "show", "-g", path, "--json", "ann").output)
    assert shown["metadata"] == {"badge": 7}
    assert run("gallery", "set-metadata", "-g", path, "ann", '{"badge": 8}').exit_code == 0
    shown = json.loads(run("gallery", "show", "-g", path, "--json", "ann").output)
    assert shown["metadata"] == {"badge": 8}
    before = path.read_bytes()
    for bad in ("[1, 2]", "{not json"):
        result = run("gallery", "set-metadata", "-g", path, "ann", bad)
        assert result.exit_code == 2 and "metadata" in result.output
    assert run("gallery", "set-metadata", "-g", path, "nobody", "{}").exit_code == 1
    assert path.read_bytes() == before


def test_an_sqlite_error_that_escapes_the_gallery_is_still_one_line(gallery, monkeypatch):
    import sqlite3

    from siamese_edge.runtime.gallery import Gallery

    def counts(self):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Gallery, "counts", counts)
    result = run("gallery", "list", "-g", gallery)
    assert result.exit_code == 1
    assert result.output == "error: gallery database: disk I/O error\n"


@pytest.mark.skipif(os.name != "posix", reason="file permissions as POSIX has them")
def test_list_and_verify_a_gallery_on_read_only_storage(gallery, tiny_model, tmp_path):
    # e.g. a read-only root filesystem; as an unprivileged user, since root ignores the modes
    python, env = unprivileged_python()
    media = Path(tempfile.mkdtemp(prefix="gallery-test-"))
    try:
        for source in (gallery, tiny_model, tmp_path / "people" / "ann" / "0.png"):
            shutil.copy(source, media)
            (media / source.name).chmod(0o444)
        media.chmod(0o555)
        cli_main = "from siamese_edge.cli import main; main()"
        for args in (("gallery", "list", "-g", "g.sqlite", "--json"),
                     ("verify", "-m", "tiny.onnx", "-g", "g.sqlite", "--json", "0.png")):
            result = subprocess.run([*python, "-c", cli_main, *args],
                                    capture_output=True, text=True, cwd=media, env=env)
            assert result.returncode == 0, result.stderr
            json.loads(result.stdout)
        assert sorted(p.name for p in media.iterdir()) == ["0.png", "g.sqlite", "tiny.onnx"]
    finally:
        media.chmod(0o755)
        shutil.rmtree(media)


@pytest.mark.skipif(os.name != "posix", reason="file permissions as POSIX has them")
def test_enroll_refuses_a_read_only_gallery_before_reading_any_image(gallery, tiny_model,
                                                                     tmp_path):
    # a camera enrolment would otherwise make someone pose, then fail to store
    python, env = unprivileged_python()
    media = Path(tempfile.mkdtemp(prefix="gallery-test-"))
    try:
        for source in (gallery, tiny_model):
            shutil.copy(source, media)
            (media / source.name).chmod(0o444)
        (media / "bad.png").write_bytes(b"not an image")
        media.chmod(0o555)
        result = subprocess.run(
            [*python, "-c", "from siamese_edge.cli import main; main()", "enroll", "-m",
             "tiny.onnx", "-g", "g.sqlite", "zed", "bad.png"],
            capture_output=True, text=True, cwd=media, env=env)
        assert result.returncode == 1, result.stderr
        assert "read-only" in result.stderr and "bad.png" not in result.stderr
    finally:
        media.chmod(0o755)
        shutil.rmtree(media)


def test_export_never_writes_over_a_database_and_bad_paths_are_one_line(gallery, tmp_path,
                                                                        tiny_model):
    before = gallery.read_bytes()
    result = run("gallery", "export", "-g", gallery, gallery)  # it used to replace it
    assert result.exit_code == 1 and "the gallery itself" in result.output
    assert gallery.read_bytes() == before
    assert json.loads(run("gallery", "list", "-g", gallery, "--json").output)["identities"] \
        == {"ann": 2, "ben": 2}
    other = tmp_path / "other.sqlite"
    shutil.copy(gallery, other)
    result = run("gallery", "export", "-g", gallery, other)
    assert result.exit_code == 1 and "a database" in result.output
    assert other.read_bytes() == before
    model_bytes = Path(tiny_model).read_bytes()
    result = run("gallery", "export", "-g", gallery, tiny_model)  # nor over any non-archive
    assert result.exit_code == 1 and "not an .npz archive" in result.output
    assert Path(tiny_model).read_bytes() == model_bytes
    result = run("gallery", "export", "-g", gallery, tmp_path / "missing" / "x.npz")
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "cannot write the export" in result.output and "Traceback" not in result.output
    out = tmp_path / "x.npz"
    assert run("gallery", "export", "-g", gallery, out).exit_code == 0
    before = out.read_bytes()
    result = run("gallery", "export", "-g", gallery, out)  # a backup is not replaced unasked
    assert result.exit_code == 1 and "--overwrite replaces it" in result.output
    assert out.read_bytes() == before
    assert run("gallery", "export", "-g", gallery, out, "--overwrite").exit_code == 0
    result = run("gallery", "export", "-g", gallery, tiny_model, "--overwrite")
    assert result.exit_code == 1 and "not an .npz archive" in result.output  # never that


def test_a_stored_source_cannot_drive_the_terminal(tmp_path, tiny_model):
    # sources come from file names and imported exports: printed raw, escape sequences and
    # bidi overrides reached the terminal (clear screen, retitle, reversed text)
    from siamese_edge.runtime.gallery import Gallery
    from siamese_edge.runtime.model_file import read_model_info

    path = tmp_path / "g.sqlite"
    hostile = "\x1b[2J\x1b]0;title\x07evil\u202etxt.png"
    with Gallery.open(path, read_model_info(tiny_model)) as g:
        g.enroll("ann", np.eye(1, g.embedding_dim, dtype=np.float32), [hostile])
    result = run("gallery", "show", "-g", path, "ann")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "\\x1b[2J" in result.output and "\\u202e" in result.output


def test_reembed_does_not_take_the_current_models_engine_from_the_environment(monkeypatch):
    # in the container $SIAMESE_EDGE_ENGINE is the current model's engine; reembed's --model
    # is the new one, and --rebuild-stale overwrote that engine with the new model's
    from siamese_edge.cli.gallery import reembed

    monkeypatch.setenv("SIAMESE_EDGE_ENGINE", "/engines/current.engine")
    context = reembed.make_context("reembed", ["-g", "g.sqlite", "-m", "new.onnx",
                                               "--from-images", "--out", "n.sqlite"])
    assert context.params["engine"] is None
    from siamese_edge.cli.verify import verify
    context = verify.make_context("verify", ["-m", "m.onnx", "-g", "g.sqlite", "x.png"])
    assert context.params["engine"] == "/engines/current.engine"  # the runtime commands do
