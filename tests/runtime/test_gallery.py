import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from siamese_edge.errors import GalleryError, InvalidInputError, ModelMismatchError, \
    UnknownIdentityError
from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime.gallery import Gallery

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


@pytest.mark.parametrize("name", ["", "   ", "a/b", "a\\b", "bell\x07", "x" * 201])
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
