import sqlite3

import numpy as np
import pytest

from siamese_edge.errors import GalleryError, InvalidInputError, UnknownIdentityError
from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime.gallery import SCHEMA_VERSION, DuplicateIdentityError, Gallery
from siamese_edge.runtime.gallery_io import export_gallery, import_gallery, read_export, \
    reembed_gallery

INFO = ModelInfo(Preprocessing(8, 8, 1, (0.5,), (0.5,)), embedding_dim=4, threshold=0.5,
                 fingerprint="sha256:" + "a" * 64, name="m1")


def unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL, metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE templates (id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL, source TEXT, created REAL NOT NULL, quality REAL);
CREATE INDEX templates_by_identity ON templates(identity_id);
"""


def write_v1(path):
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema_version", "1"), ("model_fingerprint", INFO.fingerprint), ("model_name", "m1"),
        ("embedding_dim", "4"), ("preprocessing", "{}"), ("created", "0")])
    db.execute("INSERT INTO identities VALUES (1, 'bob', 1.0, '{\"team\": 7}')")
    for i, row in enumerate(unit([[1, 0, 0, 0], [0, 1, 0, 0]])):
        db.execute("INSERT INTO templates VALUES (?, 1, ?, 'b.png', 2.0, 0.5)",
                   (i + 1, row.astype("<f4").tobytes()))
    db.commit()
    db.close()


def test_v1_file_is_migrated_and_keeps_everything(tmp_path):
    path = tmp_path / "v1.sqlite"
    write_v1(path)
    with Gallery.open(path, INFO) as g:
        assert g.schema_version == SCHEMA_VERSION
        record = g.identity("bob")
        assert record.metadata == {"team": 7}
        assert [(t.id, t.source, t.quality) for t in record.templates] == \
            [(1, "b.png", 0.5), (2, "b.png", 0.5)]
        g.remove_template(2)
        assert g.enroll("bob", unit([[0, 0, 1, 0]])) == [3]  # ids are never reused
    db = sqlite3.connect(path)
    assert "AUTOINCREMENT" in db.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'templates'").fetchone()[0]


def test_a_migration_another_process_already_ran_is_not_run_again(tmp_path):
    # processes opening one v1 gallery together each read version 1, then migrated in turn;
    # a second run reset the revision and let template ids be reused
    path = tmp_path / "v1.sqlite"
    write_v1(path)
    with Gallery.open(path, INFO) as g:
        g.remove_template(2)
        revision = g.meta_value("revision")
        g._migrate(1)  # what a process that read version 1 before the others migrated does
        assert g.meta_value("revision") == revision
        assert g.enroll("bob", unit([[0, 0, 1, 0]])) == [3]


def damaged_gallery(tmp_path, sql: str, parameters=()):
    """A gallery holding bob, then changed behind its back by ``sql``: what a crash, a disk
    fault or another tool could leave."""
    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    db = sqlite3.connect(path)
    db.execute(sql, parameters)
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("key,value", [("embedding_dim", "abc"), ("embedding_dim", "0"),
                                       ("template_dtype", "float8"), ("revision", "x"),
                                       ("preprocessing", "abc")])
def test_damaged_metadata_is_one_gallery_error(tmp_path, key, value):
    path = damaged_gallery(tmp_path, "UPDATE meta SET value = ? WHERE key = ?", (value, key))
    for model in (INFO, None):  # verify, and the record-keeping commands (stats, export)
        with pytest.raises(GalleryError, match="damaged gallery"):
            Gallery.open(path, model, create=False)


@pytest.mark.parametrize("table,column", [("templates", "created"), ("templates", "quality"),
                                          ("identities", "created")])
def test_a_damaged_row_is_one_gallery_error(tmp_path, table, column):
    path = damaged_gallery(tmp_path, f"UPDATE {table} SET {column} = 'abc'")
    with Gallery.open(path, INFO, create=False) as g:
        with pytest.raises(GalleryError, match="damaged"):  # was a ValueError traceback
            g.identity("bob")


def test_read_only_open_reads_v1_without_writing(tmp_path):
    path = tmp_path / "v1.sqlite"
    write_v1(path)
    before = path.read_bytes()
    with Gallery.open(path, INFO, read_only=True) as g:
        assert g.counts() == {"bob": 2}
    assert path.read_bytes() == before


def test_float16_storage_quality_metadata(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO, template_dtype="float16") as g:
        vectors = unit([[1, 2, 3, 4], [4, 3, 2, 1]])
        ids = g.enroll("ann", vectors, ["a.png", None], {"badge": "A1"}, qualities=[0.9, None])
        np.testing.assert_allclose(g.embeddings(ids), vectors, atol=1e-3)
        assert g.identity("ann").metadata == {"badge": "A1"}
        assert [t.quality for t in g.templates("ann")] == [0.9, None]
        assert g.stats()["template_dtype"] == "float16"
        g.set_metadata("ann", {"badge": "B2"})
        assert g.identity("ann").metadata == {"badge": "B2"}
        with pytest.raises(InvalidInputError):
            g.set_metadata("ann", {"x": float("nan")})
        with pytest.raises(InvalidInputError):
            g.enroll("ann", vectors[:1], qualities=[float("inf")])
    with pytest.raises(InvalidInputError):
        Gallery.open(tmp_path / "h.sqlite", INFO, template_dtype="int8")


def test_duplicate_policy_rename_and_template_removal(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        g.enroll("ann", unit([[1, 0, 0, 0]]))
        with pytest.raises(DuplicateIdentityError):
            g.enroll("ann", unit([[0, 1, 0, 0]]), on_duplicate="refuse")
        assert g.counts() == {"ann": 1}
        g.enroll("ann", unit([[0, 1, 0, 0]]), on_duplicate="add")
        with pytest.raises(InvalidInputError):
            g.enroll("ann", unit([[0, 1, 0, 0]]), on_duplicate="merge")
        g.enroll("bob", unit([[0, 0, 1, 0]]))
        with pytest.raises(DuplicateIdentityError):
            g.rename("ann", "bob")
        with pytest.raises(InvalidInputError):
            g.rename("ann", "a/b")
        g.rename("ann", "anna")
        index = g.index()
        assert sorted(g.label_names().values()) == ["anna", "bob"]
        first = g.templates("anna")[0].id
        with pytest.raises(UnknownIdentityError):
            g.remove_template(first, "bob")
        assert g.remove_template(first) == "anna"
        assert first not in g.index() and len(index) == 2
        with pytest.raises(UnknownIdentityError):
            g.remove_template(first)


def test_index_follows_other_connections(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as reader, Gallery.open(path, INFO) as writer:
        writer.enroll("ann", unit([[1, 0, 0, 0]]))
        assert len(reader.index()) == 1
        writer.enroll("bob", unit([[0, 1, 0, 0], [0, 1, 1, 0]]))
        reader.enroll("cat", unit([[0, 0, 0, 1]]))
        assert len(reader.index()) == 4
        writer.remove("bob")
        writer.rename("ann", "anne")
        assert sorted(reader.index().ids.tolist()) == [1, 4]
        assert sorted(reader.label_names().values()) == ["anne", "cat"]


def test_matrix_follows_other_connections(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery.open(path, INFO) as reader, Gallery.open(path, INFO) as writer:
        writer.enroll("ann", unit([[1, 0, 0, 0]]))
        writer.enroll("bob", unit([[0, 1, 0, 0]]))
        assert reader.matrix().names == ["ann", "bob"]
        writer.remove("bob")  # it used to stay in the reader's cached matrix
        assert reader.matrix().names == ["ann"]
        reader.enroll("cat", unit([[0, 0, 1, 0]]))
        assert reader.matrix().names == ["ann", "cat"] and len(reader.matrix().owner) == 2


def test_export_import_round_trip(tmp_path):
    with Gallery.open(tmp_path / "a.sqlite", INFO) as g:
        g.enroll("ann", unit([[1, 0, 0, 0], [1, 1, 0, 0]]), ["a1.png", None], {"k": [1, 2]},
                 qualities=[0.5, None])
        g.enroll("bob", unit([[0, 0, 1, 0]]))
        # an identity whose templates were all removed keeps its record and metadata
        g.remove_template(g.enroll("cy", unit([[0, 0, 0, 1]]), metadata={"desk": 3})[0])
        assert export_gallery(g, tmp_path / "out.npz") == {"identities": 3, "templates": 3}
        original = {n: g.identity(n) for n in g.names()}
        vectors = g.embeddings([t.id for n in g.names() for t in original[n].templates])
    data = np.load(tmp_path / "out.npz", allow_pickle=False)
    assert str(data["format"]) == "siamese-edge-gallery"
    report = import_gallery(tmp_path / "b.sqlite", tmp_path / "out.npz")
    assert report.imported == {"ann": 2, "bob": 1, "cy": 0} and not report.failures
    with Gallery.open(tmp_path / "b.sqlite", INFO, create=False) as g:
        for name, record in original.items():
            copy = g.identity(name)
            assert copy.metadata == record.metadata
            assert copy.created == record.created  # it used to become the import's time
            assert [(t.source, t.quality, t.created) for t in copy.templates] == \
                [(t.source, t.quality, t.created) for t in record.templates]
        np.testing.assert_array_equal(
            g.embeddings([t.id for n in g.names() for t in g.templates(n)]), vectors)
    again = import_gallery(tmp_path / "b.sqlite", tmp_path / "out.npz")
    assert again.imported == {} and len(again.failures) == 3
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(Exception, match="not a gallery export"):
        read_export(tmp_path / "bad.npz")
    (tmp_path / "mk.py").write_text("print(1)\n")  # numpy called it "pickled data"
    with pytest.raises(GalleryError, match=r"mk\.py: not a gallery export \(not an \.npz"):
        read_export(tmp_path / "mk.py")


def _exported(tmp_path, **changes):
    """An export of a two-identity gallery, with ``changes`` written over its arrays."""
    with Gallery.open(tmp_path / "src.sqlite", INFO) as g:
        g.enroll("ann", unit([[1, 0, 0, 0], [1, 1, 0, 0]]))
        g.enroll("bob", unit([[0, 0, 1, 0]]))
        export_gallery(g, tmp_path / "out.npz")
    arrays = dict(np.load(tmp_path / "out.npz", allow_pickle=False))
    arrays.update(changes)
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("changes, message", [
    ({"meta": np.array("{not json")}, "damaged export"),
    ({"meta": np.array("[1, 2]")}, "not a JSON object"),
    ({"format_version": np.array("one")}, "damaged export"),
    ({"meta": np.array('{"embedding_dim": "x"}')}, "damaged export"),
    ({"identity_metadata": np.array(["{}"])}, "identity_metadata is not one"),
    ({"identity_metadata": np.array(["{}", "{oops"])}, "not JSON"),
    ({"template_quality": np.array(["a", "b", "c"])}, "template_quality is not one"),
    ({"template_sources": np.array("x")}, "template_sources is not one"),
    ({"template_created": np.array([1.0, np.nan, 2.0])}, "not dates"),
    ({"template_created": np.array([1.0, 1e300, 2.0])}, "not dates"),
    ({"template_embeddings": np.full((3, 4), np.nan, np.float32)}, "finite rows"),
])
def test_a_damaged_export_is_refused_before_anything_is_imported(tmp_path, changes, message):
    bad = _exported(tmp_path, **changes)
    with pytest.raises(GalleryError, match=message):
        import_gallery(tmp_path / "target.sqlite", bad)
    assert not (tmp_path / "target.sqlite").exists()  # nothing created, nothing half imported


def test_import_keeps_float16_storage_and_enroll_refuses_times_that_are_not_dates(tmp_path):
    with Gallery.open(tmp_path / "half.sqlite", INFO, template_dtype="float16") as g:
        g.enroll("ann", unit([[1, 0, 0, 0]]))
        export_gallery(g, tmp_path / "half.npz")
        for when in (float("nan"), -1.0, 1e300):
            with pytest.raises(InvalidInputError, match="not a UNIX time"):
                g.enroll("bob", unit([[0, 1, 0, 0]]), created=[when])
        assert g.names() == ["ann"]
    import_gallery(tmp_path / "copy.sqlite", tmp_path / "half.npz")
    with Gallery.open(tmp_path / "copy.sqlite", INFO, create=False) as g:
        assert g.template_dtype == "float16"  # it became float32, twice the size


class StandInEmbedder:
    """Embeds like a model bound to INFO. ``fail_at``: the batch that raises (the
    accelerator went away); ``during``: called at the first batch (another process at
    work meanwhile)."""

    info = INFO

    def __init__(self, fail_at: int | None = None, during=None):
        self.batches, self.fail_at, self.during = 0, fail_at, during

    def embed(self, images):
        self.batches += 1
        if self.batches == self.fail_at:
            raise RuntimeError("the accelerator went away")
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return unit(np.ones((len(images), 4)))


@pytest.fixture
def image(tmp_path):
    """An 8x8 PNG that templates name as their source."""
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((8, 8), np.uint8))
    return path


def test_reembed_never_writes_into_an_existing_gallery_nor_leaves_half_a_new_one(tmp_path, image):
    with Gallery.open(tmp_path / "src.sqlite", INFO) as source:
        for name in ("ann", "bob", "cat"):
            source.enroll(name, unit([[1, 0, 0, 0]]), [str(image)])
        existing = tmp_path / "dst.sqlite"
        with Gallery.open(existing, INFO) as g:
            g.enroll("bob", unit([[0, 1, 0, 0]]))
        before = existing.read_bytes()
        with pytest.raises(InvalidInputError, match="dst.sqlite: already exists"):
            reembed_gallery(StandInEmbedder(fail_at=2), source, existing)
        assert existing.read_bytes() == before
        with pytest.raises(RuntimeError, match="accelerator"):
            reembed_gallery(StandInEmbedder(fail_at=2), source, tmp_path / "new.sqlite")
        assert not list(tmp_path.glob("new.sqlite*"))  # nor its .partial, -wal, -shm


def test_reembed_keeps_identities_without_templates_and_every_time(tmp_path, image):
    with Gallery.open(tmp_path / "src.sqlite", INFO) as source:
        source.enroll("ann", unit([[1, 0, 0, 0]]), [str(image)], created=[1000.0],
                      identity_created=900.0)
        gone = source.enroll("cy", unit([[0, 1, 0, 0]]), [str(image)], {"badge": 42})
        source.remove_template(gone[0])  # cy: a record and metadata, no template
        report = reembed_gallery(StandInEmbedder(), source, tmp_path / "new.sqlite")
    assert report.reembedded == {"ann": 1, "cy": 0}
    with Gallery.open(tmp_path / "new.sqlite", INFO, create=False) as out:
        assert out.identity("cy").metadata == {"badge": 42}  # it was dropped
        ann = out.identity("ann")
        assert ann.created == 900.0 and ann.templates[0].created == 1000.0  # were "now"


def test_two_reembeds_to_one_path_never_publish_a_broken_gallery(tmp_path, image):
    target = tmp_path / "new.sqlite"
    with Gallery.open(tmp_path / "src.sqlite", INFO) as source:
        for name in ("ann", "bob"):
            source.enroll(name, unit([[1, 0, 0, 0]]), [str(image)])

        def second_run():  # starts and finishes while the first is between its batches
            reembed_gallery(StandInEmbedder(), source, target)

        with pytest.raises(GalleryError, match="appeared while re-embedding"):
            reembed_gallery(StandInEmbedder(during=second_run), source, target)
    # the second run's gallery is whole; the first one's work is left beside it, whole too
    # (it used to be deleted by the second run, which then published an empty file)
    with Gallery.open(target, INFO, create=False) as out:
        assert out.counts() == {"ann": 1, "bob": 1}
    (left,) = tmp_path.glob("new.sqlite.*.partial")
    with Gallery.open(left, INFO, create=False) as out:
        assert out.counts() == {"ann": 1, "bob": 1}


def test_export_reads_one_state_of_the_gallery(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        ids = g.enroll("ann", unit([[1, 0, 0, 0], [0, 1, 0, 0]]))
        g.enroll("bob", unit([[0, 0, 1, 0]]))
        other = Gallery.open(tmp_path / "g.sqlite", INFO, create=False)
        identity = g.identity

        def identity_while_another_process_removes(name):
            record = identity(name)
            if name == "ann":
                other.remove_template(ids[1])  # committed between the export's reads
            return record

        g.identity = identity_while_another_process_removes
        try:
            # it used to fail with "no template N" (the names and records read before the
            # removal, the vectors after)
            assert export_gallery(g, tmp_path / "out.npz") == {"identities": 2, "templates": 3}
        finally:
            other.close()


def test_float16_templates_are_read_back_unit_length(tmp_path):
    vectors = unit(np.random.default_rng(0).normal(size=(50, 4)))
    with Gallery.open(tmp_path / "g.sqlite", INFO, template_dtype="float16") as g:
        ids = g.enroll("ann", vectors)
        for read in (g.embeddings(ids), g.matrix().embeddings, g.index().vectors):
            np.testing.assert_allclose(np.linalg.norm(read, axis=1), 1, atol=1e-6)
        # a probe equal to what was enrolled scores at most 1 (float32 rounding aside)
        assert (g.matrix().embeddings * vectors).sum(axis=1).max() <= 1 + 1e-6


def test_reembed_says_a_camera_frame_has_no_image_to_read(tmp_path):
    with Gallery.open(tmp_path / "src.sqlite", INFO) as source:
        source.enroll("cam", unit([[1, 0, 0, 0]]), [f"{tmp_path}/v.avi#0"])
        report = reembed_gallery(StandInEmbedder(), source, tmp_path / "new.sqlite")
    (missing,) = report.missing
    assert "a camera frame, not kept as an image; enroll 'cam' again" in missing[2]
    assert report.reembedded == {"cam": 0}  # the identity is kept, to be enrolled again


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_importing_a_backup_into_its_own_gallery_adds_nothing_twice(tmp_path, dtype):
    # --on-duplicate add onto the gallery it came from doubled every template
    with Gallery.open(tmp_path / "g.sqlite", INFO, template_dtype=dtype) as g:
        g.enroll("ann", unit([[1, 0, 0, 0], [1, 1, 0, 0]]), ["a1.png", None])
        g.enroll("bob", unit([[0, 0, 1, 0]]), ["b.png"])
        export_gallery(g, tmp_path / "out.npz")
        g.enroll("ann", unit([[0, 1, 1, 0]]), ["a3.png"])  # added after the backup
    report = import_gallery(tmp_path / "g.sqlite", tmp_path / "out.npz", on_duplicate="add")
    assert report.already == {"ann": 2, "bob": 1} and report.imported == {"ann": 0, "bob": 0}
    with Gallery.open(tmp_path / "g.sqlite", INFO, create=False) as g:
        assert g.counts() == {"ann": 3, "bob": 1}


def test_a_float16_backup_imported_into_a_float32_gallery_adds_nothing_twice(tmp_path):
    # float16 vectors are re-normalised when stored as float32: bytes never matched
    with Gallery.open(tmp_path / "half.sqlite", INFO, template_dtype="float16") as g:
        g.enroll("ann", unit([[1, 0.3, 0, 0], [1, 1, 0.2, 0]]), ["a1.png", "a2.png"])
        export_gallery(g, tmp_path / "half.npz")
    target = tmp_path / "full.sqlite"
    with Gallery.open(target, INFO, template_dtype="float32"):
        pass
    first = import_gallery(target, tmp_path / "half.npz", on_duplicate="add")
    second = import_gallery(target, tmp_path / "half.npz", on_duplicate="add")
    assert first.imported == {"ann": 2} and second.already == {"ann": 2}
    with Gallery.open(target, INFO, create=False) as g:
        assert g.counts() == {"ann": 2}


def test_reembed_publishes_a_gallery_with_the_usual_permissions(tmp_path, image):
    import os
    import stat

    with Gallery.open(tmp_path / "src.sqlite", INFO) as source:
        source.enroll("ann", unit([[1, 0, 0, 0]]), [str(image)])
        old = os.umask(0o022)
        try:
            reembed_gallery(StandInEmbedder(), source, tmp_path / "new.sqlite")
        finally:
            os.umask(old)
    mode = stat.S_IMODE((tmp_path / "new.sqlite").stat().st_mode)
    assert mode == 0o644  # a temporary file made it 0600: other users could not read it


def _export_with(tmp_path, **members):
    """A valid export with ``members`` (name -> raw .npy bytes) written over or beside it."""
    import zipfile

    if not (tmp_path / "ok.npz").exists():
        with Gallery.open(tmp_path / "src.sqlite", INFO) as g:
            g.enroll("bob", unit([[1, 0, 0, 0]]), metadata={"k": 1})
            export_gallery(g, tmp_path / "ok.npz")
    out = tmp_path / f"hostile-{len(list(tmp_path.glob('hostile-*')))}.npz"
    with zipfile.ZipFile(tmp_path / "ok.npz") as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename[:-4] not in members:
                target.writestr(item, source.read(item))
        for name, raw in members.items():
            target.writestr(f"{name}.npy", raw)
    return out


def _npy_header(shape, dtype="<f8") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False,
                                                   "shape": shape})
    return buffer.getvalue()


def test_an_export_is_checked_before_its_arrays_are_inflated(tmp_path):
    # a 3 KB member declaring 10**12 values was allocated (7 TiB) before any check
    huge = _export_with(tmp_path, template_quality=_npy_header((10 ** 12,)))
    with pytest.raises(GalleryError, match="declares .* bytes, more than it holds"):
        read_export(huge)
    raw = _export_with(tmp_path, identity_created=b"not an array")  # was AttributeError
    with pytest.raises(GalleryError, match="not a gallery export"):
        read_export(raw)
    # a member nobody reads is not inflated at all (a 4 GiB zip bomb was, in full)
    extra = _export_with(tmp_path, zzz=_npy_header((10 ** 12,)))
    assert read_export(extra).arrays["identity_names"].tolist() == ["bob"]


def test_deeply_nested_json_is_refused_in_one_line(tmp_path):
    deep = "[" * 50000
    meta = _export_with(tmp_path, meta=_npy_array(deep))
    with pytest.raises(GalleryError, match="nested too deeply"):
        read_export(meta)
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        nested: dict = {}
        for _ in range(300):
            nested = {"a": nested}
        with pytest.raises(InvalidInputError, match="nested deeper than 256"):
            g.enroll("bob", unit([[1, 0, 0, 0]]), metadata=nested)  # near Python's limit
        for _ in range(260):
            nested = nested["a"]
        g.enroll("ann", unit([[1, 0, 0, 0]]), metadata=nested)  # 40 levels: older
        export_gallery(g, tmp_path / "deep40.npz")  # versions stored it; it must travel on
    assert import_gallery(tmp_path / "copy.sqlite", tmp_path / "deep40.npz").imported == \
        {"ann": 1}


def test_metadata_that_is_not_json_is_kept_whole(tmp_path):
    with Gallery.open(tmp_path / "g.sqlite", INFO) as g:
        g.enroll("bob", unit([[1, 0, 0, 0]]))
    db = sqlite3.connect(tmp_path / "g.sqlite")
    db.execute("UPDATE identities SET metadata = ?", ("not json " * 40,))
    db.commit()
    db.close()
    with Gallery.open(tmp_path / "g.sqlite", INFO, create=False) as g:
        assert g.identity("bob").metadata == {"_unparsed": "not json " * 40}  # was cut at 200


def _npy_array(text: str) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array(text))
    return buffer.getvalue()
