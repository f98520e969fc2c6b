"""CIFAR-10 / CIFAR-100 from the official python-pickle batches, read safely and checked; download only if asked.

The batches are unpickled by :class:`~spline_utils.data.file_formats.NumpyOnlyUnpickler` (numpy arrays, lists, dicts,
bytes and numbers, nothing else), so a crafted batch file cannot run code. ``download=True`` checks the archive
against the MD5 published on the CIFAR page before extracting it with ``tarfile``'s ``"data"`` filter.
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch

from spline_utils.data import fetch
from spline_utils.checks import check_string_choice
from spline_utils.data.file_formats import read_bytes, unpickle_numpy

CIFAR = {"cifar10": dict(folder="cifar-10-batches-py", train=[f"data_batch_{i}" for i in range(1, 6)],
                         test=["test_batch"], labels=b"labels", n_classes=10,
                         images_per_file=dict(train=10000, test=10000),
                         url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         md5="c58f30108f718f92721af3b95e74349a",
                         mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
         "cifar100": dict(folder="cifar-100-python", train=["train"], test=["test"], labels=b"fine_labels",
                          n_classes=100, images_per_file=dict(train=50000, test=10000),
                          url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                          md5="eb9058c3a382ffc7106e4002c42a8d85",
                          mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))}
ROW_SIZE = 3 * 32 * 32
# A batch file holds its images' rows plus, per image, a label and a file name (about 40 bytes pickled; 256 allowed)
# and a short header: a file larger than this bound is not a CIFAR batch, and is refused before it is read.
PICKLE_BYTES_PER_IMAGE, PICKLE_HEADER_BYTES = ROW_SIZE + 256, 2**20
ARCHIVE_MAX_BYTES = 2**28  # the official archives are 163 MB (CIFAR-10) and 161 MB (CIFAR-100)


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
        When files are missing, fetch the official archive into ``root`` (needs a network; never unless asked),
        check its published MD5, and unpack it. An archive already in ``root`` is checked and reused.
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
    ValueError
        A batch file is not a readable pickle, lacks the data or labels key, has rows of other than 3072 bytes, a
        number of labels other than its number of images, or labels outside the classes; or the archive's MD5 is not
        the published one. The message names the file.
    """
    check_string_choice("name", name, tuple(CIFAR))
    spec, root = CIFAR[name], Path(root)
    folder = root if root.name == spec["folder"] else root / spec["folder"]
    files = spec["train" if train else "test"]
    if download and not all((folder / file).is_file() for file in files):
        _fetch_archive(spec, folder.parent)
    missing = [file for file in files if not (folder / file).is_file()]
    if missing:
        raise FileNotFoundError(f"{name} files missing in {fetch.shown_path(folder)}: expected {files}, missing "
                                f"{missing}; unpack {Path(spec['url']).name} into {fetch.shown_path(root)} or pass "
                                "download=True")
    n_images = spec["images_per_file"]["train" if train else "test"]
    batches = [_read_batch(folder / file, spec, n_images) for file in files]
    images = torch.from_numpy(np.concatenate([b[0] for b in batches])).to(torch.float32) / 255.0
    if normalize:
        images = (images - torch.tensor(spec["mean"]).view(1, 3, 1, 1)) / torch.tensor(spec["std"]).view(1, 3, 1, 1)
    return images, torch.from_numpy(np.concatenate([b[1] for b in batches]))


def _read_batch(path: Path, spec: dict, max_images: int):
    """One batch file of at most ``max_images`` images -> uint8 images (n, 3, 32, 32) and int64 labels (n,).

    Every check in :func:`cifar` is made; the file's size is compared with what ``max_images`` images can take
    before it is read, so a huge (or sparse) file is refused without allocating its size.
    """
    max_bytes = max_images * PICKLE_BYTES_PER_IMAGE + PICKLE_HEADER_BYTES
    batch = unpickle_numpy(read_bytes(path, max_bytes=max_bytes), path, encoding="bytes")
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a dict batch, got {type(batch).__name__}")
    missing = [key.decode() for key in (b"data", spec["labels"]) if key not in batch]
    if missing:
        raise ValueError(f"{path}: the batch lacks the key(s) {missing} (it has {sorted(k for k in batch)})")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_SIZE:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{path}: data must be uint8 rows of {ROW_SIZE} bytes (3 x 32 x 32), got "
                         f"{getattr(data, 'dtype', type(data).__name__)} of shape {shape}")
    if len(data) > max_images:
        raise ValueError(f"{path}: {len(data)} images, more than the {max_images} of a standard batch file")
    labels = np.asarray(batch[spec["labels"]])
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels must be a list of integers, got {labels.dtype} of shape {labels.shape}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(labels)} labels for {len(data)} images; the batch is corrupt")
    if len(labels) and (labels.min() < 0 or labels.max() >= spec["n_classes"]):
        raise ValueError(f"{path}: labels must lie in [0, {spec['n_classes']}), got [{labels.min()}, {labels.max()}]")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _fetch_archive(spec: dict, target: Path) -> None:
    """Download the official archive into ``target`` (unless a good copy is there), check its MD5, unpack it."""
    archive = target / Path(spec["url"]).name
    target.mkdir(parents=True, exist_ok=True)
    if archive.is_file():
        fetch.check_digest(archive, "md5", spec["md5"], archive)
    else:
        fetch.download(spec["url"], archive, "md5", spec["md5"], max_bytes=ARCHIVE_MAX_BYTES, timeout=60.0)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
