"""Chapter 3's MNIST data: a seeded training subset, its shrunk copy, the 6-9 canvas and the four probe sets (Fig 13).

The canvas is the authors' 2-D slice of image space, ``x(a, b) = a x_6 + b x_9`` through the first 6 and the first 9
of the test set (:func:`spline_utils.image_canvas`); :mod:`.canvas_boundary` finds where a network's 6-vs-9 boundary
crosses it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spline_utils import data
from spline_utils.engine.slices import Plane, grid_points, image_canvas
from spline_utils.experiments.eb_training import Split

SIX, NINE = 6, 9


def mnist_subset(n_train: int, n_test: int | None = None, seed: int = 0, download: bool = True) -> Split:
    """A seeded random ``n_train`` of MNIST's 60,000 training images and the first ``n_test`` test images.

    Parameters
    ----------
    n_train : int
        Training images, drawn without replacement by a permutation seeded with ``seed``.
    n_test : int, optional
        The first ``n_test`` test images; all 10,000 if None.
    download : bool
        Passed to :func:`spline_utils.data.mnist` (the data are cached after the first fetch).

    Returns
    -------
    Split
        Standardized images of shape (n, 1, 28, 28) and int64 labels.
    """
    train_x, train_y = data.mnist(train=True, download=download)
    test_x, test_y = data.mnist(train=False, download=download)
    if not 1 <= n_train <= len(train_x):
        raise ValueError(f"n_train must be between 1 and {len(train_x)}, got {n_train}")
    chosen = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))[:n_train]
    return Split(train_x[chosen], train_y[chosen], test_x[:n_test], test_y[:n_test])


def shrink(split: Split, size: int) -> Split:
    """The same images at ``size`` x ``size``: each output pixel the mean of the input pixels under its area."""
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")

    def resized(images):
        return F.interpolate(images, size=(size, size), mode="area")

    return Split(resized(split.train_x), split.train_y, resized(split.test_x), split.test_y)


def canvas_plane(images: torch.Tensor, labels: torch.Tensor, first: int = SIX, second: int = NINE) -> Plane:
    """The canvas ``a x_first + b x_second`` through the first image of class ``first`` and of class ``second``."""
    index = []
    for label in (first, second):
        found = (labels == label).nonzero()
        if not len(found):
            raise ValueError(f"no image of class {label} among the {len(labels)} given")
        index.append(int(found[0, 0]))
    return image_canvas(images[index[0]], images[index[1]])


def probe_sets(split: Split, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """The four probe sets of Fig 13, ``size`` points each at most.

    ``"train"``: a seeded sample of the training images; ``"test"``: the first test images; ``"random"``:
    standard-normal inputs (the data are standardized); ``"canvas"``: a ``round(sqrt(size))``-square grid of the
    6-9 canvas over [0, 1]^2. All on the device of ``split.train_x``.
    """
    generator = torch.Generator().manual_seed(seed)  # on the CPU, so the sets do not depend on the device
    side = int(round(size ** 0.5))
    _, _, canvas_points = grid_points((0.0, 1.0, 0.0, 1.0), side)
    device = split.train_x.device
    return {
        "train": split.train_x[torch.randperm(len(split.train_x), generator=generator)[:size].to(device)],
        "test": split.test_x[:size],
        "random": torch.randn((size, *split.input_shape), generator=generator).to(device),
        "canvas": canvas_plane(split.test_x.cpu(), split.test_y.cpu())(canvas_points).float().to(device),
    }
