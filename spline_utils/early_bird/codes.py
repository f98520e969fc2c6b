"""Activation codes of a probe set, stored packed, and the Hamming distances between two partitions.

A network's partition of a probe set ``X`` is summarized by its activation codes: for a BatchNorm network the code of
node ``k`` of BN layer ``l`` at input ``x`` is ``1[BN_l(x)_k > 0]`` (the BN output *is* the pre-activation of the
following ReLU, paper notes 1.5); for a BN-free network the codes of :func:`spline_utils.activation_codes`. Codes are
stored packed (``np.packbits``, 1 bit per node and probe point). Two partitions are compared by the normalized
Hamming distance per layer, averaged over layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from spline_utils.checks import check_samples
from spline_utils.engine.slices import grid_points
from spline_utils.reading.dispatch import hidden_layer_sizes
from spline_utils.reading.hooks import eval_with_hooks
from spline_utils.reading.oracle import activation_codes
from spline_utils.reading.operations import batchnorm_layers

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
        """Pack per-layer boolean code arrays, each of shape (n_samples, n_nodes_l).

        Raises
        ------
        ValueError
            No layer, a layer that is not 2-D, layers with different ``n_samples``, or a layer with no entries (0
            probe points or 0 nodes): its Hamming distance would be 0/0, a NaN no early-bird rule can read.
        """
        arrays = [np.asarray(layer, dtype=bool) for layer in layers]
        if not arrays or any(a.ndim != 2 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
            raise ValueError("need at least one layer, each a (n_samples, n_nodes) array with the same n_samples; "
                             f"got shapes {[a.shape for a in arrays]}")
        _check_nonempty([a.shape for a in arrays])
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


def batchnorm_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> list[torch.Tensor]:
    """Outputs of every BatchNorm layer at inputs ``x`` (eval mode, no grad), read with forward hooks.

    Works for any network, sequential or not (e.g. :func:`spline_utils.training.nets.preact_resnet`). The model's training
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
    outputs, _ = batchnorm_pass(model, x, batch_size)
    return [h.reshape(len(h), -1) for h in outputs]


def batchnorm_pass(model: nn.Module, x: torch.Tensor, batch_size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One eval pass over ``x`` in batches: every BN layer's output, shape ``(n, *node_shape)``, and the model's output.

    Parameters
    ----------
    model : torch.nn.Module
        With at least one BatchNorm layer, each run exactly once per forward pass.
    x : torch.Tensor, shape (n_samples, *input_shape)
    batch_size : int
    """
    if any(tensor.is_meta for tensor in [*model.parameters(), *model.buffers()]):
        raise ValueError("the model is on the 'meta' device: its weights have shapes but no values. Materialize it "
                         "first (model.to_empty(device='cpu'), then load its weights).")
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("the model has no BatchNorm layer; use probe_codes, which falls back to "
                         "spline_utils.activation_codes for BN-free networks")
    x = check_samples("x", x)
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


def _check_nonempty(shapes: Sequence[tuple]) -> None:
    """Refuse layers with no codes: (0 probe points or 0 nodes) would give the distance 0/0 = NaN."""
    empty = [index for index, shape in enumerate(shapes) if shape[0] * shape[1] == 0]
    if empty:
        raise ValueError(f"layer(s) {empty} have no codes (shapes {[tuple(shapes[i]) for i in empty]}: 0 probe "
                         "points or 0 nodes), so their Hamming distance would be 0/0 = NaN; use at least one probe "
                         "point, and remove zero-width layers from the network")


def probe_codes(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> PackedCodes:
    """Packed activation codes of the probe set ``x``, one entry per layer.

    BatchNorm networks: ``1[BN output > 0]`` for every BN layer (:func:`batchnorm_outputs`). BN-free networks (any
    model :func:`spline_utils.partition2d` accepts, residual and MaxPool ones included): the codes of
    :func:`spline_utils.activation_codes`, split per hidden layer.
    """
    if batchnorm_layers(model):
        return PackedCodes.from_bool([(h > 0).numpy() for h in batchnorm_outputs(model, x, batch_size)])
    x = check_samples("x", x)
    sizes = hidden_layer_sizes(model, tuple(x.shape[1:]))
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
    _check_nonempty(codes_a.shapes)
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
    _, _, points = grid_points(bounds, resolution)
    inputs = plane(points).to(torch.float32)
    outputs, logits = batchnorm_pass(model, inputs, batch_size)
    fields = [h.reshape(resolution, resolution, *h.shape[1:]) for h in outputs]
    return fields, logits.reshape(resolution, resolution, -1)
