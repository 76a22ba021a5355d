"""IDX reader and writer: exact bytes, every data type, gzip by magic bytes, and every way a file can be broken."""

import gzip
import os
import struct

import numpy as np
import pytest

from crossent.datasets import read_idx, write_idx

# (type code, struct format of one big-endian item, NumPy dtype)
IDX_TYPES = [
    (0x08, "B", np.uint8),
    (0x09, "b", np.int8),
    (0x0B, ">h", np.int16),
    (0x0C, ">i", np.int32),
    (0x0D, ">f", np.float32),
    (0x0E, ">d", np.float64),
]


def idx_bytes(type_code, item_format, shape, values):
    """An IDX file built by hand with struct, independent of write_idx."""
    header = bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
    item = item_format.lstrip(">")
    return header + b"".join(struct.pack(">" + item, v) for v in values)


def sample_values(dtype, count, rng):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(count).astype(dtype) * 1000
    info = np.iinfo(dtype)
    values = rng.integers(info.min, info.max, size=count, endpoint=True, dtype=dtype)
    values[:2] = info.min, info.max
    return values


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("type_code,item_format,dtype", IDX_TYPES, ids=[t[2].__name__ for t in IDX_TYPES])
def test_read_hand_built_file_of_every_type(tmp_path, rng, type_code, item_format, dtype, compress):
    shape = (3, 4, 5)
    values = sample_values(dtype, 60, rng)
    content = idx_bytes(type_code, item_format, shape, values.tolist())
    path = tmp_path / "data"
    path.write_bytes(gzip.compress(content) if compress else content)

    array = read_idx(path)

    assert array.dtype == np.dtype(dtype)
    assert array.dtype.isnative
    assert array.shape == shape
    np.testing.assert_array_equal(array, values.reshape(shape))
    assert array.flags.writeable and array.flags.c_contiguous


@pytest.mark.parametrize("type_code,item_format,dtype", IDX_TYPES, ids=[t[2].__name__ for t in IDX_TYPES])
def test_write_produces_the_exact_bytes_of_the_format(tmp_path, rng, type_code, item_format, dtype):
    values = sample_values(dtype, 6, rng)
    path = tmp_path / "data-idx2"
    write_idx(path, values.reshape(2, 3))
    assert path.read_bytes() == idx_bytes(type_code, item_format, (2, 3), values.tolist())


@pytest.mark.parametrize("shape", [(7,), (2, 3), (2, 1, 3, 2), (0, 5)])
@pytest.mark.parametrize("name", ["array-idx", "array-idx.gz"])
def test_round_trip(tmp_path, rng, shape, name):
    array = rng.standard_normal(shape)
    path = tmp_path / name
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    result = read_idx(path)
    assert result.shape == shape
    np.testing.assert_array_equal(result, array)


def test_mnist_style_magic_numbers(tmp_path):
    write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "labels", np.zeros(2, np.uint8))
    assert struct.unpack(">I", (tmp_path / "images").read_bytes()[:4])[0] == 2051
    assert struct.unpack(">I", (tmp_path / "labels").read_bytes()[:4])[0] == 2049


def test_gzip_is_recognised_by_magic_bytes_not_by_name(tmp_path):
    content = idx_bytes(0x08, "B", (3,), [1, 2, 3])
    (tmp_path / "compressed-but-plain-name").write_bytes(gzip.compress(content))
    (tmp_path / "plain-but-named.gz").write_bytes(content)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed-but-plain-name"), [1, 2, 3])
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-but-named.gz"), [1, 2, 3])
    write_idx(tmp_path / "forced", np.array([4, 5], np.uint8), compress=True)
    assert (tmp_path / "forced").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(str(tmp_path / "forced")), [4, 5])


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_truncated_payload_names_file_and_byte_counts(tmp_path, compress):
    content = idx_bytes(0x0B, ">h", (2, 5), range(10))  # 12 header + 20 payload bytes
    path = tmp_path / "short"
    cut = content[:-3]
    path.write_bytes(gzip.compress(cut) if compress else cut)
    with pytest.raises(ValueError, match="truncated") as error:
        read_idx(path)
    message = str(error.value)
    assert str(path) in message and "32 bytes" in message and "29 bytes" in message


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_trailing_bytes_name_file_and_byte_counts(tmp_path, compress):
    content = idx_bytes(0x08, "B", (4,), [1, 2, 3, 4]) + b"\x00\x01"  # 8 + 4 expected, 2 extra
    path = tmp_path / "long"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match="trailing bytes") as error:
        read_idx(path)
    message = str(error.value)
    assert str(path) in message and "12 bytes" in message and "14 bytes" in message


