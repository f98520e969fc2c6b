"""Early-bird detectors: the epoch at which the partition (or the pruning mask) stops changing.

* spline early-bird (You, Balestriero et al., 2022): the first epoch ``e`` at which the distance
  (:mod:`spline_utils.early_bird.codes`) to each of the previous ``lookback`` epochs is below ``threshold`` (authors' defaults
  0.16 and 3);
* mask early-bird (You et al., 2020): BatchNorm-scale masks at a global quantile ``p``; the first epoch at which the
  newest mask differs from each of the previous ``fifo - 1`` masks in at most a ``threshold`` fraction of entries.

Epochs are counted from 1 (the model after one epoch of training), as the paper's figures do.
"""
from __future__ import annotations

from collections import deque
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from spline_utils.checks import check_finite_number, check_fraction, check_integer, check_samples
from spline_utils.early_bird.codes import PackedCodes, distance_matrix, network_distance, probe_codes
from spline_utils.reading.operations import batchnorm_layers
from spline_utils.training.train import Callback, TrainState

__all__ = ["spline_early_bird_epoch", "SplineEarlyBird", "batchnorm_mask", "MaskEarlyBird"]


def spline_early_bird_epoch(distances: np.ndarray, threshold: float = 0.16, lookback: int = 3) -> int | None:
    """The spline early-bird epoch of a distance matrix (paper notes 1.5, authors' ``detect_eb``).

    Row ``i`` of ``distances`` is epoch ``i + 1``. The EB epoch is the first ``e > lookback`` with
    ``max(d(e, e - 1), ..., d(e, e - lookback)) < threshold``.

    Parameters
    ----------
    distances : ndarray, shape (E, E)
        Raw (not min-max normalized) distances, e.g. from :func:`distance_matrix`.
    threshold : float
    lookback : int

    Returns
    -------
    int or None
        The 1-based EB epoch, or ``None`` when the rule never fires.

    Raises
    ------
    ValueError
        ``distances`` is not square, or an entry the rule reads is NaN: a NaN distance is neither near nor far, so
        instead of reading it as "not yet" (which would shift the epoch, or never fire) the rule names the epochs
        it came from.
    """
    distances = np.asarray(distances, dtype=float)
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must be a square (E, E) matrix, got shape {distances.shape}")
    threshold, lookback = _check_rule(threshold, lookback)
    for row in range(lookback, len(distances)):
        recent = distances[row, row - lookback:row]
        _check_distances(recent, row)
        if recent.max() < threshold:
            return row + 1
    return None


def _check_rule(threshold: float, lookback: int) -> tuple[float, int]:
    """The rule's ``threshold`` (a number > 0) and ``lookback`` (a whole number >= 1), checked."""
    return (check_finite_number("threshold", threshold, minimum=0, strict_minimum=True),
            check_integer("lookback", lookback, minimum=1))


def _check_distances(recent: np.ndarray, row: int) -> None:
    """Refuse NaN distances of epoch ``row + 1`` to the epochs before it (1-based in the message)."""
    if np.isnan(recent).any():
        epochs = [row + 1 - len(recent) + int(i) for i in np.flatnonzero(np.isnan(recent))]
        raise ValueError(f"the distance of epoch {row + 1} to epoch(s) {epochs} is NaN; a NaN distance is neither "
                         "near nor far, so the rule cannot tell whether the partition settled. It comes from codes "
                         "with no entries (a layer with 0 nodes, or no probe points; PackedCodes refuses both) or "
                         "from a NaN put in by hand: compute the distances from codes of a non-empty probe set")


