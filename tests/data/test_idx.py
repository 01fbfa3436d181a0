import gzip
import struct

import numpy as np
import pytest

from siamese_edge.data.idx import load_idx_dataset, read_idx
from siamese_edge.data.loading import load_dataset
from siamese_edge.errors import DatasetError


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    data = idx_bytes(images)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    assert np.array_equal(read_idx(path), images)


@pytest.mark.parametrize("mutate,message", [
    (lambda b: b[:-3], "truncated or corrupt"),
    (lambda b: b"\x01" + b[1:], "bad magic"),
    (lambda b: b[:2] + b"\x42" + b[3:], "unknown IDX data type"),
    (lambda b: b"\x1f\x8b garbage", "corrupt gzip"),
])
def test_bad_files(tmp_path, mutate, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(mutate(idx_bytes(np.zeros((2, 3, 3)))))
    with pytest.raises(DatasetError, match=message):
        read_idx(path)


def test_dataset_checks_label_count(tmp_path):
    (tmp_path / "i").write_bytes(idx_bytes(np.zeros((3, 2, 2))))
    (tmp_path / "l").write_bytes(idx_bytes(np.array([1, 2])))
    with pytest.raises(DatasetError, match="2 labels for 3 images"):
        load_idx_dataset(tmp_path / "i", tmp_path / "l")
    (tmp_path / "l").write_bytes(idx_bytes(np.array([7, 3, 7])))
    data = load_idx_dataset(tmp_path / "i", tmp_path / "l")
    assert data.images.shape == (3, 2, 2, 1) and data.class_names == ["3", "7"]
    assert data.labels.tolist() == [1, 0, 1]


def test_real_fashion_mnist(fashion_mnist_dir):
    data = load_idx_dataset(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz",
                            fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert data.images.shape == (10000, 28, 28, 1) and len(data.class_names) == 10


def test_truncated_gzip_and_headerless_files(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4, 3, 3))))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "zero_dims").write_bytes(b"\0\0\x08\x00")
    with pytest.raises(DatasetError, match="truncated IDX header"):
        read_idx(tmp_path / "zero_dims")
    (tmp_path / "short_header").write_bytes(b"\0\0\x08\x03\0\0\0\x02")
    with pytest.raises(DatasetError, match="truncated IDX header"):
        read_idx(tmp_path / "short_header")
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "missing")


def test_multibyte_types_are_big_endian(tmp_path):
    values = np.array([1, -2, 70000], ">i4")
    raw = struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", 3) + values.tobytes()
    (tmp_path / "ints").write_bytes(raw)
    assert read_idx(tmp_path / "ints").tolist() == [1, -2, 70000]


def test_load_dataset_reads_idx_and_resizes(tmp_path):
    from siamese_edge.data.loading import load_dataset

    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    (tmp_path / "i.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "l").write_bytes(idx_bytes(np.array([0, 1, 2, 0, 1, 2])))
    data = load_dataset(tmp_path / "i.gz", tmp_path / "l")
    assert data.images.shape == (6, 28, 28, 1) and data.labels.dtype == np.int64
    small = load_dataset(tmp_path / "i.gz", tmp_path / "l", height=14, width=14, channels=3,
                         classes=[0, "2"])
    assert small.images.shape == (4, 14, 14, 3) and small.class_names[0] == "0"
    assert sorted(set(small.labels.tolist())) == [0, 2]


def test_numeric_class_names_are_never_read_as_positions(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    (tmp_path / "i").write_bytes(idx_bytes(images))
    (tmp_path / "l").write_bytes(idx_bytes(np.array([1, 2, 3, 1, 2, 3])))  # no label 0
    data = load_dataset(tmp_path / "i", tmp_path / "l")
    picked = data.select_classes(["1", 3])
    assert sorted(data.class_names[c] for c in set(picked.labels.tolist())) == ["1", "3"]
    with pytest.raises(DatasetError, match="no class '0'"):
        data.select_classes(["0", "1"])  # position 0 would have been class "1"
    with pytest.raises(DatasetError, match="same class"):
        data.select_classes(["1", 1])


def test_damaged_deflate_stream_is_a_dataset_error(tmp_path):
    # a valid gzip header whose deflate stream is garbled: zlib.error, not OSError
    packed = bytearray(gzip.compress(idx_bytes(np.arange(4 * 28 * 28).reshape(4, 28, 28))))
    for k in range(20, 60):
        packed[k] ^= 0xFF
    (tmp_path / "bad.gz").write_bytes(bytes(packed))
    with pytest.raises(DatasetError, match="corrupt gzip"):
        read_idx(tmp_path / "bad.gz")


def test_huge_header_dimensions_do_not_wrap_around(tmp_path):
    # 2**31 * 2**31 * 4 bytes wraps int64 to 0, which matched a data-less file's length
    (tmp_path / "huge").write_bytes(b"\0\0\x08\x03" + struct.pack(">III", 2**31, 2**31, 4))
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(tmp_path / "huge")


def float_labels(values) -> bytes:
    values = np.asarray(values, ">f4")
    return struct.pack(">BBBB", 0, 0, 0x0D, 1) + struct.pack(">I", len(values)) + \
        values.tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1.5])
