"""Data: toy tasks, offline digits, and the local MNIST / CIFAR readers on tiny files written here."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from spline_utils import data


def write_idx(path, array: np.ndarray, type_code: int = 0x08, compress: bool = False) -> None:
    """Write ``array`` in the IDX format (big-endian), independently of the reader under test."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    payload = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + \
        array.astype(big_endian).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def tiny_mnist(root, train: bool = True, compress: bool = False, n: int = 5):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if train else "t10k"
    suffix = ".gz" if compress else ""
    write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
    write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_idx_files(tmp_path, compress, train):
    images, labels = tiny_mnist(tmp_path, train, compress)
    x, y = data.mnist(tmp_path, train=train, normalize=False)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x[:, 0].numpy() * 255.0, images.astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), labels)
    standardized, _ = data.mnist(tmp_path, train=train)
    torch.testing.assert_close(standardized, (x - 0.1307) / 0.3081)


@pytest.mark.parametrize("type_code, dtype", [(0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                              (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_every_type(tmp_path, type_code, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    write_idx(tmp_path / "a.idx", array, type_code)
    read = data.read_idx(tmp_path / "a.idx")
    assert read.shape == (2, 3, 4)
    np.testing.assert_array_equal(read, array)


def test_read_idx_rejects_bad_magic_and_truncated_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.arange(10, dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(tmp_path / "short")


def test_mnist_missing_files_name_the_folder_and_the_files_and_do_not_download(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_download", lambda *a: pytest.fail("downloaded without download=True"))
    tiny_mnist(tmp_path, train=True)
    with pytest.raises(FileNotFoundError) as error:
        data.mnist(tmp_path, train=False)
    assert "t10k-images-idx3-ubyte" in str(error.value) and str(tmp_path) in str(error.value)


def test_mnist_download_fetches_only_the_missing_files(tmp_path, monkeypatch):
    source = tmp_path / "mirror"
    source.mkdir()
    tiny_mnist(source, train=True, compress=True)
    fetched = []

    def fake_download(url, target):
        fetched.append(url)
        target.write_bytes((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(data, "_download", fake_download)
    root = tmp_path / "mnist"
    x, _ = data.mnist(root, train=True, download=True)
    assert fetched == [data.MNIST_URL + "train-images-idx3-ubyte.gz", data.MNIST_URL + "train-labels-idx1-ubyte.gz"]
    data.mnist(root, train=True, download=True)
    assert len(fetched) == 2, "files already present must not be fetched again"


def write_cifar(root, name: str, per_batch: int = 3):
    """Tiny CIFAR batches in the official pickle layout; returns the expected images (uint8) and labels per split."""
    spec = data.CIFAR[name]
    folder = root / spec["folder"]
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    expected = {}
    for split in ("train", "test"):
        images, labels = [], []
        for file in spec[split]:
            batch_images = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            batch_labels = rng.integers(0, 100 if name == "cifar100" else 10, size=per_batch).tolist()
            with open(folder / file, "wb") as handle:
                pickle.dump({b"data": batch_images, spec["labels"]: batch_labels, b"coarse_labels": [0] * per_batch},
                            handle)
            images.append(batch_images.reshape(-1, 3, 32, 32))
            labels += batch_labels
        expected[split] = np.concatenate(images), np.array(labels)
    return expected


@pytest.mark.parametrize("name, n_train", [("cifar10", 15), ("cifar100", 3)])
def test_cifar_reads_pickle_batches(tmp_path, name, n_train):
    expected = write_cifar(tmp_path, name)
    for train, split in ((True, "train"), (False, "test")):
        x, y = data.cifar(tmp_path, name, train=train, normalize=False)
        assert x.shape == (n_train if train else 3, 3, 32, 32) and y.dtype == torch.int64
        np.testing.assert_array_equal(np.rint(x.numpy() * 255).astype(np.uint8), expected[split][0])
        np.testing.assert_array_equal(y.numpy(), expected[split][1])
    same, _ = data.cifar(tmp_path / data.CIFAR[name]["folder"], name, normalize=False)
    assert same.shape[0] == n_train, "root may also be the batch folder itself"
    standardized, _ = data.cifar(tmp_path, name)
    mean, std = torch.tensor(data.CIFAR[name]["mean"]), torch.tensor(data.CIFAR[name]["std"])
    torch.testing.assert_close(standardized[:, 1], (same[:, 1] - mean[1]) / std[1])


def test_cifar_missing_files_and_bad_name(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_download", lambda *a: pytest.fail("downloaded without download=True"))
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError) as error:
        data.cifar(tmp_path, "cifar10")
    assert "data_batch_3" in str(error.value) and "cifar-10-batches-py" in str(error.value)
    data.cifar(tmp_path, "cifar10", train=False)  # the test split is complete
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        data.cifar(tmp_path, "cifar100")
    with pytest.raises(ValueError, match="cifar10"):
        data.cifar(tmp_path, "svhn")


def test_toy_tasks_follow_their_definitions():
    x, y = data.x_task(500, seed=3)
    assert x.shape == (500, 2) and x.abs().max() <= 5
    torch.testing.assert_close(y, (x[:, 1].abs() > x[:, 0].abs()).long())
    x, y = data.square_task(500, half_width=0.7, seed=3)
    torch.testing.assert_close(y, (x.abs().max(dim=1).values < 0.7).long())
    assert torch.equal(data.x_task(50, seed=1)[0], data.x_task(50, seed=1)[0])
    x, y = data.disk_task(2000, centre=(0.5, -1.0), radius=1.2, seed=3)
    assert x.shape == (2000, 2) and x.abs().max() <= 3
    torch.testing.assert_close(y, ((x[:, 0] - 0.5) ** 2 + (x[:, 1] + 1.0) ** 2 < 1.2**2).long())
    assert abs(y.float().mean().item() - torch.pi * 1.2**2 / 36) < 0.03  # the disk's share of the square
    with pytest.raises(ValueError, match="radius"):
        data.disk_task(10, radius=0.0)


def test_train_test_split_is_a_seeded_partition():
    x = torch.arange(100.0)[:, None]
    x_train, y_train, x_test, y_test = data.train_test_split(x, torch.arange(100), 0.2, seed=4)
    assert len(x_test) == 20 and len(x_train) == 80
    assert sorted(torch.cat([y_train, y_test]).tolist()) == list(range(100))
    assert torch.equal(y_test, data.train_test_split(x, torch.arange(100), 0.2, seed=4)[3])
    with pytest.raises(ValueError):
        data.train_test_split(x, torch.arange(100), 1.0)


def test_offline_digits():
    images, labels = data.digits()
    assert images.shape == (1797, 1, 28, 28) and set(labels.tolist()) == set(range(10))
    assert abs(float(images.mean())) < 1e-5 and abs(float(images.std()) - 1) < 1e-4
