"""The spline pruning criterion: remove nodes whose splines duplicate other splines of the same layer.

A hidden node ``k`` of a layer draws one spline, the zero set of its pre-activation ``h_k(z) = <w_k, z> + b_k``
(BatchNorm folded in), in the layer's input space. Two nodes are redundant when their splines (nearly) coincide.
The paper's pairwise quantity (its Eq. 2) is not at hand, so both readings are implemented and ``space`` chooses:

* ``"parameter"``: unit-normalized hyperplanes ``theta_k = (w_k, b_k) / ||w_k||_2`` and
  ``N(k, k') = min_{s = +-1} ||theta_k - s theta_k'||_1`` (``(w, b)`` and ``(-w, -b)`` draw the same spline);
* ``"data"``: the normalized Hamming distance between the activation codes of ``k`` and ``k'`` on a probe set,
  ``min(d, 1 - d)`` (a complemented code is the same spline). For a conv channel, its codes at every position.

The redundancy of ``k`` is ``r_k = min_{k' != k} N(k, k')`` (:func:`redundancy_scores`, a criterion for
:func:`spline_utils.pruning.node_scores`). Both members of a duplicate pair score low, so :func:`spline_keep_masks`
removes nodes one at a time and recomputes ``r`` among the survivors: one node of every group stays.
:func:`spline_groups` groups nodes whose distance is below a threshold (connected components) and
:func:`group_representatives` keeps one per group. :func:`spline_utils.pruning.merging.merge_and_prune` prunes and folds
every removed node that is a positive multiple of a kept one into it, leaving the network function unchanged.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from spline_utils.reading.sequential import to_chain
from spline_utils.checks import check_finite_number, check_integer, check_samples
from spline_utils.reading.operations import batchnorm_scale_shift, hidden_layer_links
from spline_utils.pruning.surgery import check_ratio_and_scope

SPACES = ("parameter", "data")


def hyperplanes(model: nn.Module) -> list[torch.Tensor]:
    """Each hidden node's ``(w_k, b_k)`` with the following eval-mode BatchNorm folded in, in float64.

    Returns
    -------
    list of torch.Tensor, tensor ``l`` of shape (width_l, fan_in_l + 1)
        Row ``k`` is the flattened incoming weights (a Linear row or a Conv2d filter) then the bias.
    """
    planes = []
    for link in hidden_layer_links(model):
        weight = link.layer.weight.detach().double().flatten(1)
        bias = (link.layer.bias.detach().double() if link.layer.bias is not None
                else torch.zeros(len(weight), dtype=torch.float64))
        if link.batchnorm is not None:
            scale, shift = (t.detach().double() for t in batchnorm_scale_shift(link.batchnorm))
            weight, bias = scale[:, None] * weight, scale * bias + shift
        if not torch.isfinite(weight).all() or not torch.isfinite(bias).all():
            raise ValueError("the model has non-finite weights or BatchNorm statistics; fix training first")
        planes.append(torch.cat([weight, bias[:, None]], dim=1).cpu())
    return planes


def unit_hyperplanes(model: nn.Module) -> list[torch.Tensor]:
    """``theta_k = (w_k, b_k) / ||w_k||_2`` per hidden layer (shapes as :func:`hyperplanes`).

    A node with ``w_k = 0`` has no spline (its pre-activation is constant); its row is left as zeros.
    """
    units = []
    for plane in hyperplanes(model):
        norms = plane[:, :-1].norm(dim=1, keepdim=True)
        units.append(torch.where(norms > 0, plane / norms.clamp_min(1e-300), torch.zeros_like(plane)))
    return units


def parameter_distances(model: nn.Module, signed: bool = False) -> list[np.ndarray]:
    """``N(k, k') = min_{s = +-1} ||theta_k - s theta_k'||_1`` for every pair of nodes of each hidden layer.

    Parameters
    ----------
    model : nn.Sequential
    signed : bool
        Use ``s = +1`` only: the distance to nodes with the same orientation (what
        :func:`spline_utils.pruning.merging.merge_and_prune` needs).

    Returns
    -------
    list of ndarray, array ``l`` of shape (width_l, width_l), symmetric, zero diagonal
    """
    distances = []
    for theta in unit_hyperplanes(model):
        same = torch.cdist(theta, theta, p=1)
        distance = same if signed else torch.minimum(same, torch.cdist(theta, -theta, p=1))
        distance.fill_diagonal_(0.0)
        distances.append(distance.numpy())
    return distances


def layer_pre_activations(model: nn.Module, probe: torch.Tensor) -> list[torch.Tensor]:
    """Pre-activations of every hidden layer on ``probe`` (eval mode, float64), one ``(n, width_l, positions)``.

    ``positions`` is 1 for a Linear layer and ``H * W`` for a Conv2d layer.
    """
    probe = check_samples("probe", probe)
    chain, widths = to_chain(model), [link.width for link in hidden_layer_links(model)]
    if chain.num_layers != len(widths):
        raise ValueError(f"the model has {len(widths)} hidden layers but {chain.num_layers} nonlinearities; the "
                         "data-space criterion needs one nonlinearity after each hidden layer")
    return [h.reshape(len(h), width, -1) for h, width in zip(chain.pre_activations(probe), widths)]


def code_distances(model: nn.Module, probe: torch.Tensor) -> list[np.ndarray]:
    """Data-space ``N(k, k') = min(d, 1 - d)``, ``d`` the fraction of probe codes where nodes ``k, k'`` differ.

    Parameters
    ----------
    model : nn.Sequential
    probe : torch.Tensor, shape (n_samples, *input_shape)

    Returns
    -------
    list of ndarray, array ``l`` of shape (width_l, width_l), values in [0, 0.5], zero diagonal
        For a conv channel the codes are those of all its positions on all probe inputs.
    """
    distances = []
    for h in layer_pre_activations(model, probe):
        codes = (h > 0).double().transpose(0, 1).reshape(h.shape[1], -1)
        ones = codes.sum(dim=1)
        differ = (ones[:, None] + ones[None, :] - 2 * codes @ codes.T) / codes.shape[1]
        distance = torch.minimum(differ, 1 - differ).clamp_min(0.0)
        distance.fill_diagonal_(0.0)
        distances.append(distance.numpy())
    return distances


def spline_distances(model: nn.Module, space: str = "parameter", probe: torch.Tensor | None = None
                     ) -> list[np.ndarray]:
    """:func:`parameter_distances` (``space="parameter"``) or :func:`code_distances` (``space="data"``)."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if space == "data":
        if probe is None:
            raise ValueError("space='data' needs a probe set: pass probe=<inputs of shape (n, *input_shape)>")
        return code_distances(model, probe)
    return parameter_distances(model)


def redundancy_scores(model: nn.Module, space: str = "parameter", probe: torch.Tensor | None = None
                      ) -> list[torch.Tensor]:
    """``r_k = min_{k' != k} N(k, k')`` per hidden layer: low means redundant (a criterion for ``node_scores``).

    A layer of a single node gets ``inf``. Both nodes of a duplicate pair score low; :func:`spline_keep_masks`
    keeps one of them.
    """
    return [torch.from_numpy(_nearest(distance)) for distance in spline_distances(model, space, probe)]


def spline_groups(distance: np.ndarray, threshold: float) -> np.ndarray:
    """Groups of near-duplicate splines: connected components of the graph ``N(k, k') <= threshold``.

    Parameters
    ----------
    distance : ndarray, shape (width, width)
    threshold : float >= 0

    Returns
    -------
    ndarray of int, shape (width,): group label of each node, labels 0, 1, ... in order of first appearance
    """
    distance = _check_square(distance)
    threshold = check_finite_number("threshold", threshold, minimum=0)
    _, labels = connected_components(distance <= threshold, directed=False)
    _, first = np.unique(labels, return_index=True)
    relabel = np.empty(len(first), dtype=int)
    relabel[np.argsort(np.argsort(first))] = np.arange(len(first))
    return relabel[labels]


def threshold_for_groups(distance: np.ndarray, n_groups: int) -> float:
    """The smallest threshold at which :func:`spline_groups` finds at most ``n_groups`` groups.

    Groups are single-linkage clusters, so the answer is an edge weight of the minimum spanning tree of ``distance``:
    the ``n_groups``-th largest one (0 when ``n_groups`` is at least the number of nodes).
    """
    distance = _check_square(distance)
    n_groups = check_integer("n_groups", n_groups, minimum=1)
    if n_groups >= len(distance):
        return 0.0
    # zero distances are not edges for scipy: lift them to a tiny positive weight first
    weights = np.sort(minimum_spanning_tree(np.where(distance > 0, distance, 1e-300)).data)
    return float(weights[len(distance) - 1 - n_groups]) if len(weights) == len(distance) - 1 else 0.0


def group_representatives(distance: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Keep mask with one node per group: the member with the smallest total distance to its group."""
    distance, labels = _check_square(distance), np.asarray(labels)
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep[members[np.argmin(distance[np.ix_(members, members)].sum(axis=1))]] = True
    return keep


def spline_keep_masks(distances: Sequence[np.ndarray], ratio: float, scope: str = "layerwise"
                      ) -> list[torch.Tensor]:
    """Remove the ``ratio`` fraction of nodes, most redundant first, recomputing ``r_k`` after every removal.

    Parameters
    ----------
    distances : sequence of ndarray, array ``l`` of shape (width_l, width_l)
        From :func:`spline_distances`.
    ratio : float in [0, 1)
        ``round(ratio * width_l)`` nodes per layer (``"layerwise"``) or ``round(ratio * total)`` over all layers
        (``"global"``); a layer always keeps at least one node.
    scope : {"layerwise", "global"}
        With ``"global"`` the layers compete on ``r_k`` divided by their layer's median pairwise distance, so that
        layers of different fan-in (parameter space) or code statistics (data space) are comparable.

    Returns
    -------
    list of torch.Tensor of bool, mask ``l`` of shape (width_l,), True for kept nodes
    """
    check_ratio_and_scope(ratio, scope, "nodes")
    if isinstance(distances, nn.Module):
        raise TypeError("spline_keep_masks takes distance matrices, not a model: "
                        "call spline_keep_masks(spline_distances(model), ratio)")
    matrices = [_check_square(d).copy() for d in distances]
    if not matrices:
        raise ValueError("need the distances of at least one hidden layer")
    if scope == "global":
        matrices = [m / _median_off_diagonal(m) for m in matrices]
    for matrix in matrices:
        np.fill_diagonal(matrix, np.inf)
    keep = [np.ones(len(m), dtype=bool) for m in matrices]
    if scope == "layerwise":
        for matrix, mask in zip(matrices, keep):
            for _ in range(min(round(ratio * len(mask)), len(mask) - 1)):
                _remove_most_redundant(matrix, mask)
    else:
        for _ in range(round(ratio * sum(len(m) for m in matrices))):
            candidates = [(matrix[:, mask].min(axis=1)[mask].min(), index)
                          for index, (matrix, mask) in enumerate(zip(matrices, keep)) if mask.sum() > 1]
            if not candidates:
                break
            _, layer = min(candidates)
            _remove_most_redundant(matrices[layer], keep[layer])
    return [torch.from_numpy(mask) for mask in keep]


def _nearest(distance: np.ndarray) -> np.ndarray:
    distance = _check_square(distance).copy()
    np.fill_diagonal(distance, np.inf)
    return distance.min(axis=1)


def _remove_most_redundant(matrix: np.ndarray, mask: np.ndarray) -> None:
    """Drop the surviving node nearest to another survivor (ties: the first); ``matrix`` has an inf diagonal."""
    survivors = np.flatnonzero(mask)
    nearest = matrix[np.ix_(survivors, survivors)].min(axis=1)
    mask[survivors[np.argmin(nearest)]] = False


def _median_off_diagonal(matrix: np.ndarray) -> float:
    if len(matrix) < 2:
        return 1.0
    median = float(np.median(matrix[~np.eye(len(matrix), dtype=bool)]))
    return median if median > 0 else 1.0


def _check_square(distance) -> np.ndarray:
    try:
        distance = np.asarray(distance, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError("expected a (width, width) distance matrix from spline_distances, "
                        f"got {type(distance).__name__}") from error
    if distance.ndim != 2 or distance.shape[0] != distance.shape[1] or len(distance) == 0:
        raise ValueError(f"distances must be a non-empty square (width, width) matrix, got shape {distance.shape}")
    return distance
