"""Exact merging of duplicate splines: prune a node whose spline another kept node draws, without changing the function.

If ``h_k' = c h_k`` with ``c > 0`` then ``relu(h_k') = c relu(h_k)``, so adding ``c W_{l+1}[:, k']`` to
``W_{l+1}[:, k]`` before removing ``k'`` leaves the network function unchanged (:func:`merge_and_prune`).
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from spline_utils.checks import check_finite_number
from spline_utils.reading.operations import HiddenLayer, hidden_layer_links
from spline_utils.pruning.spline_criterion import hyperplanes, parameter_distances
from spline_utils.pruning.surgery import prune_nodes


def merge_and_prune(model: nn.Module, keep_masks: Sequence[torch.Tensor], tolerance: float = 1e-6
                    ) -> nn.Sequential:
    """Prune with :func:`spline_utils.pruning.prune_nodes`, first folding removed duplicates into kept nodes.

    Each removed node ``k'`` is matched with the kept node ``k`` of its layer whose unit hyperplane has the same
    orientation and is closest (``||theta_k - theta_k'||_1``). If that distance is at most ``tolerance``, then
    ``h_k' = c h_k`` with ``c = ||w_k'|| / ||w_k||`` (BatchNorm folded) and ``c W_{l+1}[:, k']`` is added to
    ``W_{l+1}[:, k]`` (every position of the channel after a Flatten; the whole kernel slice for a Conv2d). For an
    exact duplicate the pruned network computes the same function; a larger ``tolerance`` merges near-duplicates
    approximately.

    Parameters
    ----------
    model : nn.Sequential
        Unchanged; BatchNorm layers are used with their running statistics (eval mode).
    keep_masks : sequence of bool tensors, mask ``l`` of shape (width_l,)
    tolerance : float >= 0

    Returns
    -------
    nn.Sequential
        The pruned network (as from ``prune_nodes``) with merged outgoing weights.
    """
    tolerance = check_finite_number("tolerance", tolerance, minimum=0)
    merged = copy.deepcopy(model)
    links, planes = hidden_layer_links(merged), hyperplanes(merged)
    same_side = parameter_distances(merged, signed=True)
    if len(keep_masks) != len(links):
        raise ValueError(f"need one keep mask per hidden layer ({len(links)}), got {len(keep_masks)}")
    for link, plane, distance, keep in zip(links, planes, same_side, keep_masks):
        keep = torch.as_tensor(keep, dtype=torch.bool).numpy()
        if len(keep) != len(plane) or not keep.any():
            raise ValueError(f"a keep mask must have {len(plane)} entries with at least one True")
        kept = np.flatnonzero(keep)
        norms = plane[:, :-1].norm(dim=1).numpy()
        for removed in np.flatnonzero(~keep):
            target = kept[np.argmin(distance[removed, kept])]
            if distance[removed, target] <= tolerance and norms[target] > 0:
                _add_outgoing(link, source=removed, target=target, factor=norms[removed] / norms[target])
    return prune_nodes(merged, keep_masks)


def _add_outgoing(link: HiddenLayer, source: int, target: int, factor: float) -> None:
    """``W_next[:, target] += factor * W_next[:, source]`` in the next layer's view of the hidden layer."""
    weight = link.next_layer.weight
    width = len(link.layer.weight)
    with torch.no_grad():
        if isinstance(link.next_layer, nn.Linear):
            positions = weight.shape[1] // width if link.flattened else 1
            columns = weight.view(weight.shape[0], width, positions)
            columns[:, target] += factor * columns[:, source]
        else:
            weight[:, target] += factor * weight[:, source]
