"""The IDX reader and the numpy-only unpickler, on files written here (including corrupt and hostile ones)."""
import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from spline_utils.data import file_formats
from data_files import idx_payload, python2_pickle, write_idx


@pytest.mark.parametrize("type_code, dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                              (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_every_type(tmp_path, type_code, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - (0 if dtype == np.uint8 else 7)).astype(dtype)
    write_idx(tmp_path / "a.idx", array, type_code)
    write_idx(tmp_path / "a.idx.gz", array, type_code, compress=True)
    for name in ("a.idx", "a.idx.gz"):
        read = file_formats.read_idx(tmp_path / name, max_bytes=2**20)
        assert read.shape == (2, 3, 4) and read.dtype == dtype
        np.testing.assert_array_equal(read, array)


def test_idx_bytes_is_the_idx_format():
    array = np.arange(30, dtype=np.uint8).reshape(5, 3, 2)
    assert file_formats.idx_bytes(array) == idx_payload(array)
    with pytest.raises(ValueError, match="uint8"):
        file_formats.idx_bytes(array.astype(np.int16))


def test_read_idx_rejects_bad_magic_and_truncated_data(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="magic"):
        file_formats.read_idx(tmp_path / "bad", max_bytes=2**20)
    write_idx(tmp_path / "short", np.arange(10, dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        file_formats.read_idx(tmp_path / "short", max_bytes=2**20)


def test_read_idx_truncated_header_is_named(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">i", 60000))  # three dims announced, one given
    with pytest.raises(ValueError, match="truncated IDX header") as error:
        file_formats.read_idx(path, max_bytes=2**20)
    assert str(path) in str(error.value)


def test_read_idx_refuses_dims_that_overflow_or_are_negative(tmp_path):
    overflow = tmp_path / "overflow"  # 65536**4 = 2**64: wraps to 0 in int64, which matches an empty payload
    overflow.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">4i", *[65536] * 4))
    with pytest.raises(ValueError, match="header is corrupt") as error:
        file_formats.read_idx(overflow, max_bytes=2**20)
    assert str(2**64) in str(error.value)
    negative = tmp_path / "negative"
    negative.write_bytes(bytes([0, 0, 0x08, 2]) + struct.pack(">2i", -1, -5) + bytes(5))
    with pytest.raises(ValueError, match="negative dimension"):
        file_formats.read_idx(negative, max_bytes=2**20)


def test_read_idx_corrupt_gzip_is_a_value_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage-idx1-ubyte.gz"
    garbage.write_bytes(b"this is not gzip at all")
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(gzip.compress(idx_payload(np.arange(200, dtype=np.uint8)))[:-12])
    for path in (garbage, cut):
        with pytest.raises(ValueError, match="not a valid gzip file") as error:
            file_formats.read_idx(path, max_bytes=2**20)
        assert str(path) in str(error.value)


class RunsShell:
    """Unpickling this calls ``os.system(command)``: the classic pickle exploit."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_unpickler_loads_numpy_arrays_in_python2_protocol():
    batch = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], b"name": b"x" * 300,
             b"floats": np.linspace(0, 1, 5, dtype=np.float32)}
    loaded = file_formats.unpickle_numpy(python2_pickle(batch), "batch", encoding="bytes")
    assert set(loaded) == set(batch) and loaded[b"labels"] == [1, 2, 3] and loaded[b"name"] == b"x" * 300
    np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
    np.testing.assert_array_equal(loaded[b"floats"], batch[b"floats"])
    for protocol in (3, 4):  # files re-saved by Python 3
        again = file_formats.unpickle_numpy(pickle.dumps(batch, protocol=protocol), "batch")
        np.testing.assert_array_equal(again[b"data"], batch[b"data"])


def test_unpickler_refuses_to_run_code(tmp_path):
    marker = tmp_path / "exploit-ran"
    hostile = pickle.dumps({b"data": np.zeros((1, 4), np.uint8), b"labels": RunsShell(f"touch '{marker}'")})
    with pytest.raises(ValueError, match=r"refused to load the global (posix|nt)\.system") as error:
        file_formats.unpickle_numpy(hostile, tmp_path / "data_batch_1")
    assert str(tmp_path / "data_batch_1") in str(error.value)
    assert not marker.exists(), "the unpickler ran the payload"
    pickle.loads(hostile)  # the oracle: a plain unpickler does run it, so the check above can fail
    assert marker.exists()


def test_unpickler_refuses_object_arrays_and_corrupt_pickles():
    objects = np.array([1, "a", None], dtype=object)
    with pytest.raises(ValueError, match="object dtype"):
        file_formats.unpickle_numpy(python2_pickle(objects), "objects")
    whole = python2_pickle({b"data": np.zeros((2, 3), np.uint8)})
    for corrupt in (whole[: len(whole) // 2], b"\x80\x02garbage", b""):
        with pytest.raises(ValueError, match="corrupt-batch is not a readable data pickle"):
            file_formats.unpickle_numpy(corrupt, "corrupt-batch")
