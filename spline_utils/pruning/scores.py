"""Choosing which nodes to prune: one score per node or channel, then keep masks.

Node pruning is ``scores -> keep masks -> surgery``, so any criterion plugs in: :func:`node_scores` (one score per
node or channel of every hidden layer, lowest pruned first: ``"magnitude"``, ``"slimming"``, ``"random"`` or a
callable), :func:`select_nodes` (layerwise or global keep masks from a ratio or from counts, never emptying a layer),
then :func:`spline_utils.pruning.surgery.prune_nodes` (re-exported here with the rest of the surgery) builds the smaller
network. Hidden layers are all Linear/Conv2d modules but the last (the classifier); see
:func:`spline_utils.reading.operations.hidden_layer_links`. :class:`BatchNormL1` is network slimming's training-time sparsity
penalty on the BatchNorm scales that :func:`slimming_scores` reads.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from spline_utils.checks import check_finite_number, check_integer
from spline_utils.reading.operations import batchnorm_layers, hidden_layer_links
from spline_utils.pruning.surgery import SCOPES, check_ratio_and_scope, prune_nodes, prune_weights, rewind, weight_sparsity
from spline_utils.training.train import Callback, TrainState

__all__ = ["hidden_layers", "layer_widths", "count_parameters", "magnitude_scores", "slimming_scores",
           "random_scores", "CRITERIA", "node_scores", "select_nodes", "BatchNormL1", "prune_nodes", "prune_weights",
           "rewind", "weight_sparsity", "SCOPES"]


def hidden_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The prunable layers: every Linear/Conv2d except the last one, as ``(name, module)``."""
    return [(link.name, link.layer) for link in hidden_layer_links(model)]


def layer_widths(model: nn.Module) -> list[int]:
    """Number of nodes (Linear) or channels (Conv2d) of each hidden layer."""
    return [link.width for link in hidden_layer_links(model)]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (with :mod:`torch.nn.utils.prune` masks: counted once, as the dense tensor)."""
    return sum(parameter.numel() for parameter in model.parameters())


def magnitude_scores(model: nn.Module) -> list[torch.Tensor]:
    """L2 norm of each node's incoming weights: Linear rows, Conv2d filters. List of (width_l,) tensors."""
    return [module.weight.detach().flatten(1).norm(dim=1) for _, module in hidden_layers(model)]


def slimming_scores(model: nn.Module) -> list[torch.Tensor]:
    """``|gamma|`` of the BatchNorm that follows each hidden layer (network slimming). List of (width_l,) tensors."""
    scores = []
    for link in hidden_layer_links(model):
        if link.batchnorm is None or not link.batchnorm.affine:
            raise ValueError(f"network slimming needs an affine BatchNorm after every hidden layer; {link.name} has "
                             "none. Use criterion='magnitude' for networks without BatchNorm.")
        scores.append(link.batchnorm.weight.detach().abs())
    return scores


