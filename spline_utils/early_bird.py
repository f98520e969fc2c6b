"""The spline early-bird: activation codes on a probe set, their distances over training, and EB detectors.

A network's partition of a probe set ``X`` is summarized by its activation codes: for a BatchNorm network the code of
node ``k`` of BN layer ``l`` at input ``x`` is ``1[BN_l(x)_k > 0]`` (the BN output *is* the pre-activation of the
following ReLU, paper notes 1.5); for a BN-free network the codes of :func:`spline_utils.activation_codes`. Codes are
stored packed (``np.packbits``, 1 bit per node and probe point). Two epochs' partitions are compared by the
normalized Hamming distance per layer, averaged over layers.

Detectors:

* spline early-bird (You, Balestriero et al., 2022): the first epoch ``e`` at which the distance to each of the
  previous ``lookback`` epochs is below ``threshold`` (authors' defaults 0.16 and 3);
* mask early-bird (You et al., 2020): BatchNorm-scale masks at a global quantile ``p``; the first epoch at which the
  newest mask differs from each of the previous ``fifo - 1`` masks in at most a ``threshold`` fraction of entries.

Epochs are counted from 1 (the model after one epoch of training), as the paper's figures do.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from .chain import activation_codes, to_chain
from .hooks import eval_with_hooks
from .train import Callback, TrainState

BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class PackedCodes:
    """Activation codes of a probe set, one packed bit array per layer.

    Attributes
    ----------
    bits : tuple of ndarray of uint8
        Layer ``l``'s codes, shape (n_samples, n_nodes_l) flattened in C order and packed 8 per byte.
    shapes : tuple of (int, int)
        ``(n_samples, n_nodes_l)`` per layer.
    """

    bits: tuple
    shapes: tuple

    @classmethod
    def from_bool(cls, layers: Sequence[np.ndarray]) -> "PackedCodes":
        """Pack per-layer boolean code arrays, each of shape (n_samples, n_nodes_l)."""
        arrays = [np.asarray(layer, dtype=bool) for layer in layers]
        if not arrays or any(a.ndim != 2 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
            raise ValueError("need at least one layer, each a (n_samples, n_nodes) array with the same n_samples; "
                             f"got shapes {[a.shape for a in arrays]}")
        return cls(tuple(np.packbits(a.ravel()) for a in arrays), tuple(a.shape for a in arrays))

    @property
    def num_layers(self) -> int:
        return len(self.shapes)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.bits)

    def unpack(self, layer: int) -> np.ndarray:
        """Layer ``layer``'s codes as a bool array of shape (n_samples, n_nodes_l)."""
        shape = self.shapes[layer]
        return np.unpackbits(self.bits[layer], count=shape[0] * shape[1]).astype(bool).reshape(shape)


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm1d/2d module of ``model``, in definition order (``model.modules()``)."""
    return [module for module in model.modules() if isinstance(module, BATCHNORM_TYPES)]


def batchnorm_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> list[torch.Tensor]:
    """Outputs of every BatchNorm layer at inputs ``x`` (eval mode, no grad), read with forward hooks.

    Works for any network, sequential or not (e.g. :func:`spline_utils.nets.preact_resnet`). The model's training
    mode is restored afterwards; its weights are not touched.

    Parameters
    ----------
    model : torch.nn.Module
        A network with at least one BatchNorm1d/2d layer, each called once per forward pass.
    x : torch.Tensor, shape (n_samples, *input_shape)
    batch_size : int

    Returns
    -------
    list of torch.Tensor, one per BatchNorm layer in definition order, each of shape (n_samples, n_nodes_l)
        (a BN2d output (n, C, H, W) is flattened to (n, C * H * W)).
    """
    outputs, _ = _batchnorm_pass(model, x, batch_size)
    return [h.reshape(len(h), -1) for h in outputs]


def _batchnorm_pass(model: nn.Module, x: torch.Tensor, batch_size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One eval pass over ``x`` in batches: every BN layer's output, shape (n, *node_shape), and the model's output."""
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("the model has no BatchNorm layer; use probe_codes, which falls back to "
                         "spline_utils.activation_codes for BN-free networks")
    x = _check_inputs(x)
    recorded: dict[int, list[torch.Tensor]] = {index: [] for index in range(len(layers))}
    model_outputs = []
    with eval_with_hooks(model, [(layer, _recorder(recorded[index])) for index, layer in enumerate(layers)]):
        for start in range(0, len(x), batch_size):
            model_outputs.append(model(x[start:start + batch_size]))
            if any(len(recorded[i]) != start // batch_size + 1 for i in recorded):
                raise ValueError("every BatchNorm layer must run exactly once per forward pass; a layer was "
                                 "skipped or reused, so its codes are ambiguous")
    return [torch.cat(recorded[index]) for index in range(len(layers))], torch.cat(model_outputs)


def _recorder(store: list):
    def hook(_module, _inputs, output):
        store.append(output.detach().cpu())
    return hook


def _check_inputs(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() < 2 or len(x) == 0:
        raise ValueError(f"x must have shape (n_samples, *input_shape) with n_samples >= 1; got {tuple(x.shape)}")
    return x


def probe_codes(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> PackedCodes:
    """Packed activation codes of the probe set ``x``, one entry per layer.

    BatchNorm networks: ``1[BN output > 0]`` for every BN layer (:func:`batchnorm_outputs`). BN-free networks
    (nn.Sequential of Linear/Conv/ReLU...): the codes of :func:`spline_utils.activation_codes`, split per hidden
    layer.
    """
    if batchnorm_layers(model):
        return PackedCodes.from_bool([(h > 0).numpy() for h in batchnorm_outputs(model, x, batch_size)])
    x = _check_inputs(x)
    sizes = [int(np.prod(shape)) for shape in to_chain(model).layer_shapes(tuple(x.shape[1:]))[:-1]]
    if not sizes:
        raise ValueError("the model has no hidden layer, so it has no activation codes")
    codes = activation_codes(model, x, dtype=torch.float32).numpy()
    return PackedCodes.from_bool(np.split(codes, np.cumsum(sizes)[:-1], axis=1))


def hamming_distances(codes_a: PackedCodes, codes_b: PackedCodes) -> np.ndarray:
    """Normalized Hamming distance per layer: the fraction of (probe point, node) codes that differ.

    Returns
    -------
    ndarray, shape (n_layers,), values in [0, 1]
    """
    if codes_a.shapes != codes_b.shapes:
        raise ValueError(f"codes come from different probe sets or networks: shapes {codes_a.shapes} vs "
                         f"{codes_b.shapes}")
    return np.array([_POPCOUNT[np.bitwise_xor(a, b)].sum(dtype=np.int64) / (shape[0] * shape[1])
                     for a, b, shape in zip(codes_a.bits, codes_b.bits, codes_a.shapes)])


def network_distance(codes_a: PackedCodes, codes_b: PackedCodes) -> float:
    """The mean over layers of :func:`hamming_distances` (the authors' ``detect_eb`` distance)."""
    return float(hamming_distances(codes_a, codes_b).mean())


def distance_matrix(history: Sequence[PackedCodes], per_layer: bool = False) -> np.ndarray:
    """Epoch-by-epoch distances between the partitions in ``history``.

    Parameters
    ----------
    history : sequence of PackedCodes
        Codes of the same probe set after epochs 1, 2, ..., E.
    per_layer : bool
        Return one matrix per layer instead of their mean.

    Returns
    -------
    ndarray, shape (E, E) (or (E, E, n_layers) with ``per_layer``), symmetric, zero diagonal, not normalized.
    """
    n_epochs = len(history)
    if n_epochs == 0:
        raise ValueError("history is empty: record codes for at least one epoch")
    matrix = np.zeros((n_epochs, n_epochs, history[0].num_layers))
    for i in range(n_epochs):
        for j in range(i + 1, n_epochs):
            matrix[i, j] = matrix[j, i] = hamming_distances(history[i], history[j])
    return matrix if per_layer else matrix.mean(axis=2)


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
    """
    distances = np.asarray(distances, dtype=float)
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must be a square (E, E) matrix, got shape {distances.shape}")
    _check_rule(threshold, lookback)
    for row in range(lookback, len(distances)):
        if distances[row, row - lookback:row].max() < threshold:
            return row + 1
    return None


def _check_rule(threshold: float, lookback: int) -> None:
    if not threshold > 0 or int(lookback) != lookback or lookback < 1:
        raise ValueError(f"need threshold > 0 and an integer lookback >= 1, got {threshold} and {lookback}")


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
    """

    def __init__(self, probes, threshold: float = 0.16, lookback: int = 3, stop: bool = False,
                 batch_size: int = 1024):
        _check_rule(threshold, lookback)
        self.probes = dict(probes) if isinstance(probes, Mapping) else {"probe": probes}
        if not self.probes:
            raise ValueError("give at least one probe set")
        self.probes = {name: _check_inputs(x) for name, x in self.probes.items()}
        self.threshold, self.lookback, self.stop, self.batch_size = threshold, int(lookback), stop, batch_size
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
    if not 0.0 <= prune_ratio < 1.0:
        raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
    layers = batchnorm_layers(model)
    if not layers or any(not layer.affine for layer in layers):
        raise ValueError("the mask early-bird needs BatchNorm layers with learnable scales (affine=True)")
    scales = torch.cat([layer.weight.detach().abs().flatten().cpu() for layer in layers]).numpy()
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
        if fifo < 2 or not 0 <= threshold < 1:
            raise ValueError(f"need fifo >= 2 and threshold in [0, 1), got {fifo} and {threshold}")
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


class BatchNormL1(Callback):
    """Network slimming's sparsity penalty: adds ``strength * sign(gamma)`` to every BN scale's gradient."""

    def __init__(self, strength: float = 1e-4):
        if strength < 0:
            raise ValueError(f"strength must be >= 0, got {strength}")
        self.strength = strength

    def on_backward_end(self, state: TrainState) -> None:
        for layer in batchnorm_layers(state.model):
            if layer.affine and layer.weight.grad is not None:
                layer.weight.grad.add_(self.strength * torch.sign(layer.weight.detach()))


def canvas_fields(model: nn.Module, plane, bounds=(0.0, 1.0, 0.0, 1.0), resolution: int = 150,
                  batch_size: int = 4096) -> tuple[list[torch.Tensor], torch.Tensor]:
    """BatchNorm outputs and logits of ``model`` on a ``resolution x resolution`` grid of a 2-D input slice.

    The grid of an :func:`spline_utils.image_canvas` plane is the authors' probe canvas; contouring a field at 0
    draws a node's spline on the slice (for networks too large for the exact :func:`spline_utils.partition2d`).

    Returns
    -------
    fields : list of torch.Tensor, one per BN layer, shape (resolution, resolution, *node_shape_l)
        Row ``i``, column ``j`` is the grid point ``(xs[j], ys[i])`` of :func:`spline_utils.grid_points`.
    logits : torch.Tensor, shape (resolution, resolution, n_classes)
    """
    from .slices import grid_points

    _, _, points = grid_points(bounds, resolution)
    inputs = plane(points).to(torch.float32)
    outputs, logits = _batchnorm_pass(model, inputs, batch_size)
    fields = [h.reshape(resolution, resolution, *h.shape[1:]) for h in outputs]
    return fields, logits.reshape(resolution, resolution, -1)


@dataclass(frozen=True)
class PaperScaleSettings:
    """The paper's Fig 5 training recipe (GPU, local CIFAR files); :func:`paper_scale_settings` fills it."""

    network: str
    dataset: str
    data_loader: str
    num_classes: int
    epochs: int = 160
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    milestones: tuple = (80, 120)
    threshold: float = 0.16
    lookback: int = 3
    builder: str = ""
    builder_kwargs: tuple = ()

    def build_model(self, seed: int | None = None) -> nn.Module:
        """The network, from :mod:`spline_utils.nets` (``builder`` with ``builder_kwargs``)."""
        from . import nets

        return getattr(nets, self.builder)(num_classes=self.num_classes, seed=seed, **dict(self.builder_kwargs))


PAPER_NETWORKS = {
    # Fig 5 (a) AlexNet / CIFAR-10, (b) VGG-16 / CIFAR-100, (c) PreResNet-101 / CIFAR-100: the closest builders
    # in spline_utils.nets (all BN + ReLU, 3-channel 32x32 inputs).
    "alexnet": ("cifar10", "small_vgg", (("widths", (64, 192, 384)), ("in_channels", 3), ("input_size", 32))),
    "vgg16": ("cifar100", "small_vgg", (("widths", (64, 128, 256, 512, 512)), ("in_channels", 3),
                                         ("input_size", 32))),
    "preresnet101": ("cifar100", "preact_resnet", (("widths", (16, 32, 64)), ("blocks_per_stage", 16),
                                                   ("in_channels", 3))),
}


def paper_scale_settings(network: str) -> PaperScaleSettings:
    """Settings of the paper's Fig 5 run for ``network`` in ``{"alexnet", "vgg16", "preresnet101"}``.

    SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, 160 epochs, lr x0.1 at epochs 80 and 120. Data come from
    local files through ``spline_utils.data.cifar(root, name, train)``.
    """
    if network not in PAPER_NETWORKS:
        raise ValueError(f"network must be one of {sorted(PAPER_NETWORKS)}, got {network!r}")
    dataset, builder, kwargs = PAPER_NETWORKS[network]
    return PaperScaleSettings(network=network, dataset=dataset, data_loader="spline_utils.data.cifar",
                              num_classes=100 if dataset == "cifar100" else 10, builder=builder,
                              builder_kwargs=kwargs)
