"""Data: toy tasks, offline digits, the split (MNIST and CIFAR: test_mnist.py, test_cifar.py)."""
import pytest
import torch

from spline_utils import data


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