def random_scores(model: nn.Module, seed: int = 0) -> list[torch.Tensor]:
    """Uniform random scores (seeded): the baseline every criterion must beat."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(width, generator=generator) for width in layer_widths(model)]


CRITERIA: dict[str, Callable] = {"magnitude": magnitude_scores, "slimming": slimming_scores, "random": random_scores}


def node_scores(model: nn.Module, criterion: str | Callable = "magnitude", **options) -> list[torch.Tensor]:
    """One score per node/channel of every hidden layer; the lowest are pruned first.

    Parameters
    ----------
    model : nn.Sequential
    criterion : {"magnitude", "slimming", "random"} or callable
        A callable is called as ``criterion(model, **options)`` and must return one 1-D tensor per hidden layer.
    **options
        Passed to the criterion (e.g. ``seed`` for ``"random"``).

    Returns
    -------
    list of torch.Tensor, tensor ``l`` of shape (width_l,)
    """
    if isinstance(criterion, str):
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; use one of {sorted(CRITERIA)} or a callable")
        criterion = CRITERIA[criterion]
    scores = [torch.as_tensor(score).detach().float().flatten() for score in criterion(model, **options)]
    widths = layer_widths(model)
    if [len(score) for score in scores] != widths:
        raise ValueError(f"the criterion returned scores of lengths {[len(s) for s in scores]}; the hidden layers "
                         f"have widths {widths}")
    return scores


def select_nodes(scores: Sequence[torch.Tensor], ratio: float | None = None, scope: str = "layerwise",
                 keep: int | Sequence[int] | None = None) -> list[torch.Tensor]:
    """Keep masks that remove the lowest-scoring nodes: a ``ratio`` of them, or all but ``keep``.

    Parameters
    ----------
    scores : sequence of torch.Tensor, tensor ``l`` of shape (width_l,)
        NaN scores are refused (a NaN node would be kept or pruned by accident).
    ratio : float in [0, 1), optional
        Fraction of nodes to remove: ``round(ratio * width_l)`` per layer (``"layerwise"``) or
        ``round(ratio * total)`` over all layers with one threshold (``"global"``; scores must then be comparable
        across layers, as BatchNorm scales are).
    scope : {"layerwise", "global"}
    keep : int or sequence of int, optional
        Instead of ``ratio``: how many nodes to keep, one count per layer (``"layerwise"``) or one total
        (``"global"``). Give exactly one of ``ratio`` and ``keep``.

    Returns
    -------
    list of torch.Tensor of bool, mask ``l`` of shape (width_l,)
        True for the nodes to keep. Every layer keeps at least its highest-scoring node; ties are broken by
        position (earlier nodes are pruned first), so the result is deterministic.
    """
    scores = [torch.as_tensor(score).detach().flatten().double() for score in scores]
    if not scores or any(len(score) == 0 for score in scores):
        raise ValueError("need at least one hidden layer and at least one score per layer")
    if any(torch.isnan(score).any() for score in scores):
        raise ValueError("the scores contain NaN; fix the criterion (e.g. non-finite weights) before selecting nodes")
    widths = [len(score) for score in scores]
    counts = _keep_counts(widths, ratio, scope, keep)
    if scope == "layerwise":
        return [_keep_highest(score, count) for score, count in zip(scores, counts)]
    masks = [mask.clone() for mask in _keep_highest(torch.cat(scores), counts[0]).split(widths)]
    for mask, score in zip(masks, scores):
        if not mask.any():
            mask[int(torch.argmax(score))] = True
    return masks


def _keep_counts(widths: list[int], ratio, scope: str, keep) -> list[int]:
    """Nodes to keep per layer (``"layerwise"``) or in total (``"global"``, one entry)."""
    if (ratio is None) == (keep is None):
        raise ValueError("give exactly one of ratio (fraction of nodes to remove) and keep (nodes to keep)")
    if ratio is not None:
        check_ratio_and_scope(ratio, scope, "nodes")
        totals = widths if scope == "layerwise" else [sum(widths)]
        return [total - round(ratio * total) for total in totals]
    check_ratio_and_scope(0.0, scope, "nodes")
    totals = widths if scope == "layerwise" else [sum(widths)]
    wanted = "one count per hidden layer" if scope == "layerwise" else "one total count"
    if isinstance(keep, (str, bytes)) or not np.iterable(keep):
        counts = [keep]  # one number (a Python, numpy or 0-d torch integer)
    elif isinstance(keep, (np.ndarray, torch.Tensor)) and keep.ndim == 0:
        counts = [keep]
    else:
        counts = list(keep)
    if len(counts) != len(totals):
        raise ValueError(f"keep needs {wanted} ({len(totals)}) for widths {widths}, got {len(counts)}: {keep!r}")
    return [check_integer(f"keep[{index}]" if len(counts) > 1 else "keep", count, minimum=1, maximum=total)
            for index, (count, total) in enumerate(zip(counts, totals))]


def _keep_highest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    order = torch.sort(scores, stable=True).indices
    keep = torch.zeros(len(scores), dtype=torch.bool)
    keep[order[len(scores) - max(n_keep, 1):]] = True
    return keep


class BatchNormL1(Callback):
    """Network slimming's sparsity penalty: adds ``strength * sign(gamma)`` to every BN scale's gradient."""

    def __init__(self, strength: float = 1e-4):
        self.strength = check_finite_number("strength", strength, minimum=0)

    def on_backward_end(self, state: TrainState) -> None:
        for layer in batchnorm_layers(state.model):
            if layer.affine and layer.weight.grad is not None:
                layer.weight.grad.add_(self.strength * torch.sign(layer.weight.detach()))
