"""Which edges of an exact partition were already in place in another network's partition of the same slice.

An edge of a partition lies on the splines (zero sets) of one or more nodes: those whose pre-activation, affine on
the edge's region, vanishes at the edge's midpoint (read off the partition's own per-layer maps, no sampling). The
edge is *unchanged* since another network (the same architecture at an earlier epoch, say) when that network's
codes of the same nodes also flip along the normal through the midpoint within ``tolerance`` of it (its forward
pass at the two ends): its splines pass within ``tolerance`` of the edge. Otherwise the edge is *changed*: its
splines moved by more than ``tolerance``, or are new there.

:func:`edge_changes` asks the other network's forward pass (two points per edge). :func:`spline_moves` reads the
other network's splines off its own exact partition of the same window instead (no forward pass, a fraction of the
cost on large partitions) and says how far each edge's splines moved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
import torch.nn as nn
from scipy.spatial import cKDTree

from spline_utils.reading.oracle import activation_codes
from spline_utils.engine.partition import Partition

EDGES_PER_CHUNK = 8192  # edges whose nodes and reference codes are compared at once


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


@dataclass
class SplineMoves:
    """The edges of a partition, each with how far its splines moved since an earlier partition of the same window.

    Attributes
    ----------
    segments : ndarray, shape (n_edges, 2, 2)
        The interior edges, each once.
    distances : ndarray, shape (n_edges,)
        For each edge, the largest over its nodes of the distance from the edge's midpoint to the same node's
        spline in the earlier partition; ``inf`` where a node's spline did not cross the earlier window at all.
    """

    segments: np.ndarray
    distances: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.linalg.norm(self.segments[:, 1] - self.segments[:, 0], axis=1)

    def share(self, beyond: float) -> float:
        """The share of the total edge length whose splines moved farther than ``beyond`` (``inf``: the share on
        splines new in the window); 0 when there are no edges."""
        total = self.lengths.sum()
        far = np.isinf(self.distances) if beyond == np.inf else self.distances > beyond
        return float(self.lengths[far].sum() / total) if total > 0 else 0.0


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
    segments, owners, _ = interior_edges_and_neighbours(partition)
    return segments, owners


def interior_edges_and_neighbours(partition: Partition) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`interior_edges`, and for each edge the region on its other side: the owner of the other copy of the
    edge, or -1 where no other polygon has the same edge (a neighbour whose side is split there)."""
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
    _, first, inverse, counts = np.unique(keys, axis=0, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    other = np.full(len(first), -1, dtype=np.int64)  # per unique edge: the owner of a copy other than the first
    later_copy = np.arange(len(keys)) != first[inverse]
    other[inverse[later_copy]] = owners[later_copy]
    other[counts != 2] = -1  # a neighbour is read only where exactly two polygons share the edge
    order = np.argsort(first)
    first = first[order]
    return canonical[first], owners[first], other[order]


def _region_ancestry(partition: Partition, regions: np.ndarray) -> list[np.ndarray]:
    """``ancestry[l]``: the region after hidden layer ``l - 1`` holding each region (``l = 0``: the domain, 0)."""
    chain, index = [], np.asarray(regions, dtype=np.int64)
    for layer in range(len(partition.layers) - 1, -1, -1):
        index = partition.layers[layer].parent[index]
        chain.append(index)
    return chain[::-1]


def edge_nodes(partition: Partition, segments: np.ndarray, owners: np.ndarray, neighbours: np.ndarray | None = None,
               relative_on_line: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """The hidden nodes whose spline carries each edge.

    Where the region on the other side is known (``neighbours``, -1 where not), they are the nodes whose codes
    differ between the two regions (a node flips exactly where its pre-activation crosses zero). Elsewhere they are
    the nodes whose pre-activation, affine on the edge's region (``owners``), vanishes at the edge's midpoint (to
    ``relative_on_line`` of the domain's size; this reads the regions' maps, which a partition computed in tiles
    recomputes).

    Returns
    -------
    edges, nodes : ndarray of int64, shape (n_pairs,)
        One pair per (edge, node) that makes it, sorted by edge; ``nodes`` counts over all hidden layers in order.
        An edge may have several nodes (coinciding splines); an edge without any has no pair.
    """
    if neighbours is None:
        neighbours = np.full(len(segments), -1, dtype=np.int64)
    paired = np.flatnonzero(neighbours >= 0)
    edges, nodes = _nodes_flipping(partition, owners[paired], neighbours[paired])
    edges = [paired[edges]]
    nodes = [nodes]
    alone = np.flatnonzero(neighbours < 0)
    middle = segments[alone].mean(axis=1)
    ancestry = _region_ancestry(partition, owners[alone])
    xmin, xmax, ymin, ymax = partition.bounds
    on_line = relative_on_line * max(xmax - xmin, ymax - ymin)
    for start in range(0, len(alone), EDGES_PER_CHUNK):
        chunk = slice(start, start + EDGES_PER_CHUNK)
        offset = 0
        for layer, current in enumerate(partition.layers):
            regions, inverse = np.unique(ancestry[layer][chunk], return_inverse=True)
            pre = current.pre_activation_rows(regions)  # (regions, 3, nodes of the layer)
            edge, node = _nodes_through(pre, inverse.reshape(-1), middle[chunk], on_line)
            edges.append(alone[edge + start])
            nodes.append(node + offset)
            offset += current.num_nodes
    edges, nodes = np.concatenate(edges), np.concatenate(nodes)
    order = np.lexsort((nodes, edges))
    return edges[order], nodes[order]


def _edges_and_nodes(partition: Partition, relative_on_line: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`interior_edges_and_neighbours`' segments and :func:`edge_nodes` of them: (segments, edges, nodes)."""
    segments, owners, neighbours = interior_edges_and_neighbours(partition)
    return (segments, *edge_nodes(partition, segments, owners, neighbours, relative_on_line))


def _nodes_flipping(partition: Partition, regions: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (pair, node) pairs whose code differs between ``regions[pair]`` and ``others[pair]``."""
    # the region after each hidden layer holding each region: its ancestors, then itself
    ours = _region_ancestry(partition, regions)[1:] + [np.asarray(regions, dtype=np.int64)]
    theirs = _region_ancestry(partition, others)[1:] + [np.asarray(others, dtype=np.int64)]
    edges, nodes = [], []
    for start in range(0, len(regions), EDGES_PER_CHUNK):
        chunk = slice(start, start + EDGES_PER_CHUNK)
        offset = 0
        for layer, current in enumerate(partition.layers):
            difference = current.packed_codes[ours[layer][chunk]] ^ current.packed_codes[theirs[layer][chunk]]
            edge, node = np.nonzero(np.unpackbits(difference, axis=1, count=current.num_nodes))
            edges.append(edge + start)
            nodes.append(node + offset)
            offset += current.num_nodes
    return (np.concatenate(edges), np.concatenate(nodes)) if edges else (np.zeros(0, np.int64), np.zeros(0, np.int64))


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
    segments, pair_edges, pair_nodes = _edges_and_nodes(partition, relative_on_line)
    direction = segments[:, 1] - segments[:, 0]
    length = np.linalg.norm(direction, axis=1)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1) / np.maximum(length, 1e-300)[:, None]
    middle = segments.mean(axis=1)
    n_nodes = sum(partition.layer_sizes)
    readable = np.zeros(len(segments), dtype=bool)
    readable[pair_edges] = True
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
        in_chunk = (pair_edges >= start) & (pair_edges < start + half)
        local = pair_edges[in_chunk] - start
        moved[start + local[~flips[local, pair_nodes[in_chunk]]]] = True
    return EdgeChanges(segments[readable], moved[readable], float(tolerance))


def spline_moves(partition: Partition, earlier: Partition, spacing: float,
                 relative_on_line: float = 1e-7) -> SplineMoves:
    """How far the splines under each interior edge of ``partition`` moved since ``earlier``, an exact partition of
    the same rectangle by the same architecture (the network one epoch before, say).

    For each node that makes an edge (:func:`edge_nodes`), the distance from the edge's midpoint to the nearest
    edge of ``earlier`` made by the same node, read off points every ``spacing`` along ``earlier``'s edges: exact
    to ``spacing / 2`` (a nearest-neighbour query, no forward pass).

    Parameters
    ----------
    partition, earlier : Partition
        Exact partitions (:func:`spline_utils.partition2d`) of the same bounds (and slice), with the same hidden
        layer sizes.
    spacing : float
        In the slice's coordinates, > 0.
    relative_on_line : float
        As in :func:`edge_changes`.

    Returns
    -------
    SplineMoves
        Edges on which no node's line could be found are left out (none in a partition the engine made).
    """
    if not spacing > 0:
        raise ValueError(f"spacing must be a positive distance, got {spacing}")
    if list(partition.layer_sizes) != list(earlier.layer_sizes):
        raise ValueError(f"layer sizes {partition.layer_sizes} and {earlier.layer_sizes} differ: compare partitions "
                         "of the same architecture")
    xmin, xmax, ymin, ymax = partition.bounds
    diagonal = np.hypot(xmax - xmin, ymax - ymin)
    if not np.allclose(partition.bounds, earlier.bounds, rtol=0, atol=1e-12 * diagonal):
        raise ValueError(f"bounds {partition.bounds} and {earlier.bounds} differ: compare the same rectangle")
    segments, pair_edges, pair_nodes = _edges_and_nodes(partition, relative_on_line)
    earlier_segments, earlier_edges, earlier_nodes = _edges_and_nodes(earlier, relative_on_line)
    # points along every earlier (edge, node) pair; the node is a third coordinate, spaced wider than the window
    node_spacing = 4 * diagonal
    starts, ends = earlier_segments[earlier_edges, 0], earlier_segments[earlier_edges, 1]
    counts = np.ceil(np.linalg.norm(ends - starts, axis=1) / spacing).astype(np.int64) + 1
    pair = np.repeat(np.arange(len(counts)), counts)
    step = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
    along = (step / np.maximum(counts[pair] - 1, 1))[:, None]
    samples = np.column_stack([starts[pair] + along * (ends[pair] - starts[pair]),
                               earlier_nodes[pair] * node_spacing])
    queries = np.column_stack([segments.mean(axis=1)[pair_edges], pair_nodes * node_spacing])
    if len(samples):
        pair_distances, _ = cKDTree(samples).query(queries, distance_upper_bound=2 * diagonal)
    else:
        pair_distances = np.full(len(queries), np.inf)
    distances = np.full(len(segments), -1.0)
    np.maximum.at(distances, pair_edges, pair_distances)
    readable = distances >= 0
    return SplineMoves(segments[readable], distances[readable])


@numba.njit(cache=True)
def _vanishes_near(row, node, x, y, on_line):
    """Whether the affine map ``row[:, node]`` (offset, x slope, y slope) is zero within ``on_line`` of (x, y)."""
    value = row[0, node] + row[1, node] * x + row[2, node] * y
    return value * value <= on_line * on_line * (row[1, node] ** 2 + row[2, node] ** 2)


@numba.njit(cache=True)
def _nodes_through(pre, region_of_edge, points, on_line):
    """The (edge, node) pairs whose affine map ``pre[region_of_edge[edge]]`` (rows: offset, x slope, y slope)
    vanishes within ``on_line`` of ``points[edge]``: counted, then written, with no per-node temporaries."""
    n_edges, n_nodes = len(points), pre.shape[2]
    count = 0
    for edge in range(n_edges):
        row = pre[region_of_edge[edge]]
        for node in range(n_nodes):
            count += _vanishes_near(row, node, points[edge, 0], points[edge, 1], on_line)
    edges = np.empty(count, dtype=np.int64)
    nodes = np.empty(count, dtype=np.int64)
    found = 0
    for edge in range(n_edges):
        row = pre[region_of_edge[edge]]
        for node in range(n_nodes):
            if _vanishes_near(row, node, points[edge, 0], points[edge, 1], on_line):
                edges[found] = edge
                nodes[found] = node
                found += 1
    return edges, nodes