class SplineEarlyBird(Callback):
    """Record probe-set codes after every epoch and detect the spline early-bird online.

    Parameters
    ----------
    probes : torch.Tensor or mapping of str -> torch.Tensor
        One probe set, or several (e.g. ``{"train": ..., "test": ..., "random": ...}``); the first one drives the
        detector, codes of all are kept for :meth:`matrix`.
    threshold, lookback : float, int
        The detection rule (authors' defaults 0.16 and 3).
    stop : bool
        Stop training at the EB epoch.
    batch_size : int

    Attributes
    ----------
    history : dict of str -> list of PackedCodes
        Codes after epochs 1, 2, ...
    epoch : int or None
        The detected EB epoch (1-based), ``None`` until the rule fires.

    Raises
    ------
    ValueError
        After an epoch, when the codes of a layer have no entries (a layer with 0 nodes): their distance would be
        0/0, which the rule cannot read (see :meth:`spline_utils.early_bird.codes.PackedCodes.from_bool`).
    """

    def __init__(self, probes, threshold: float = 0.16, lookback: int = 3, stop: bool = False,
                 batch_size: int = 1024):
        threshold, lookback = _check_rule(threshold, lookback)
        self.probes = dict(probes) if isinstance(probes, Mapping) else {"probe": probes}
        if not self.probes:
            raise ValueError("give at least one probe set")
        self.probes = {name: check_samples(f"probes[{name!r}]", x) for name, x in self.probes.items()}
        self.threshold, self.lookback, self.stop = threshold, lookback, stop
        self.batch_size = check_integer("batch_size", batch_size, minimum=1)
        self.history: dict[str, list[PackedCodes]] = {name: [] for name in self.probes}
        self.epoch: int | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        for name, x in self.probes.items():
            self.history[name].append(probe_codes(state.model, x, self.batch_size))
        if self.epoch is None and self._fires(next(iter(self.history.values()))):
            self.epoch = state.epoch
            state.stop = state.stop or self.stop

    def _fires(self, history: list[PackedCodes]) -> bool:
        if len(history) <= self.lookback:
            return False
        newest = history[-1]
        return max(network_distance(newest, old) for old in history[-1 - self.lookback:-1]) < self.threshold

    def matrix(self, probe: str | None = None, per_layer: bool = False) -> np.ndarray:
        """:func:`distance_matrix` of one probe set's history (the detector's by default)."""
        return distance_matrix(self.history[probe or next(iter(self.history))], per_layer)


def batchnorm_mask(model: nn.Module, prune_ratio: float) -> np.ndarray:
    """The network-slimming channel mask: ``|gamma| >`` the global ``prune_ratio`` quantile of all BN scales.

    As You et al. (2020): sort all ``|gamma|``, threshold at the entry of index ``int(n * prune_ratio)``.

    Returns
    -------
    ndarray of bool, shape (total BN channels,): True for kept channels, BN layers in definition order.
    """
    check_fraction("prune_ratio", prune_ratio, "BatchNorm channels to remove")
    layers = batchnorm_layers(model)
    if not layers or any(not layer.affine for layer in layers):
        raise ValueError("the mask early-bird needs BatchNorm layers with learnable scales (affine=True)")
    scales = torch.cat([layer.weight.detach().abs().flatten().cpu() for layer in layers]).numpy()
    if scales.size == 0:
        raise ValueError("the BatchNorm layers have 0 channels in all, so the mask is empty and the mask distance "
                         "0/0; the mask early-bird needs at least one BatchNorm channel")
    cut = np.sort(scales)[int(len(scales) * prune_ratio)]
    return scales > cut


class MaskEarlyBird(Callback):
    """The original Early-Bird ticket detector (You et al., ICLR 2020) on BatchNorm-scale masks.

    After each epoch: mask = :func:`batchnorm_mask` at ``prune_ratio``; keep the last ``fifo`` masks; EB at the
    first epoch where the newest mask differs from every other kept mask in at most ``threshold`` of its entries.

    Attributes
    ----------
    distances : list of float
        Per epoch, the largest mask distance in the FIFO (NaN until the FIFO is full).
    epoch : int or None
        The detected EB epoch (1-based).
    """

    def __init__(self, prune_ratio: float = 0.5, fifo: int = 5, threshold: float = 0.1, stop: bool = False):
        prune_ratio = check_fraction("prune_ratio", prune_ratio, "BatchNorm channels to remove")
        fifo = check_integer("fifo", fifo, minimum=2)
        threshold = check_fraction("threshold", threshold, "mask entries that may differ")
        self.prune_ratio, self.threshold, self.stop = prune_ratio, threshold, stop
        self.masks: deque = deque(maxlen=fifo)
        self.distances: list[float] = []
        self.epoch: int | None = None

    def on_epoch_end(self, state: TrainState) -> None:
        self.masks.append(batchnorm_mask(state.model, self.prune_ratio))
        if len(self.masks) < self.masks.maxlen:
            self.distances.append(float("nan"))
            return
        newest = self.masks[-1]
        distance = max(float(np.mean(newest != old)) for old in list(self.masks)[:-1])
        self.distances.append(distance)
        if self.epoch is None and distance <= self.threshold:
            self.epoch = state.epoch
            state.stop = state.stop or self.stop
