from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from siamese_edge.errors import GalleryError, InvalidInputError, ModelMismatchError, \
    UnknownIdentityError
from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime import gallery as gallery_module
from siamese_edge.runtime import sqlite_files
from siamese_edge.runtime.gallery import Gallery
from unprivileged import unprivileged_python

INFO = ModelInfo(Preprocessing(8, 8, 1, (0.5,), (0.5,)), embedding_dim=4, threshold=0.5,
                 fingerprint="sha256:" + "a" * 64, name="m1")


def unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_enroll_and_read_back(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]), sources=["b.png"])
        g.enroll("alice", unit([[0, 1, 0, 0], [0, 1, 1, 0]]))
        g.enroll("bob", unit([[1, 1, 0, 0]]))
    with Gallery.open(tmp_path / "g.sqlite", INFO, create=False) as g:
        assert g.counts() == {"alice": 2, "bob": 2}
        m = g.matrix()
        assert m.names == ["alice", "bob"] and m.starts.tolist() == [0, 2]
        assert m.owner.tolist() == [0, 0, 1, 1]
        np.testing.assert_allclose(np.linalg.norm(m.embeddings, axis=1), 1, rtol=1e-6)


def test_unit_embeddings_are_stored_bit_for_bit_and_others_normalised(tmp_path):
    # an embedder's float32 output, divided by its norm again, moves by an ulp in about one
    # row in six here; a stored template must be exactly what `compare` scores
    rng = np.random.default_rng(0)
    rows = unit(rng.normal(size=(200, 4)))
    assert not np.array_equal(rows / np.linalg.norm(rows, axis=1, keepdims=True), rows)
    long = np.float32([[3, 4, 0, 0]])
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        ids = g.enroll("many", rows)
        g.enroll("long", long)
        np.testing.assert_array_equal(g.embeddings(ids), rows)
        np.testing.assert_allclose(g.identity("long").templates and
                                   g.embeddings([g.identity("long").templates[0].id]),
                                   [[0.6, 0.8, 0, 0]], rtol=1e-6)


def test_other_model_is_refused_naming_both_fingerprints(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    other = replace(INFO, fingerprint="sha256:" + "b" * 64, name="m2")
    with pytest.raises(ModelMismatchError, match="sha256:aaaa.*m1.*sha256:bbbb.*m2"):
        Gallery.open(tmp_path / "g.sqlite", other)


@pytest.mark.parametrize("content", [b"hello, not a database", b"SQLite format 3\x00" + b"\x00" * 50])
def test_non_gallery_files_are_refused_untouched(tmp_path, content):
    path = tmp_path / "g.sqlite"
    path.write_bytes(content)
    before = digest(path)
    with pytest.raises(GalleryError):
        Gallery.open(path, INFO)
    assert digest(path) == before


def test_sqlite_file_that_is_not_a_gallery_and_newer_schema(tmp_path):
    plain = tmp_path / "plain.sqlite"
    sqlite3.connect(plain).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(GalleryError, match="not a siamese-edge gallery"):
        Gallery.open(plain, INFO)
    newer = tmp_path / "newer.sqlite"
    Gallery.open(newer, INFO).close()
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(GalleryError, match="newer"):
        Gallery.open(newer, INFO)


@pytest.mark.parametrize("name", ["", "   ", "a/b", "a\\b", "bell\x07", "x" * 201, "unknown",
                                  " Unknown "])
def test_bad_names_are_refused(tmp_path, name):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g, pytest.raises(InvalidInputError):
        g.enroll(name, unit([[1, 0, 0, 0]]))


@pytest.mark.parametrize("rows", [[[np.nan, 0, 0, 0]], [[np.inf, 1, 0, 0]], [[0, 0, 0, 0]],
                                  [[1, 0, 0]]])
def test_bad_embeddings_are_refused_and_nothing_is_stored(tmp_path, rows):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        with pytest.raises(InvalidInputError):
            g.enroll("bob", np.asarray(rows, np.float32))
        assert g.counts() == {}


def test_failed_enrolment_leaves_no_partial_identity(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        with pytest.raises(InvalidInputError):
            g.enroll("bob", unit([[1, 0, 0, 0], [0, 1, 0, 0]]), sources=["only-one"])
        assert "bob" not in g and g.counts() == {}


def test_remove(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0], [0, 1, 0, 0]]))
        g.enroll("eve", unit([[0, 0, 1, 0]]))
        assert g.remove("bob") == 2
        assert g.matrix().names == ["eve"]
        with pytest.raises(UnknownIdentityError):
            g.remove("bob")


