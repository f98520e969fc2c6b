"""Readers for the files data sets come in: IDX (MNIST) and numpy pickles, both strict about what they accept.

Every reader raises ``ValueError`` naming the file when the file is not what it claims to be; none of them can run
code from the file (the pickle reader resolves only numpy's array reconstruction).
"""
from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from pathlib import Path

import numpy as np

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # what a corrupt or cut gzip stream raises while it is read


def gunzip(raw: bytes, name: str | Path, *, max_bytes: int) -> bytes:
    """Decompress gzip bytes read from ``name``, never inflating more than ``max_bytes``.

    Decompression stops one byte past ``max_bytes``, so a small file that would inflate to gigabytes (a gzip bomb)
    costs ``max_bytes`` of memory, not the gigabytes.

    Raises
    ------
    ValueError
        Not valid gzip, cut short, or inflating to more than ``max_bytes`` (the message names ``name``).
    """
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(max_bytes + 1)
    except GZIP_ERRORS as error:
        raise ValueError(f"{name} is not a valid gzip file ({error}); fetch it again") from error
    if len(data) > max_bytes:
        raise ValueError(f"{name} inflates to more than {max_bytes} bytes, more than this data set's file holds; it "
                         "is corrupt or not the expected file (a gzip bomb?)")
    return data


def read_bytes(path: str | Path, *, max_bytes: int) -> bytes:
    """The bytes of ``path``, gunzipped (:func:`gunzip`) when its name ends in ``.gz``; at most ``max_bytes``.

    The file's size is compared with ``max_bytes`` before anything is read, so a huge (or sparse) file is refused
    without allocating its size.

    Raises
    ------
    ValueError
        The file (or what it inflates to) is larger than ``max_bytes``, or it is a corrupt ``.gz``.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path} holds {size} bytes, more than the {max_bytes} this data set's file can hold; the "
                         "file is corrupt or not the expected one")
    raw = path.read_bytes()
    return gunzip(raw, path, max_bytes=max_bytes) if path.suffix == ".gz" else raw


def read_idx(path: str | Path, *, max_bytes: int) -> np.ndarray:
    """Read one IDX file (the MNIST format), plain or gzip-compressed (``.gz``), holding at most ``max_bytes`` of data.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, then each dimension as a big-endian int32; the data follow. The header
    is read first and the size it announces is compared with ``max_bytes`` (the largest file of the data set the
    caller reads) before any data is read or decompressed, so neither a header announcing terabytes nor a gzip bomb
    can exhaust memory.

    Returns
    -------
    ndarray of the stored type (native byte order) and shape

    Raises
    ------
    ValueError
        Bad magic number, a header cut short, a negative dimension, more data announced than ``max_bytes``, a data
        length that does not match the header, or a corrupt ``.gz``; the message names the file.
    """
    path = Path(path)
    compressed = path.suffix == ".gz"
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as stream:  # gzip.open reads nothing yet
        try:
            shape, dtype = _idx_header(stream, path)
            n_bytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
            if n_bytes > max_bytes:
                raise ValueError(f"{path}: the IDX header announces shape {shape}, {n_bytes} bytes of data (more "
                                 f"than {max_bytes}, the most this data set's file holds); the header is corrupt")
            data = stream.read(n_bytes + 1)
        except GZIP_ERRORS as error:
            if not compressed:
                raise
            raise ValueError(f"{path} is not a valid gzip file ({error}); fetch it again") from error
    if len(data) > n_bytes:
        raise ValueError(f"{path}: the header announces shape {shape}, {n_bytes} bytes of data, but the file holds "
                         "more; the file is corrupt")
    if len(data) < n_bytes:
        raise ValueError(f"{path}: the header announces shape {shape} but the file holds {len(data)} bytes of data, "
                         f"not {n_bytes}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_header(stream, path: Path) -> tuple[tuple, np.dtype]:
    """The shape and dtype of the IDX file open as ``stream``, which is left at the start of the data."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number); expected the MNIST IDX format")
    n_dims, offset = magic[3], 4 + 4 * magic[3]
    dims = stream.read(4 * n_dims)
    if n_dims == 0 or len(dims) < 4 * n_dims:
        raise ValueError(f"{path}: truncated IDX header: it announces {n_dims} dimensions, which need {offset} "
                         f"header bytes, but the file holds {4 + len(dims)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">i4"))
    if min(shape) < 0:
        raise ValueError(f"{path}: the IDX header announces a negative dimension in shape {shape}; the file is corrupt")
    return shape, np.dtype(IDX_TYPES[magic[2]])


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as the bytes of an IDX file: the inverse of :func:`read_idx` for uint8 data."""
    if array.dtype != np.uint8:
        raise ValueError(f"idx_bytes writes uint8 arrays only, got {array.dtype}")
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array).tobytes()


def _reconstruct():
    """numpy's array-reconstruction function, wherever this numpy version keeps it."""
    try:
        from numpy._core.multiarray import _reconstruct as reconstruct  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct as reconstruct
    return reconstruct


def _plain_dtype(*args):
    """``numpy.dtype(*args)``, refusing object dtypes (their arrays would unpickle arbitrary objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"refused an object dtype ({dtype}): only plain numeric arrays are allowed")
    return dtype


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array reconstruction (``_reconstruct``, ``ndarray``, ``dtype``).

    Containers (tuple, list, dict), strings, bytes and numbers need no lookup and load as usual; any other global
    a pickle names (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError`` before it is called.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load the global {module}.{name}: this file may only hold "
                                         "numpy arrays, lists, dicts, strings and numbers")
        if name == "_reconstruct":
            return _reconstruct()
        return np.ndarray if name == "ndarray" else _plain_dtype


def unpickle_numpy(raw: bytes, name: str | Path, encoding: str = "bytes"):
    """Unpickle ``raw`` (read from ``name``) with :class:`NumpyOnlyUnpickler`.

    Parameters
    ----------
    raw : bytes
        The pickle (already decompressed).
    name : str or path
        Where ``raw`` came from, for error messages.
    encoding : str
        How Python 2 ``str`` objects load: ``"bytes"`` (CIFAR's dict keys) or ``"latin1"``.

    Raises
    ------
    ValueError
        ``raw`` is not a valid pickle, is cut short, or names anything but numpy's array reconstruction.
    """
    try:
        return NumpyOnlyUnpickler(io.BytesIO(raw), encoding=encoding).load()
    except Exception as error:  # noqa: BLE001 - nothing in the file can run, so any failure means a corrupt file
        raise ValueError(f"{name} is not a readable data pickle ({type(error).__name__}: {error}); "
                         "fetch the file again") from error
