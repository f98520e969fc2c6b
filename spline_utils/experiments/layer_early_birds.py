"""The network's spline early-bird epoch against each layer's own (the chapter's exercise on layers).

The network distance is the mean of the layer distances, ``d = mean_l d_l``. Where every layer passes the rule at the
same epoch ``e`` (``max_j d_l(e, e - j) < tau`` for every ``l``), their mean passes too, so the network fires at or
before the first such epoch (:func:`joint_epoch`). It need not fire by the latest *per-layer* EB epoch: a layer's EB
epoch is the first epoch it passes, and it may stop passing afterwards; :func:`later_than_every_layer` builds
matrices where the network fires after every layer has fired once.
"""
from __future__ import annotations

import numpy as np

from spline_utils.early_bird import spline_early_bird_epoch


def layer_epochs(per_layer: np.ndarray, threshold: float, lookback: int) -> list[int | None]:
    """Each layer's own EB epoch; ``per_layer`` has shape (E, E, L) (``matrix(per_layer=True)``)."""
    per_layer = _check_per_layer(per_layer)
    return [spline_early_bird_epoch(per_layer[:, :, layer], threshold, lookback)
            for layer in range(per_layer.shape[2])]


def joint_epoch(per_layer: np.ndarray, threshold: float, lookback: int) -> int | None:
    """The first epoch at which every layer passes the rule at once (None if there is none).

    The network's EB epoch (the rule on ``per_layer.mean(axis=2)``) is at most this epoch.
    """
    per_layer = _check_per_layer(per_layer)
    worst_layer = per_layer.max(axis=2)  # every layer below tau for every look-back epoch <=> the largest is
    return spline_early_bird_epoch(worst_layer, threshold, lookback)


def later_than_every_layer(threshold: float = 0.16, lookback: int = 3) -> np.ndarray:
    """Two layers' distance matrices, shape (E, E, 2), whose mean fires after both layers have fired.

    Layer 0 settles early and then moves again; layer 1 settles only while layer 0 moves: each passes the rule
    at some epoch, never both at once until the end, and their mean stays above ``threshold`` until then.
    """
    epochs = 3 * lookback + 3
    low, high = threshold / 4, 3 * threshold  # mean of one low and one high layer: above the threshold
    steps = np.full((epochs, 2), high)  # steps[e, l]: how far layer l moves from epoch e to e + 1 (0-based e)
    steps[:lookback + 1, 0] = low                       # layer 0: still from the start, fires at epoch lookback + 1
    steps[lookback + 1:2 * lookback + 2, 1] = low       # then layer 1 stills while layer 0 moves
    steps[2 * lookback + 2:, :] = low                   # both still at the end: the network fires there
    positions = np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)])
    # a layer's distance between two epochs: the distance its codes travelled, capped at 1 (a Hamming fraction)
    return np.minimum(np.abs(positions[:, None, :] - positions[None, :, :]), 1.0)


def _check_per_layer(per_layer) -> np.ndarray:
    per_layer = np.asarray(per_layer, dtype=float)
    if per_layer.ndim != 3 or per_layer.shape[0] != per_layer.shape[1] or per_layer.shape[2] < 1:
        raise ValueError(f"per_layer must have shape (E, E, n_layers), got {per_layer.shape}")
    return per_layer
