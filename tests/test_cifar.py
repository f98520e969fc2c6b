"""CIFAR loader on tiny batches written here in the official (Python 2 pickle) layout, hostile ones included."""
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from spline_utils import data
from spline_utils.data import cifar_loader as cifar_module, fetch
from data_files import local_server, md5, python2_pickle


def write_cifar(root, name: str, per_batch: int = 3):
    """Tiny CIFAR batches in the official layout; returns the expected images (uint8) and labels per split."""
    spec = cifar_module.CIFAR[name]
    folder = root / spec["folder"]
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    expected = {}
    for split in ("train", "test"):
        images, labels = [], []
        for file in spec[split]:
            batch_images = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            batch_labels = rng.integers(0, 100 if name == "cifar100" else 10, size=per_batch).tolist()
            batch = {b"batch_label": b"training batch", b"data": batch_images, spec["labels"]: batch_labels,
                     b"coarse_labels": [0] * per_batch, b"filenames": [b"x.png"] * per_batch}
            (folder / file).write_bytes(python2_pickle(batch))
            images.append(batch_images.reshape(-1, 3, 32, 32))
            labels += batch_labels
        expected[split] = np.concatenate(images), np.array(labels)
    return expected


def rewrite_batch(path, **changes):
    """Load ``path`` (a test-written batch, so plain pickle is safe here), change entries, write it back."""
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    for key, value in changes.items():
        if value is None:
            del batch[key.encode()]
        else:
            batch[key.encode()] = value
    path.write_bytes(python2_pickle(batch))


@pytest.mark.parametrize("name, n_train", [("cifar10", 15), ("cifar100", 3)])
def test_cifar_reads_pickle_batches(tmp_path, name, n_train):
    expected = write_cifar(tmp_path, name)
    for train, split in ((True, "train"), (False, "test")):
        x, y = data.cifar(tmp_path, name, train=train, normalize=False)
        assert x.shape == (n_train if train else 3, 3, 32, 32) and y.dtype == torch.int64
        np.testing.assert_array_equal(np.rint(x.numpy() * 255).astype(np.uint8), expected[split][0])
        np.testing.assert_array_equal(y.numpy(), expected[split][1])
    same, _ = data.cifar(tmp_path / cifar_module.CIFAR[name]["folder"], name, normalize=False)
    assert same.shape[0] == n_train, "root may also be the batch folder itself"
    standardized, _ = data.cifar(tmp_path, name)
    mean, std = cifar_module.CIFAR[name]["mean"], cifar_module.CIFAR[name]["std"]
    torch.testing.assert_close(standardized[:, 1], (same[:, 1] - mean[1]) / std[1])


def test_cifar_missing_files_and_bad_name(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "download", lambda *a, **k: pytest.fail("downloaded without download=True"))
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


class TouchesMarker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch '{self.path}'",)


def test_a_crafted_batch_does_not_run_code(tmp_path):
    write_cifar(tmp_path, "cifar10")
    marker = tmp_path / "exploit-ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": TouchesMarker(marker)}))
    with pytest.raises(ValueError, match="refused to load the global") as error:
        data.cifar(tmp_path, "cifar10")
    assert str(batch) in str(error.value)
    assert not marker.exists(), "loading a batch ran code from it"


@pytest.mark.parametrize("change, message", [
    (dict(labels=[1, 2, 3, 4]), "4 labels for 3 images"),
    (dict(labels=None), r"lacks the key\(s\) \['labels'\]"),
    (dict(data=None), r"lacks the key\(s\) \['data'\]"),
    (dict(data=np.zeros((3, 3000), np.uint8)), "rows of 3072 bytes"),
    (dict(data=np.zeros((3, 3072), np.float32)), "uint8 rows"),
    (dict(labels=[0.5, 1.0, 2.0]), "list of integers"),
    (dict(labels=[0, 1, 10]), r"labels must lie in \[0, 10\)"),
])
def test_an_inconsistent_batch_is_a_value_error_naming_the_file(tmp_path, change, message):
    write_cifar(tmp_path, "cifar10")
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    rewrite_batch(batch, **change)
    with pytest.raises(ValueError, match=message) as error:
        data.cifar(tmp_path, "cifar10", train=False)
    assert str(batch) in str(error.value)


def test_a_corrupt_batch_is_a_value_error_naming_the_file(tmp_path):
    write_cifar(tmp_path, "cifar10")
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(ValueError, match="not a readable data pickle") as error:
        data.cifar(tmp_path, "cifar10", train=False)
    assert str(batch) in str(error.value)


def cifar_archive(tmp_path):
    """The official archive layout (cifar-10-python.tar.gz holding cifar-10-batches-py/), built from tiny batches."""
    source = tmp_path / "source"
    expected = write_cifar(source, "cifar10")
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return served, expected


def test_download_checks_the_published_md5_then_unpacks(tmp_path, monkeypatch):
    served, expected = cifar_archive(tmp_path)
    archive_md5 = md5(served / "cifar-10-python.tar.gz")
    with local_server(served) as (url, requests):
        spec = dict(cifar_module.CIFAR["cifar10"], url=url + "cifar-10-python.tar.gz", md5=archive_md5)
        monkeypatch.setitem(cifar_module.CIFAR, "cifar10", spec)
        x, y = data.cifar(tmp_path / "root", "cifar10", train=False, download=True, normalize=False)
        data.cifar(tmp_path / "root", "cifar10", train=True, download=True)  # files present: nothing fetched
    assert requests == ["/cifar-10-python.tar.gz"]
    np.testing.assert_array_equal(np.rint(x.numpy() * 255).astype(np.uint8), expected["test"][0])
    np.testing.assert_array_equal(y.numpy(), expected["test"][1])


def test_download_with_a_wrong_md5_unpacks_nothing(tmp_path, monkeypatch):
    served, _ = cifar_archive(tmp_path)
    with local_server(served) as (url, _):
        spec = dict(cifar_module.CIFAR["cifar10"], url=url + "cifar-10-python.tar.gz",
                    md5=cifar_module.CIFAR["cifar10"]["md5"])  # the published one, which the tiny archive lacks
        monkeypatch.setitem(cifar_module.CIFAR, "cifar10", spec)
        with pytest.raises(ValueError, match="md5 is [0-9a-f]{32}, expected c58f30108f718f92721af3b95e74349a"):
            data.cifar(tmp_path / "root", "cifar10", download=True)
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [], "nothing kept, nothing unpacked"

