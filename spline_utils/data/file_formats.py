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
IDX_MAX_BYTES = 2**40  # a header announcing more data than this is corrupt, whatever the file size


def gunzip(raw: bytes, name: str | Path) -> bytes:
    """Decompress gzip bytes read from ``name``.

    Raises
    ------
    ValueError
        Not valid gzip, or cut short (the message names ``name``).
    """
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{name} is not a valid gzip file ({error}); fetch it again") from error


def read_bytes(path: str | Path) -> bytes:
    """The bytes of ``path``, gunzipped (:func:`gunzip`) when its name ends in ``.gz``."""
    path = Path(path)
    raw = path.read_bytes()
    return gunzip(raw, path) if path.suffix == ".gz" else raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), plain or gzip-compressed (``.gz``).

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, then each dimension as a big-endian int32; the data follow.

    Returns
    -------
    ndarray of the stored type (native byte order) and shape

    Raises
    ------
    ValueError
        Bad magic number, a header cut short, a negative dimension, dimensions whose product is absurdly large, a
        data length that does not match the header, or a corrupt ``.gz``; the message names the file.
    """
    raw = read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number); expected the MNIST IDX format")
    n_dims, offset = raw[3], 4 + 4 * raw[3]
    if n_dims == 0 or len(raw) < offset:
        raise ValueError(f"{path}: truncated IDX header: it announces {n_dims} dimensions, which need {offset} "
                         f"header bytes, but the file holds {len(raw)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=n_dims, offset=4))
    if min(shape) < 0:
        raise ValueError(f"{path}: the IDX header announces a negative dimension in shape {shape}; the file is corrupt")
    dtype = np.dtype(IDX_TYPES[raw[2]])
    n_bytes = math.prod(shape) * dtype.itemsize  # Python integers: no overflow
    if n_bytes > IDX_MAX_BYTES:
        raise ValueError(f"{path}: the IDX header announces shape {shape}, {n_bytes} bytes of data (more than "
                         f"{IDX_MAX_BYTES}); the header is corrupt")
    if len(raw) - offset != n_bytes:
        raise ValueError(f"{path}: the header announces shape {shape} but the file holds {len(raw) - offset} bytes "
                         f"of data, not {n_bytes}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


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