def test_missing_gallery_without_create(tmp_path):
    with pytest.raises(GalleryError, match="no such gallery"):
        Gallery.open(tmp_path / "none.sqlite", INFO, create=False)
    assert not (tmp_path / "none.sqlite").exists()


@pytest.mark.parametrize("name", ["site#1.sqlite", "what?.sqlite", "a%41.sqlite"])
def test_uri_characters_in_the_file_name_name_that_file(tmp_path, name):
    for decoy in ("site", "what", "aA.sqlite"):  # what a '#', '?' or '%41' would open instead
        with Gallery.open(tmp_path / decoy, INFO) as g:
            g.enroll("decoy", unit([[0, 0, 0, 1]]))
    with Gallery.open(tmp_path / name, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    for read_only in (True, False):
        with Gallery.open(tmp_path / name, INFO, create=False, read_only=read_only) as g:
            assert g.counts() == {"bob": 1}
    with pytest.raises(GalleryError, match="no such gallery"):
        Gallery.open(tmp_path / "new?.sqlite", None, create=False, read_only=True)
    files = {p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))}
    assert files == {"site", "what", "aA.sqlite", name}


def damage_page(path: Path, page: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(4096 * (page - 1))
        handle.write(b"\x07" * 64)


def test_a_damaged_page_past_the_meta_table_is_a_gallery_error(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    damage_page(path, 4)  # the identities table; opening reads only the meta table
    before = digest(path)
    for read_only in (True, False):
        with Gallery.open(path, INFO, create=False, read_only=read_only) as g:
            with pytest.raises(GalleryError, match="g.sqlite: .*corrupt"):
                g.counts()
            with pytest.raises(GalleryError, match="corrupt"):
                g.identity("bob")
            if not read_only:
                with pytest.raises(GalleryError, match="corrupt"):
                    g.remove("bob")
    assert digest(path) == before


def test_a_write_lock_held_too_long_is_a_gallery_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_files, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(GalleryError, match="g.sqlite: .*locked by another process"):
                g.enroll("ann", unit([[0, 1, 0, 0]]))
            with pytest.raises(GalleryError, match="locked by another process"):
                g.rename("bob", "rob")
        finally:
            other.execute("ROLLBACK")
            other.close()
        g.enroll("ann", unit([[0, 1, 0, 0]]))  # the connection is still usable
        assert g.counts() == {"ann": 1, "bob": 1}


@pytest.fixture()
def shared_dir():
    """A folder an unprivileged user can reach (pytest's tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="gallery-test-"))
    path.chmod(0o777)
    yield path
    for folder in [path, *path.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o755)
    shutil.rmtree(path)


# Opens the gallery argv[1] (writable unless argv[2] is "ro") and does each of argv[3:]
# (read, index, enroll, rename), printing the outcome of each on one line.
UNPRIVILEGED = """
import sys, numpy as np
from siamese_edge.errors import GalleryError
from siamese_edge.runtime.gallery import Gallery
try:
    g = Gallery.open(sys.argv[1], None, create=False, read_only=sys.argv[2] == "ro")
except GalleryError as exc:
    sys.exit(print("open:", exc))
for action in sys.argv[3:]:
    try:
        if action == "read":
            print("read:", g.counts())
        elif action == "index":
            print("index:", len(g.index()))
        elif action == "enroll":
            print("enroll:", g.enroll("ann", np.ones((1, 4))))
        elif action == "rename":
            print("rename:", g.rename("bob", "rob"))
    except GalleryError as exc:
        print(f"{action}: GalleryError: {exc}")
g.close()
"""


def run_unprivileged(*args) -> list[str]:
    """Run UNPRIVILEGED as a user that file permissions bind (root ignores them)."""
    python, env = unprivileged_python()
    result = subprocess.run([*python, "-c", UNPRIVILEGED, *map(str, args)],
                            capture_output=True, text=True, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout.splitlines()


@pytest.mark.skipif(os.name != "posix", reason="file permissions as POSIX has them")
def test_writing_to_a_read_only_gallery_file_is_a_gallery_error(shared_dir):
    path = shared_dir / "g.sqlite"
    with Gallery.open(path, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    path.chmod(0o444)
    before = digest(path)
    lines = run_unprivileged(path, "rw", "enroll", "rename", "read")
    assert lines[:2] == [f"{action}: GalleryError: {path}: the gallery is read-only (no write "
                         f"permission on the file or its folder)" for action in ("enroll", "rename")]
    assert lines[2] == "read: {'bob': 1}"
    assert digest(path) == before


@pytest.mark.skipif(os.name != "posix", reason="file permissions as POSIX has them")
def test_a_gallery_on_read_only_storage_can_be_read(shared_dir):
    folder = shared_dir / "media"
    folder.mkdir()
    path = folder / "g.sqlite"
    with Gallery.open(path, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    path.chmod(0o444)
    folder.chmod(0o555)  # no -shm file can be made next to it
    before = digest(path)
    assert run_unprivileged(path, "ro", "read", "index") == ["read: {'bob': 1}", "index: 1"]
    lines = run_unprivileged(path, "rw", "read", "index", "rename")
    assert lines[:2] == ["read: {'bob': 1}", "index: 1"]
    assert lines[2] == f"rename: GalleryError: {path}: the gallery is read-only (no write " \
                       f"permission on the file or its folder)"
    assert digest(path) == before and sorted(p.name for p in folder.iterdir()) == ["g.sqlite"]


@pytest.mark.skipif(os.name != "posix", reason="file permissions as POSIX has them")
def test_read_only_storage_with_unmerged_changes_is_refused_not_misread(shared_dir):
    folder = shared_dir / "media"
    folder.mkdir()
    with Gallery.open(shared_dir / "g.sqlite", INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
        shutil.copy(shared_dir / "g.sqlite", folder)  # copied while open: bob is in the -wal
        shutil.copy(shared_dir / "g.sqlite-wal", folder)
    folder.chmod(0o555)
    lines = run_unprivileged(folder / "g.sqlite", "ro", "read")
    assert lines == [f"open: {folder / 'g.sqlite'}: on read-only storage with changes still in "
                     f"its -wal file; open it once where it can be written"]


def test_names_are_looked_up_as_they_are_stored(tmp_path):
    decomposed, composed = "cafe\u0301", "caf\u00e9"  # macOS folder names are decomposed
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        g.enroll(decomposed, unit([[1, 0, 0, 0], [1, 1, 0, 0]]))
        g.enroll(" bob", unit([[0, 1, 0, 0]]))
        assert g.names() == ["bob", composed]
        assert decomposed in g and " bob " in g and 7 not in g
        assert g.identity(decomposed).name == composed
        first = g.templates(decomposed)[0].id
        assert g.remove_template(first, decomposed) == composed
        g.set_metadata(" bob ", {"badge": 1})
        assert g.identity("bob").metadata == {"badge": 1}
        assert g.rename("bob ", " robert ") == "robert"
        assert g.rename(decomposed, decomposed) == composed  # renaming to itself: no clash
        assert g.remove(composed + " ") == 1
        assert g.counts() == {"robert": 1}


def test_an_empty_file_or_database_becomes_a_gallery_when_enrolling(tmp_path):
    empty, schemaless = tmp_path / "empty.sqlite", tmp_path / "schemaless.sqlite"
    empty.touch()  # what another process creating the gallery leaves for a moment
    sqlite3.connect(schemaless).execute("PRAGMA user_version = 1").connection.close()
    for path in (empty, schemaless):
        with pytest.raises(GalleryError, match="an empty file, not a gallery"):
            Gallery.open(path, None, create=False, read_only=True)
        with pytest.raises(GalleryError, match="an empty file, not a gallery"):
            Gallery.open(path, INFO, create=False)
        with Gallery.open(path, INFO) as g:
            g.enroll("bob", unit([[1, 0, 0, 0]]))
        with Gallery.open(path, INFO, read_only=True) as g:
            assert g.counts() == {"bob": 1}


def test_a_gallery_that_vanishes_while_opening_is_not_recreated_empty(tmp_path, monkeypatch):
    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    monkeypatch.setattr(gallery_module, "check_is_sqlite", lambda p: p.unlink())  # deleted
    with pytest.raises(GalleryError):
        Gallery.open(path, None)  # records only: nothing to create a gallery for
    assert not path.exists()


def test_our_change_after_another_handles_change_reloads_the_index(tmp_path):
    # B removes ann, then A removes ben: applying only its own change left A's index with
    # ann's template, under a label its names no longer had
    from siamese_edge.runtime.matching import MaxScore

    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as a, Gallery.open(path, INFO) as b:
        for name, row in (("ann", [1, 0, 0, 0]), ("ben", [0, 1, 0, 0]), ("cat", [0, 0, 1, 0])):
            a.enroll(name, unit([row]))
        a.index()  # loaded before either removal
        b.remove("ann")
        a.remove("ben")
        ranked = MaxScore().rank(a.index(), unit([[1, 0, 0, 0]]), 3)[0]
        names = a.label_names()
        assert [names[label] for label, _ in ranked] == ["cat"]


def test_an_identity_stored_as_unknown_before_the_name_was_reserved_is_kept(tmp_path):
    # an earlier version stored it; import refused it (dropped, exit 3) and reembed stopped
    from siamese_edge.errors import InvalidInputError
    from siamese_edge.runtime.gallery_io import export_gallery, import_gallery

    old = tmp_path / "old.sqlite"
    with Gallery.open(old, INFO) as g:
        g.enroll("unknown", unit([[1, 0, 0, 0]]), reserved_ok=True)  # as the old version did
        g.enroll("ann", unit([[0, 1, 0, 0]]))
        export_gallery(g, tmp_path / "backup.npz")
        with pytest.raises(InvalidInputError, match="gallery rename unknown NEW_NAME"):
            g.enroll("unknown", unit([[0, 0, 1, 0]]))
        # a new identity under it: refused, without a rename hint for what is not there
        with Gallery.open(tmp_path / "fresh.sqlite", INFO) as fresh, \
                pytest.raises(InvalidInputError) as refused:
            fresh.enroll("Unknown", unit([[0, 0, 1, 0]]))
        assert "reserved" in str(refused.value) and "rename" not in str(refused.value)
    report = import_gallery(tmp_path / "new.sqlite", tmp_path / "backup.npz")
    assert not report.failures and sorted(report.imported) == ["ann", "unknown"]
    # kept, but not silently: verify would answer "unknown" for a match with it
    (warning,) = report.to_dict()["warnings"]
    assert "identity 'unknown' kept under a name now reserved" in warning
    assert "gallery rename unknown NEW_NAME" in warning


def test_reembed_carries_an_identity_stored_as_unknown_and_says_so(tmp_path, tiny_model):
    from siamese_edge.runtime.gallery_io import reembed_gallery
    from siamese_edge.runtime.imageio import read_image, write_image
    from siamese_edge.runtime.onnxruntime_embedder import OnnxRuntimeEmbedder

    image = tmp_path / "u.png"
    write_image(image, np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8))
    with OnnxRuntimeEmbedder(tiny_model) as embedder:
        with Gallery.open(tmp_path / "old.sqlite", embedder.info) as old:
            old.enroll("unknown", embedder.embed([read_image(image)]), sources=[str(image)],
                       reserved_ok=True)
            report = reembed_gallery(embedder, old, tmp_path / "new.sqlite")
    assert report.reembedded == {"unknown": 1} and len(report.warnings) == 1