def test_float_labels_must_be_whole_numbers(tmp_path, bad):
    (tmp_path / "i").write_bytes(idx_bytes(np.zeros((4, 2, 2))))
    (tmp_path / "l").write_bytes(float_labels([1.0, bad, 2.0, 2.0]))
    with pytest.raises(DatasetError, match="whole numbers; 1 of 4"):
        load_idx_dataset(tmp_path / "i", tmp_path / "l")


def test_distinct_float_labels_are_never_merged(tmp_path):
    (tmp_path / "i").write_bytes(idx_bytes(np.zeros((4, 2, 2))))
    (tmp_path / "l").write_bytes(float_labels([1.2, 1.7, 1.2, 1.7]))  # both were class "1"
    with pytest.raises(DatasetError, match="whole numbers"):
        load_idx_dataset(tmp_path / "i", tmp_path / "l")
    (tmp_path / "l").write_bytes(float_labels([1.0, -3.0, 1.0, -3.0]))
    assert load_idx_dataset(tmp_path / "i", tmp_path / "l").class_names == ["-3", "1"]


def _gzip_of(head: bytes, zeros: int) -> bytes:
    """``head`` then ``zeros`` zero bytes, gzip-compressed a MiB at a time (a bomb of a
    few hundred KiB, built without holding its inflated size)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    parts = [packer.compress(head)]
    block = bytes(1 << 20)
    for start in range(0, zeros, len(block)):
        parts.append(packer.compress(block[: zeros - start]))
    parts.append(packer.flush())
    return b"".join(parts)


def _peak_traced(call) -> int:
    """Bytes allocated at the peak of ``call`` (tracemalloc sees Python's and numpy's
    allocations, deterministically, unlike RSS)."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


BOMB_SIZE = 64 << 20


@pytest.mark.parametrize("head,message", [
    (b"\x01\x02\x08\x03", "bad magic"),
    # a valid header for 2x3x3 bytes, followed by 64 MiB the header does not declare
    (b"\0\0\x08\x03" + struct.pack(">III", 2, 3, 3) + bytes(18), "more than the 34 bytes"),
], ids=["bad-magic", "valid-header"])
def test_gzip_bomb_is_refused_without_inflating_it(tmp_path, head, message):
    # it was inflated whole (3 GiB of zeros: 6.4 GB of RSS) before the magic was looked at
    (tmp_path / "bomb.gz").write_bytes(_gzip_of(head, BOMB_SIZE))

    def read():
        with pytest.raises(DatasetError, match=message):
            read_idx(tmp_path / "bomb.gz")

    assert _peak_traced(read) < BOMB_SIZE // 16


def test_header_declaring_more_than_a_gzip_can_hold_is_refused_before_allocating(tmp_path):
    # 2**40 bytes cannot come out of a few dozen bytes of deflate (1032:1 at most): refused
    # before an array of that size is set aside, not after a MemoryError
    head = b"\0\0\x08\x03" + struct.pack(">III", 2**20, 2**10, 2**10)
    (tmp_path / "liar.gz").write_bytes(gzip.compress(head + bytes(10)))

    def read():
        with pytest.raises(DatasetError, match="at most .* uncompressed.*truncated or corrupt"):
            read_idx(tmp_path / "liar.gz")

    assert _peak_traced(read) < 1 << 20


@pytest.mark.parametrize("compress", [False, True])
def test_data_longer_or_shorter_than_declared_is_refused(tmp_path, compress):
    data = idx_bytes(np.zeros((2, 3, 3)))
    for name, body in (("long", data + b"\0"), ("short", data[:-1])):
        path = tmp_path / name
        path.write_bytes(gzip.compress(body) if compress else body)
        with pytest.raises(DatasetError, match="34 bytes.*truncated or corrupt|says 34 "):
            read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_data_is_held_once(tmp_path, compress):
    # the file's bytes and then a converted copy of them were both held: twice the data
    images = np.random.default_rng(0).integers(0, 256, (32, 1024, 1024), dtype=np.uint8)
    path = tmp_path / "x.idx"
    raw = idx_bytes(images)
    path.write_bytes(gzip.compress(raw, 1) if compress else raw)
    del raw
    out = []
    peak = _peak_traced(lambda: out.append(read_idx(path)))
    assert np.array_equal(out[0], images)
    assert peak < images.nbytes * 1.25


def test_big_endian_types_come_back_native_from_gzip(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 1e30]], ">f8")
    raw = struct.pack(">BBBB", 0, 0, 0x0E, 2) + struct.pack(">II", 2, 2) + values.tobytes()
    (tmp_path / "f.gz").write_bytes(gzip.compress(raw))
    out = read_idx(tmp_path / "f.gz")
    assert out.dtype == np.dtype("=f8") and out.flags.writeable
    assert out.tolist() == values.tolist()


def test_a_gzip_file_arriving_byte_by_byte_through_a_pipe_is_read(tmp_path):
    # the gzip check peeked at two bytes, and a pipe may hand over only one at first:
    # the file was taken for plain IDX with a bad magic
    import gzip
    import os
    import threading
    import time

    labels = np.arange(10, dtype=np.uint8)
    raw = gzip.compress(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + labels.tobytes())
    fifo = tmp_path / "labels.gz"
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb", buffering=0) as pipe:
            pipe.write(raw[:1])
            time.sleep(0.3)
            pipe.write(raw[1:])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        np.testing.assert_array_equal(read_idx(fifo), labels)
    finally:
        writer.join(timeout=10)
