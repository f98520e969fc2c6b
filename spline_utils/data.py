"""Data: the paper's toy 2-D tasks, offline handwritten digits, and local MNIST and CIFAR readers.

Nothing here downloads anything unless explicitly asked to.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def x_task(n_samples: int = 2000, low: float = -5.0, high: float = 5.0, seed: int = 0):
    """The X-shaped task (authors' code, Fig 2): points uniform in ``[low, high]^2``.

    Class 1 is the top and bottom wedges (``|y| > |x|``), class 0 the left and right wedges.

    Returns
    -------
    x : torch.Tensor, float32, shape (n_samples, 2)
    y : torch.Tensor, int64, shape (n_samples,)
    """
    generator = np.random.default_rng(seed)
    x = generator.uniform(low, high, size=(n_samples, 2))
    y = (np.abs(x[:, 1]) > np.abs(x[:, 0])).astype(np.int64)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def square_task(n_samples: int = 2000, half_width: float = 1.0, low: float = -2.0, high: float = 2.0,
                seed: int = 0):
    """The "square" task (Fig 1b): class 1 inside ``max(|x1|, |x2|) < half_width``, class 0 outside.

    Returns
    -------
    x : torch.Tensor, float32, shape (n_samples, 2)
    y : torch.Tensor, int64, shape (n_samples,)
    """
    generator = np.random.default_rng(seed)
    x = generator.uniform(low, high, size=(n_samples, 2))
    y = (np.abs(x).max(axis=1) < half_width).astype(np.int64)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def disk_task(n_samples: int = 2000, centre=(-0.4, -0.5), radius: float = 1.4, low: float = -3.0,
              high: float = 3.0, seed: int = 0):
    """A disk task (our Fig 6 network): class 1 inside the disk ``|x - centre| < radius``, class 0 outside.

    Points are uniform in ``[low, high]^2``. The default disk is off-centre so that a trained network's
    first-layer lines do not all pass through the origin.

    Returns
    -------
    x : torch.Tensor, float32, shape (n_samples, 2)
    y : torch.Tensor, int64, shape (n_samples,)
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    generator = np.random.default_rng(seed)
    x = generator.uniform(low, high, size=(n_samples, 2))
    y = (np.linalg.norm(x - np.asarray(centre, dtype=float), axis=1) < radius).astype(np.int64)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def train_test_split(x: torch.Tensor, y: torch.Tensor, test_fraction: float = 0.2, seed: int = 0):
    """Seeded random split into ``(x_train, y_train, x_test, y_test)``."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def digits(size: int = 28, normalize: bool = True):
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 images), upsampled: the offline MNIST stand-in.

    Parameters
    ----------
    size : int
        Output side length (bilinear upsampling of the 8x8 images), 28 to match MNIST.
    normalize : bool
        Standardize with the data set's mean and standard deviation (as MNIST pipelines do).

    Returns
    -------
    images : torch.Tensor, float32, shape (1797, 1, size, size)
    labels : torch.Tensor, int64, shape (1797,)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    if normalize:
        images = (images - images.mean()) / images.std()
    return images, torch.tensor(bunch.target, dtype=torch.int64)


MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), plain or gzip-compressed (``.gz``).

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, then each dimension as a big-endian int32; the data follow.

    Returns
    -------
    ndarray of the stored type and shape
    """
    import gzip
    from pathlib import Path

    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number); expected the MNIST IDX format")
    n_dims = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=n_dims, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    offset = 4 + 4 * n_dims
    if len(raw) - offset != int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{path}: the header announces shape {shape} but the file holds {len(raw) - offset} bytes "
                         "of data; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def mnist(root, train: bool = True, download: bool = False, normalize: bool = True):
    """MNIST from the standard IDX files in a local folder.

    Parameters
    ----------
    root : str or path
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
        ``t10k-labels-idx1-ubyte`` (each may also be ``.gz``).
    train : bool
        The 60,000 training images, or the 10,000 test images.
    download : bool
        Fetch the missing files from a public mirror first (needs a network; never done unless asked).
    normalize : bool
        Standardize with the usual MNIST constants (mean 0.1307, std 0.3081); else values in [0, 1].

    Returns
    -------
    images : torch.Tensor, float32, shape (n, 1, 28, 28)
    labels : torch.Tensor, int64, shape (n,)

    Raises
    ------
    FileNotFoundError
        A file is missing (the message names the folder and the expected files).
    """
    from pathlib import Path

    root = Path(root)
    names = MNIST_FILES[bool(train)]
    if download:
        root.mkdir(parents=True, exist_ok=True)
        for name in names:
            if _find(root, name) is None:
                _download(MNIST_URL + name + ".gz", root / (name + ".gz"))
    paths = [_find(root, name) for name in names]
    if None in paths:
        raise FileNotFoundError(f"MNIST files missing in {root.resolve()}: expected {names[0]}[.gz] and "
                                f"{names[1]}[.gz]; copy them there or call mnist(root, download=True)")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"MNIST images of shape {images.shape} do not match labels of shape {labels.shape}")
    images = torch.tensor(images, dtype=torch.float32)[:, None] / 255.0
    if normalize:
        images = (images - MNIST_MEAN) / MNIST_STD
    return images, torch.tensor(labels, dtype=torch.int64)


