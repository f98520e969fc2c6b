"""Chapter 3's training runs with every early-bird detector attached, and what their distance matrices say.

:func:`train_with_detectors` is :func:`.eb_training.train_dense` with the spline detector recording the four probe
sets of Fig 13 and one mask detector (ratio 0.5); :class:`DistanceMatrices` computes each run's epoch-by-epoch
matrix once per probe set; :func:`summarize` reads the EB epoch and the distances the chapter quotes off a matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch.nn as nn

from spline_utils import early_bird
from spline_utils.training.recipes import TrainingRecipe
from spline_utils.experiments.eb_training import DenseRun, Split, train_dense
from spline_utils.experiments.mnist_canvas import probe_sets

MASK_RATIO = 0.5  # the mask detector's pruning ratio (You et al., 2020)


def train_with_detectors(model: nn.Module, split: Split, recipe: TrainingRecipe, probe_size: int,
                         seed: int = 0) -> DenseRun:
    """The recipe's SGD run of ``model`` (in place) with the spline EB on all four probe sets and the mask EB.

    The spline detector is driven by the training-image probe set (the first of :func:`.mnist_canvas.probe_sets`,
    ``probe_size`` points each); the mask detector prunes :data:`MASK_RATIO` of the BatchNorm channels.
    """
    return train_dense(model, split, recipe, ratios=(MASK_RATIO,), probe=probe_sets(split, probe_size, seed),
                       seed=seed)


class DistanceMatrices:
    """``run.spline_detector.matrix(probe)``, computed once per run and probe set (it compares all pairs of epochs).

    Call it as ``matrices(run, probe="train")``; the result is shared, do not modify it.
    """

    def __init__(self):
        self._cache: dict = {}

    def __call__(self, run: DenseRun, probe: str = "train") -> np.ndarray:
        key = (id(run), probe)
        if key not in self._cache:
            self._cache[key] = (run, run.spline_detector.matrix(probe))  # the run is kept so its id is not reused
        return self._cache[key][1]


@dataclass
class Summary:
    """What one distance matrix says (epochs are 1-based).

    Attributes
    ----------
    epoch : int or None
        The spline EB epoch (:func:`spline_utils.early_bird.spline_early_bird_epoch`).
    fraction : float or None
        ``epoch / E``.
    to_final : float or None
        ``d(epoch, E)``: how far the EB partition still is from the final one.
    largest : float
        The largest distance between two epochs.
    mean : float
        The mean distance between two different epochs (0 for a one-epoch matrix).
    """

    epoch: int | None
    fraction: float | None
    to_final: float | None
    largest: float
    mean: float


def summarize(matrix: np.ndarray, threshold: float, lookback: int) -> Summary:
    """The EB epoch of ``matrix`` (shape (E, E), raw distances) under the rule, and the distances around it."""
    matrix = np.asarray(matrix, dtype=float)
    epoch = early_bird.spline_early_bird_epoch(matrix, threshold, lookback)
    off_diagonal = matrix[~np.eye(len(matrix), dtype=bool)]
    return Summary(epoch=epoch, fraction=None if epoch is None else epoch / len(matrix),
                   to_final=None if epoch is None else float(matrix[epoch - 1, -1]), largest=float(matrix.max()),
                   mean=float(off_diagonal.mean()) if len(off_diagonal) else 0.0)


def lookback_statistic(matrix: np.ndarray, lookback: int) -> np.ndarray:
    """The rule's statistic ``max_{1 <= j <= lookback} d(e, e - j)`` for every epoch ``e`` (NaN for ``e <= lookback``).

    The spline EB epoch is the first epoch where it is below the threshold.
    """
    matrix = np.asarray(matrix, dtype=float)
    statistic = np.full(len(matrix), np.nan)
    for row in range(lookback, len(matrix)):
        statistic[row] = matrix[row, row - lookback:row].max()
    return statistic
