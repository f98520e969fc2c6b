"""Which edges of an exact partition were already in place in another network's partition of the same slice.

An edge of a partition lies on the splines (zero sets) of one or more nodes: those whose pre-activation, affine on
the edge's region, vanishes at the edge's midpoint (read off the partition's own per-layer maps, no sampling). The
edge is *unchanged* since another network (the same architecture at an earlier epoch, say) when that network's
codes of the same nodes also flip along the normal through the midpoint within ``tolerance`` of it (its forward
pass at the two ends): its splines pass within ``tolerance`` of the edge. Otherwise the edge is *changed*: its
splines moved by more than ``tolerance``, or are new there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from spline_utils.reading.oracle import activation_codes
from spline_utils.engine.partition import Partition

EDGES_PER_CHUNK = 1024  # edges whose nodes and reference codes are compared at once


@dataclass
class EdgeChanges:
    """The edges of a partition, each marked changed or unchanged since a reference network.

    Attributes
    ----------
    segments : ndarray, shape (n_edges, 2, 2)
        The interior edges (the window's border is left out), each once.
    changed : ndarray of bool, shape (n_edges,)
    tolerance : float
        How far (in the slice's coordinates) a reference spline may lie from an edge for it to count as unchanged.
    """

    segments: np.ndarray
    changed: np.ndarray
    tolerance: float

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.segments[:, 1] - self.segments[:, 0], axis=1)

    @property
    def changed_fraction(self) -> float:
        """The changed edges' share of the total edge length (0 when there are no edges)."""
        total = self.lengths.sum()
        return float(self.lengths[self.changed].sum() / total) if total > 0 else 0.0


def interior_edges(partition: Partition) -> tuple[np.ndarray, np.ndarray]:
    """Every polygon edge of the final partition once (shared edges are stored by both polygons).

    Edges on the border of ``partition.bounds`` are dropped; the two neighbours' copies of an edge count once when
    their endpoints agree to 1e-9 of the domain's size.

    Returns
    -------
    segments : ndarray, shape (n_edges, 2, 2)
    owners : ndarray of int64, shape (n_edges,)
        A region of ``partition`` that has the edge.
    """
    polygons = partition.polygons
    segments = np.stack([polygons.vertices, polygons.vertices[polygons.next_vertex()]], axis=1)
    owners = polygons.owner
    xmin, xmax, ymin, ymax = partition.bounds
    scale = max(xmax - xmin, ymax - ymin)
    border = np.zeros(len(segments), dtype=bool)
    for axis, value in ((0, xmin), (0, xmax), (1, ymin), (1, ymax)):  # both ends on the same side of the window
        border |= np.isclose(segments[:, :, axis], value, rtol=0, atol=1e-9 * scale).all(axis=1)
    segments, owners = segments[~border], owners[~border]
    # each edge's endpoints in lexicographic order, so both polygons' copies of a shared edge get the same key
    first_later = (segments[:, 0, 0] > segments[:, 1, 0]) | ((segments[:, 0, 0] == segments[:, 1, 0])
                                                            & (segments[:, 0, 1] > segments[:, 1, 1]))
    canonical = np.where(first_later[:, None, None], segments[:, ::-1], segments)
    keys = np.round(canonical.reshape(-1, 4) / (1e-9 * scale)).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    first = np.sort(first)
    return canonical[first], owners[first]


def _region_ancestry(partition: Partition, regions: np.ndarray) -> list[np.ndarray]:
    """``ancestry[l]``: the region after hidden layer ``l - 1`` holding each region (``l = 0``: the domain, 0)."""
    chain, index = [], np.asarray(regions, dtype=np.int64)
    for layer in range(len(partition.layers) - 1, -1, -1):
        index = partition.layers[layer].parent[index]
        chain.append(index)
    return chain[::-1]


def edge_changes(partition: Partition, reference: nn.Module, tolerance: float,
                 relative_on_line: float = 1e-7) -> EdgeChanges:
    """Mark each interior edge of ``partition`` changed or unchanged since the network ``reference``.

    Parameters
    ----------
    partition : Partition
        An exact partition (:func:`spline_utils.partition2d`) of a 2-D domain or slice.
    reference : nn.Module
        The network to compare with: same architecture (the same hidden nodes in the same order), e.g. the
        partition's network at an earlier epoch.
    tolerance : float
        Half-length of the normal segment through each edge's midpoint on which ``reference``'s codes of the
        edge's nodes must flip for the edge to count as unchanged; in the slice's coordinates, > 0.
    relative_on_line : float
        A node makes the edge where the distance from the midpoint to its line is below this fraction of the
        domain's size (the partition's vertices carry float64 round-off).

    Returns
    -------
    EdgeChanges
        Edges on which no node's line could be found are left out (none in a partition the engine made).
    """
    if not tolerance > 0:
        raise ValueError(f"tolerance must be a positive distance, got {tolerance}")
    segments, owners = interior_edges(partition)
    direction = segments[:, 1] - segments[:, 0]
    length = np.linalg.norm(direction, axis=1)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1) / np.maximum(length, 1e-300)[:, None]
    middle = segments.mean(axis=1)
    ancestry = _region_ancestry(partition, owners)
    xmin, xmax, ymin, ymax = partition.bounds
    on_line = relative_on_line * max(xmax - xmin, ymax - ymin)
    n_nodes = sum(partition.layer_sizes)
    readable = np.zeros(len(segments), dtype=bool)
    moved = np.zeros(len(segments), dtype=bool)
    for start in range(0, len(segments), EDGES_PER_CHUNK):
        chunk = slice(start, start + EDGES_PER_CHUNK)
        ends = np.concatenate([middle[chunk] + tolerance * normal[chunk], middle[chunk] - tolerance * normal[chunk]])
        inputs = torch.as_tensor(ends) if partition.plane is None else partition.plane(ends)
        theirs = activation_codes(reference, inputs, dtype=torch.float32).numpy()
        if theirs.shape[1] != n_nodes:
            raise ValueError(f"reference has {theirs.shape[1]} hidden nodes, the partition's network {n_nodes}: "
                             "compare the same architecture")
        half = len(ends) // 2
        flips = theirs[:half] != theirs[half:]
        offset = 0
        for layer, current in enumerate(partition.layers):
            pre = current.pre_activation_rows(ancestry[layer][chunk])  # (edges, 3, nodes of the layer)
            value = pre[:, 0] + pre[:, 1] * middle[chunk, :1] + pre[:, 2] * middle[chunk, 1:]
            makes_edge = np.abs(value) <= on_line * np.hypot(pre[:, 1], pre[:, 2])
            readable[chunk] |= makes_edge.any(axis=1)
            moved[chunk] |= (makes_edge & ~flips[:, offset:offset + current.num_nodes]).any(axis=1)
            offset += current.num_nodes
    return EdgeChanges(segments[readable], moved[readable], float(tolerance))