CIFAR = {"cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)],
                         test=["test_batch"], labels=b"labels",
                         url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
         "cifar100": dict(folder="cifar-100-python", train=["train"], test=["test"], labels=b"fine_labels",
                          url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                          mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))}


def cifar(root, name: str = "cifar10", train: bool = True, download: bool = False, normalize: bool = True):
    """CIFAR-10 or CIFAR-100 (fine labels) from the standard python-pickle batches in a local folder.

    Parameters
    ----------
    root : str or path
        The folder that holds ``cifar-10-batches-py/`` (``data_batch_1`` ... ``data_batch_5``, ``test_batch``) or
        ``cifar-100-python/`` (``train``, ``test``), or that folder itself.
    name : {"cifar10", "cifar100"}
    train : bool
    download : bool
        Fetch and unpack the official archive first when files are missing (needs a network; never unless asked).
    normalize : bool
        Standardize each colour channel with the data set's usual mean and std; else values in [0, 1].

    Returns
    -------
    images : torch.Tensor, float32, shape (n, 3, 32, 32)
    labels : torch.Tensor, int64, shape (n,)

    Raises
    ------
    FileNotFoundError
        A batch file is missing (the message names the folder and the expected files).
    """
    import pickle
    import tarfile
    from pathlib import Path

    if name not in CIFAR:
        raise ValueError(f"name must be one of {sorted(CIFAR)}, got {name!r}")
    spec, root = CIFAR[name], Path(root)
    folder = root if root.name == spec["folder"] else root / spec["folder"]
    files = spec["train" if train else "test"]
    if download and not all((folder / file).is_file() for file in files):
        archive = folder.parent / Path(spec["url"]).name
        archive.parent.mkdir(parents=True, exist_ok=True)
        _download(spec["url"], archive)
        with tarfile.open(archive) as tar:
            tar.extractall(folder.parent, filter="data")
    missing = [file for file in files if not (folder / file).is_file()]
    if missing:
        raise FileNotFoundError(f"{name} files missing in {folder.resolve()}: expected {files}, missing {missing}; "
                                f"unpack {Path(spec['url']).name} into {root.resolve()} or pass download=True")
    images, labels = [], []
    for file in files:
        with open(folder / file, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[spec["labels"]], dtype=np.int64))
    images = torch.tensor(np.concatenate(images), dtype=torch.float32) / 255.0
    if normalize:
        images = (images - torch.tensor(spec["mean"]).view(1, 3, 1, 1)) / torch.tensor(spec["std"]).view(1, 3, 1, 1)
    return images, torch.tensor(np.concatenate(labels))


def _find(root, name: str):
    """``root/name`` or ``root/name.gz``, whichever exists, else None."""
    for candidate in (root / name, root / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _download(url: str, target) -> None:
    """Fetch ``url`` to ``target`` (network code: runs only when a caller passes ``download=True``)."""
    import shutil
    import urllib.request

    partial = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as handle:
        shutil.copyfileobj(response, handle)
    partial.replace(target)
