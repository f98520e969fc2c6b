"""Data: the paper's toy 2-D tasks, offline handwritten digits, and the MNIST and CIFAR loaders.

``mnist`` (:mod:`spline_utils.data.mnist_loader`) and ``cifar`` (:mod:`spline_utils.data.cifar_loader`) are re-exported here, the public
names the chapters use. Nothing downloads anything unless its caller passes ``download=True``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from spline_utils.data.cifar_loader import cifar
from spline_utils.data.mnist_loader import mnist

__all__ = ["x_task", "square_task", "disk_task", "train_test_split", "digits", "mnist", "cifar"]


def x_task(n_samples: int = 2000, low: float = -5.0, high: float = 5.0, seed: int = 0):
    """The X-shaped task (authors' code, Fig 2): points uniform in ``[low, high]^2``.

    Class 1 is the top and bottom wedges (``|y| > |x|``), class 0 the left and right wedges.

    Returns
    -------
    x : torch.Tensor, float32, shape (n_samples, 2)
    y : torch.Tensor, int64, shape (n_samples,)
    """
    return _uniform_task(n_samples, low, high, seed, lambda x: np.abs(x[:, 1]) > np.abs(x[:, 0]))


def square_task(n_samples: int = 2000, half_width: float = 1.0, low: float = -2.0, high: float = 2.0,
                seed: int = 0):
    """The "square" task (Fig 1b): class 1 inside ``max(|x1|, |x2|) < half_width``, class 0 outside.

    Returns
    -------
    x : torch.Tensor, float32, shape (n_samples, 2)
    y : torch.Tensor, int64, shape (n_samples,)
    """
    return _uniform_task(n_samples, low, high, seed, lambda x: np.abs(x).max(axis=1) < half_width)


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
    return _uniform_task(n_samples, low, high, seed,
                         lambda x: np.linalg.norm(x - np.asarray(centre, dtype=float), axis=1) < radius)


def _uniform_task(n_samples: int, low: float, high: float, seed: int, inside):
    """``n_samples`` seeded points uniform in ``[low, high]^2``, labelled 1 where ``inside(points)`` holds."""
    points = np.random.default_rng(seed).uniform(low, high, size=(n_samples, 2))
    return torch.tensor(points, dtype=torch.float32), torch.tensor(inside(points).astype(np.int64))


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