@pytest.mark.parametrize(
    "content,pattern",
    [
        (b"", "too short for an IDX magic number"),
        (b"\x00\x00\x08", "too short for an IDX magic number"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "must start with two zero bytes"),
        (b"\x00\x07\x08\x01\x00\x00\x00\x01\x05", "must start with two zero bytes"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", "unknown IDX data type code 0x0A"),
        (b"\x00\x00\x10\x01\x00\x00\x00\x01\x05", "unknown IDX data type code 0x10"),
        (b"\x00\x00\x08\x00\x05", "declares 0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "truncated header"),
        # header says 2 x 3 items, 5 present: a dimension that does not match the data
        (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03" + bytes(5), "truncated"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02" + bytes(6), "trailing bytes"),
    ],
    ids=["empty", "short-magic", "first-byte", "second-byte", "code-0x0A", "code-0x10",
         "zero-dims", "short-dims", "dims-too-large", "dims-too-small"],
)
def test_malformed_headers_are_rejected(tmp_path, content, pattern):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=pattern) as error:
        read_idx(path)
    assert str(path) in str(error.value)
    path.write_bytes(gzip.compress(content))
    with pytest.raises(ValueError, match=pattern):
        read_idx(path)


def test_huge_declared_size_fails_without_allocating(tmp_path):
    # 4e9 x 4e9 float64 would be 1.3e20 bytes; the reader must not try to allocate it
    header = b"\x00\x00\x0e\x02" + struct.pack(">II", 4_000_000_000, 4_000_000_000)
    for name, content in [("plain", header + bytes(16)), ("gzip", gzip.compress(header + bytes(16)))]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match="truncated") as error:
            read_idx(path)
        assert "128000000000000000012 bytes" in str(error.value) and "28 bytes" in str(error.value)


def test_damaged_gzip_stream_names_the_file(tmp_path):
    compressed = gzip.compress(idx_bytes(0x08, "B", (1000,), [7] * 1000))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match="damaged or truncated gzip") as error:
        read_idx(path)
    assert str(path) in str(error.value)
    corrupted = bytearray(compressed)
    corrupted[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="damaged or truncated gzip"):
        read_idx(path)


def test_missing_file_and_wrong_path_type(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        read_idx(42)


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    for array in [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.uint16), np.array(["a"])]:
        with pytest.raises(TypeError, match="IDX data type"):
            write_idx(tmp_path / "x", array)
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.float32(1.0))
    with pytest.raises(TypeError, match="compress"):
        write_idx(tmp_path / "x", np.zeros(3, np.uint8), compress="yes")
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_and_deterministic(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    write_idx(path, np.arange(10, dtype=np.uint8))
    first = path.read_bytes()
    write_idx(path, np.arange(10, dtype=np.uint8))
    assert path.read_bytes() == first  # no timestamp in the gzip header
    write_idx(path, np.arange(5, dtype=np.uint8))  # replaces the file
    np.testing.assert_array_equal(read_idx(path), np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()

    with pytest.raises(FileNotFoundError):
        write_idx(tmp_path / "no-such-dir" / "x", np.zeros(2, np.uint8))


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "data-idx"
    write_idx(path, np.arange(4, dtype=np.int32))
    before = path.read_bytes()

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_idx(path, np.arange(8, dtype=np.int32))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
