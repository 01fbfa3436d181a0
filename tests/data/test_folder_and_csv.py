import numpy as np
import pytest

from model_factory import FullSizeImages
from siamese_edge.data.loading import load_dataset
from siamese_edge.data.pairs_csv import identities_from_pairs
from siamese_edge.errors import DatasetError
from siamese_edge.runtime.imageio import write_image


def make_folder(root):
    rng = np.random.default_rng(0)
    (root / "ann").mkdir(parents=True)
    (root / "ben").mkdir()
    write_image(root / "ann" / "a.png", rng.integers(0, 256, (20, 10), dtype=np.uint8))
    write_image(root / "ann" / "b.jpg", rng.integers(0, 256, (20, 10, 3), dtype=np.uint8))
    write_image(root / "ben" / "c.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    write_image(root / "ben" / "d.png", rng.integers(0, 256, (20, 10), dtype=np.uint8))
    (root / "ben" / "broken.png").write_bytes(b"\x89PNG\r\n truncated")
    (root / "ben" / "notes.txt").write_text("not an image, not listed")


def test_image_folder_infers_size_and_colour_and_skips_bad_files(tmp_path):
    make_folder(tmp_path / "d")
    data = load_dataset(tmp_path / "d")
    assert data.images.shape == (4, 20, 10, 3)  # most common size; colour present
    assert data.class_names == ["ann", "ben"] and data.labels.tolist() == [0, 0, 1, 1]
    assert len(data.warnings) == 1 and "broken.png" in data.warnings[0]
    gray = load_dataset(tmp_path / "d", height=8, width=8, channels=1, classes=["ben"])
    assert gray.images.shape == (2, 8, 8, 1) and set(gray.labels.tolist()) == {1}
    assert len(gray.warnings) == 1  # broken.png is ben's
    # a class left out takes its unreadable files with it: they were never asked for
    assert load_dataset(tmp_path / "d", classes=["ann"]).warnings == []


def test_unknown_class_and_missing_labels(tmp_path):
    make_folder(tmp_path / "d")
    (tmp_path / "labels.idx").write_bytes(b"")
    with pytest.raises(DatasetError, match="--labels goes with an IDX images file"):
        load_dataset(tmp_path / "d", labels=tmp_path / "labels.idx")  # was ignored
    (tmp_path / "p.csv").write_text("d/ann/a.png,d/ann/b.jpg,1\n")
    with pytest.raises(DatasetError, match="a pairs CSV carries its own"):
        load_dataset(tmp_path / "p.csv", labels=tmp_path / "labels.idx")
    with pytest.raises(DatasetError, match="no class 'zed'"):
        load_dataset(tmp_path / "d", classes=["zed"])
    (tmp_path / "x.idx").write_bytes(b"\0\0\x08\x01\0\0\0\0")
    with pytest.raises(DatasetError, match="labels"):
        load_dataset(tmp_path / "x.idx")


@pytest.mark.parametrize("means,same_ab", [("similar", 1), ("dissimilar", 0)])
def test_pairs_csv_conventions(tmp_path, means, same_ab):
    make_folder(tmp_path / "d")
    csv = tmp_path / "pairs.csv"
    csv.write_text("img1,img2,label\n"
                   "d/ann/a.png,d/ann/b.jpg,1\n"
                   "d/ann/a.png,d/ben/c.png,0\n"
                   "d/ben/c.png,d/ben/d.png,1\n")
    data = load_dataset(csv, height=16, width=16, channels=1, label_means=means)
    assert data.images.shape == (4, 16, 16, 1)
    assert data.pairs[0].tolist() == [0, 1, same_ab]
    if means == "similar":  # a~b and c~d linked: two identities
        assert data.labels.tolist() == [0, 0, 1, 1]
    else:  # only a~c linked
        assert data.labels[0] == data.labels[2] and len(set(data.labels.tolist())) == 3


def test_union_find_components():
    pairs = np.array([[0, 1, 1], [1, 2, 1], [3, 4, 0], [4, 5, 1]])
    assert identities_from_pairs(6, pairs).tolist() == [0, 0, 0, 1, 2, 2]


def test_pairs_csv_without_header_and_with_an_unreadable_image(tmp_path):
    make_folder(tmp_path / "d")
    csv = tmp_path / "pairs.csv"
    csv.write_text("d/ann/a.png,d/ann/b.jpg,1\n"
                   "d/ann/a.png,d/ben/broken.png,0\n"
                   "d/ann/b.jpg,d/ben/d.png,0\n")
    data = load_dataset(csv)
    assert len(data) == 3 and len(data.warnings) == 1 and "broken.png" in data.warnings[0]
    assert data.images.shape == (3, 20, 10, 3)  # most common size, colour present
    assert data.pairs.tolist() == [[0, 1, 1], [1, 2, 0]]  # the pair with broken.png dropped
    assert data.labels.tolist() == [0, 0, 1]


def test_pairs_csv_from_a_spreadsheet_with_a_byte_order_mark(tmp_path):
    make_folder(tmp_path / "d")
    for header in (b"img1,img2,label\n", b""):  # the BOM is not part of the first path
        (tmp_path / "p.csv").write_bytes(b"\xef\xbb\xbf" + header +
                                         b"d/ann/a.png,d/ann/b.jpg,1\r\n"
                                         b"d/ann/a.png,d/ben/c.png,0\r\n")
        data = load_dataset(tmp_path / "p.csv")
        assert len(data) == 3 and data.warnings == [] and len(data.pairs) == 2


@pytest.mark.parametrize("first_label", ["+1", " 1", "-0"])
def test_pairs_csv_first_row_is_data_when_its_label_is_an_integer(tmp_path, first_label):
    # the rows accept any label int() reads; a header is a first row whose label it cannot
    make_folder(tmp_path / "d")
    (tmp_path / "p.csv").write_text(f"d/ann/a.png,d/ann/b.jpg,{first_label}\n"
                                    "d/ann/a.png,d/ben/c.png,0\n")
    data = load_dataset(tmp_path / "p.csv")
    assert len(data.pairs) == 2 and data.pairs[0].tolist() == [0, 1, abs(int(first_label))]


@pytest.mark.parametrize("content,message", [
    ("img1,img2,label\n", "no pairs"),
    ("a.png,b\x00.png,1\n", "line 1: a path holds a NUL byte"),
    ("img1,img2,label\n\na.png,b\x00.png,1\n", "line 3: a path holds a NUL byte"),
    ("img1,img2,label\na.png,b.png\n", "row 1 needs img1,img2,label"),
    ("a.png,b.png,2\n", "not 0 or 1"),
    ("a.png,b.png,1\n", "none of the images"),
])
def test_bad_pairs_csv(tmp_path, content, message):
    (tmp_path / "p.csv").write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(tmp_path / "p.csv")


def test_folder_without_readable_images(tmp_path):
    (tmp_path / "d" / "ann").mkdir(parents=True)
    (tmp_path / "d" / "ann" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="no readable images"):
        load_dataset(tmp_path / "d")
    with pytest.raises(DatasetError, match="no identity subfolders"):
        load_dataset(tmp_path / "d" / "ann")


def test_labelled_images_checks_and_subset_keeps_pairs():
    from siamese_edge.data.labelled import LabelledImages

    with pytest.raises(DatasetError, match="1 \\(gray\\) or 3"):
        LabelledImages(np.zeros((2, 4, 4, 2), np.uint8), np.zeros(2), ["a"])
    with pytest.raises(DatasetError, match="one label per image"):
        LabelledImages(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(3), ["a"])
    data = LabelledImages(np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1), [0, 0, 1, 1],
                          ["a", "b"], pairs=np.array([[0, 1, 1], [1, 2, 0], [2, 3, 1]]))
    part = data.subset([1, 2, 3])
    assert part.pairs.tolist() == [[0, 1, 0], [1, 2, 1]]
    assert part.images[:, 0, 0, 0].tolist() == [1, 2, 3]
    assert data.select_classes(["b"]).labels.tolist() == [1, 1]


def _reference(paths, height, width, channels):
    """What the loaders gave before: every image read whole, then each fitted."""
    from siamese_edge.runtime.imageio import read_image
    from siamese_edge.runtime.preprocess import fit_image

    raw = [read_image(p) for p in paths]
    channels = channels or (3 if any(r.shape[2] == 3 for r in raw) else 1)
    return np.stack([fit_image(r, height, width, channels) for r in raw])


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_image_folder_fits_each_image_as_it_is_read(tmp_path, monkeypatch, channels):
    # every image was held at full resolution until all were read (12 links to one
    # 8192x8192 PNG: 2.6 GB); with the size known each is fitted at once, same pixels
    import siamese_edge.data.folder as folder

    make_folder(tmp_path / "d")
    spy = FullSizeImages(monkeypatch, folder)
    data = load_dataset(tmp_path / "d", height=7, width=13, channels=channels)
    assert spy.most_alive <= 1
    assert np.array_equal(data.images, _reference(data.paths, 7, 13, channels))


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_pairs_csv_fits_each_image_as_it_is_read(tmp_path, monkeypatch, channels):
    import siamese_edge.data.pairs_csv as pairs_csv

    make_folder(tmp_path / "d")
    (tmp_path / "p.csv").write_text("d/ann/a.png,d/ann/b.jpg,1\nd/ben/c.png,d/ben/d.png,1\n"
                                    "d/ann/a.png,d/ben/broken.png,0\n")
    spy = FullSizeImages(monkeypatch, pairs_csv)
    data = load_dataset(tmp_path / "p.csv", height=7, width=13, channels=channels)
    assert spy.most_alive <= 1
    assert np.array_equal(data.images, _reference(data.paths, 7, 13, channels))
    assert data.pairs.tolist() == [[0, 1, 1], [2, 3, 1]] and len(data.warnings) == 1


def test_size_unknown_loaders_still_use_the_most_common_size(tmp_path):
    make_folder(tmp_path / "d")
    (tmp_path / "p.csv").write_text("d/ann/a.png,d/ben/c.png,0\nd/ann/b.jpg,d/ben/d.png,0\n")
    for source in (tmp_path / "d", tmp_path / "p.csv"):
        data = load_dataset(source)
        assert data.images.shape[1:] == (20, 10, 3)
        assert np.array_equal(data.images, _reference(data.paths, 20, 10, None))


def add_hidden_entries(root):
    """What macOS, zip archives and notebooks leave in a data folder, and a dead link."""
    rng = np.random.default_rng(1)
    for hidden in (root / ".hidden_id", root / "__MACOSX" / "ann", root / "ann" / ".ipynb"):
        hidden.mkdir(parents=True)
        write_image(hidden / "x.png", rng.integers(0, 256, (20, 10), dtype=np.uint8))
    (root / "ann" / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "ann" / "gone.png").symlink_to(root / "nowhere.png")


def test_hidden_entries_are_not_data_and_a_dead_link_is_named(tmp_path):
    make_folder(tmp_path / "d")
    add_hidden_entries(tmp_path / "d")
    data = load_dataset(tmp_path / "d")
    assert data.class_names == ["ann", "ben"] and len(data) == 4
    assert sorted(w.split(":")[0].rsplit("/", 1)[-1] for w in data.warnings) == \
        ["broken.png", "gone.png"]
    assert any("a link to a file that is gone" in w for w in data.warnings)
