"""Exact input-space partition of a ReLU/LeakyReLU network on a 2-D domain or a 2-D slice.

Layer by layer (paper, section 2): the regions of layers ``1..l-1`` are convex polygons on which every pre-activation
of layer ``l`` is affine, ``h_k(p) = c_k + a_k . p``. Each region is cut by the zero lines of the nodes that cross it;
the pieces are the regions of layers ``1..l``. Nothing is sampled: the polygons, codes and affine maps are exact up to
the engine's resolution: a line is taken to pass through a point when its value there is within 1e-10 of its variation
across the domain (plus float64 round-off, :mod:`spline_utils.engine.tolerance`), so features thinner than about
1e-10 of the domain's half-width are not resolved, and a
:class:`~spline_utils.engine.tolerance.ResolutionWarning` says so when it happens. Partition a smaller rectangle to
see finer detail.

The cutting lives in :mod:`spline_utils.engine.cutting`, the propagation of per-region maps in
:mod:`spline_utils.engine.propagate`.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np
import torch

from spline_utils.engine.cutting import lines_near_boxes
from spline_utils.engine.gain_kernel import gated_maps
from spline_utils.engine.polygons import Polygons, clip_lines, join_segments
from spline_utils.engine.region_bound import PartitionTooLarge
from spline_utils.engine.tolerance import Frame
from spline_utils.reading.graph_ir import Graph


KEEP_RECOMPUTED_BYTES = 2**30  # a layer's maps computed again whole are kept up to this size


class LayerPartition:
    """The partition after one hidden layer: the refinement of the previous layer's partition.

    Attributes
    ----------
    polygons : Polygons
        The regions, flat.
    parent : ndarray of int64, shape (n_regions,)
        Index of the region of the previous layer that contains each region (0 for the first layer: the domain).
    packed_codes : ndarray of uint8, shape (n_regions, ceil(n_nodes / 8))
        This layer's activation code in each region, 8 nodes a byte as ``np.packbits(codes, axis=1)`` (a
        tenth of a conv layer's regions' memory, unpacked); :attr:`layer_codes` and :meth:`codes_of` unpack it.
    slope : float
        The nonlinearity's negative slope (0 for ReLU).
    shape : tuple
        Per-sample shape of the layer's pre-activation (``(C, H, W)`` for a conv layer).
    """

    def __init__(self, polygons, parent, packed_codes, pre_activations, slope, shape, recompute=None):
        self.shape = shape
        self.polygons = polygons
        self.parent = parent
        self.packed_codes = packed_codes
        self._pre_activations = pre_activations
        self.slope = slope
        self._recompute = recompute  # recompute(parent_index) -> maps on those parents, for a streamed layer
        self.pre_row = parent  # row of pre_activations for each region (local rows while a chunk is being cut)

    @property
    def pre_activations(self) -> np.ndarray:
        """The layer's pre-activation maps on every parent region, shape (n_parent_regions, 3, n_nodes).

        On parent region ``p``, node ``k``'s pre-activation is ``pre[p, 0, k] + pre[p, 1, k] a + pre[p, 2, k] b``. A
        layer whose maps would be too large to hold was cut a chunk of parents at a time and keeps no maps: they are
        computed again on access (:meth:`pre_activation_columns` does so a chunk at a time).
        """
        if self._pre_activations is None:
            return self.pre_activation_columns(slice(None))
        return self._pre_activations

    def pre_activation_columns(self, nodes) -> np.ndarray:
        """``pre_activations[:, :, nodes]``; for a layer that keeps no maps, computed again a chunk of parents at a
        time, and kept once computed whole if that takes at most :data:`KEEP_RECOMPUTED_BYTES` (so that asking for one
        node after another costs one recomputation)."""
        if self._pre_activations is not None:
            return self._pre_activations[:, :, nodes]
        n_parents = int(self.parent.max(initial=-1)) + 1 if self._recompute.n_parents is None else \
            self._recompute.n_parents
        keep = n_parents * 3 * self.num_nodes * 8 <= KEEP_RECOMPUTED_BYTES
        columns = slice(None) if keep else nodes
        step = self._recompute.step
        maps = np.concatenate([self._recompute(np.arange(start, min(start + step, n_parents)))[:, :, columns]
                               for start in range(0, n_parents, step)])
        if keep:
            self._pre_activations = maps
            return maps[:, :, nodes]
        return maps

    def pre_activation_rows(self, rows: np.ndarray) -> np.ndarray:
        """``pre_activations[rows]`` (rows are parent regions), computed for those rows only where the layer keeps
        no maps."""
        if self._pre_activations is not None:
            return self._pre_activations[rows]
        unique, inverse = np.unique(rows, return_inverse=True)
        return self._recompute(unique)[inverse.reshape(-1)]

    @property
    def num_regions(self) -> int:
        return len(self.polygons)

    @property
    def num_nodes(self) -> int:
        return math.prod(self.shape)

    @property
    def layer_codes(self) -> np.ndarray:
        """This layer's activation code in each region, bool (n_regions, n_nodes): unpacked on every access."""
        return self.codes_of(slice(None))

    def codes_of(self, index) -> np.ndarray:
        """The codes of regions ``index`` (an index array or slice), unpacked: bool (n, n_nodes)."""
        return np.unpackbits(self.packed_codes[index], axis=1, count=self.num_nodes).view(bool)

    def code_bits(self, regions: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Whether node ``nodes[i]`` is active in region ``regions[i]``, bool (n,)."""
        return (self.packed_codes[regions, nodes >> 3] >> (7 - (nodes & 7))) & 1 == 1

    @property
    def regions(self) -> list[np.ndarray]:
        return self.polygons.split()

    def all_post_activations(self) -> np.ndarray:
        """This layer's output as an affine map on every region, shape (num_regions, 3, n_nodes)."""
        return self.post_activations(np.arange(self.num_regions))

    def post_activations(self, index: np.ndarray) -> np.ndarray:
        """This layer's output as an affine map on regions ``index``, shape (len(index), 3, n_nodes)."""
        index = np.asarray(index, dtype=np.int64)
        rows = self.pre_row[index]
        if self._pre_activations is None:  # computed again for the parents asked for only
            rows, inverse = np.unique(rows, return_inverse=True)
            return gated_maps(self._recompute(rows), inverse.reshape(-1), self.packed_codes, index, float(self.slope))
        return gated_maps(self._pre_activations, rows, self.packed_codes, index, float(self.slope))


class Partition:
    """The exact partition of a network's input domain (or slice) into convex polygons.

    Build it with :func:`partition2d`. ``layers[l]`` is the partition after hidden layer ``l`` (0-based);
    the attributes below describe the final one (after the last hidden layer).

    Attributes
    ----------
    num_regions : int
    regions : list of ndarray, each (n_i, 2)
        Vertices of each convex region, counter-clockwise, in the 2-D coordinates.
    codes : ndarray of bool, shape (num_regions, n_nodes)
        Activation code of each region, hidden nodes in layer order (as :func:`spline_utils.activation_codes`):
        unpacked when first asked for, a byte per node per region (6 GB for the 1.6 million regions of a two-conv
        CNN's canvas); the layers keep them 8 nodes a byte (``layers[l].packed_codes``).
    layers : list of LayerPartition
    bounds : tuple (xmin, xmax, ymin, ymax)
    plane : Plane or None
    network : Graph
        The model as the engine read it (:func:`spline_utils.reading.dispatch.read_model`), float64.
    """

    def __init__(self, network: Graph, bounds, plane, domain: Polygons, layers: list[LayerPartition],
                 output_maps: "np.ndarray | Callable[[], np.ndarray]", output_level: int):
        self.network = network
        self.bounds = bounds
        self.plane = plane
        self.domain = domain
        self.layers = layers
        self._level_output_maps, self._output_level = output_maps, output_level
        self._output_maps = None
        self._codes = None

    def __repr__(self) -> str:
        sizes = [layer.num_regions for layer in self.layers]
        return f"Partition({self.num_regions} regions, regions per layer {sizes}, bounds={self.bounds})"

    @property
    def polygons(self) -> Polygons:
        return self.layers[-1].polygons if self.layers else self.domain

    @property
    def num_regions(self) -> int:
        return len(self.polygons)

    @property
    def regions(self) -> list[np.ndarray]:
        return self.polygons.split()

    @property
    def layer_sizes(self) -> list[int]:
        """Number of nodes of each hidden layer."""
        return [layer.num_nodes for layer in self.layers]

    @property
    def codes(self) -> np.ndarray:
        if self._codes is None:
            self._codes = self.codes_up_to(len(self.layers) - 1)
            self._codes.flags.writeable = False
        return self._codes

    def codes_up_to(self, layer: int) -> np.ndarray:
        """Codes of the partition after hidden layer ``layer`` (0-based): its nodes and all earlier ones."""
        if layer < 0:
            return np.zeros((1, 0), dtype=bool)
        return np.concatenate([self.layers[current].codes_of(rows)
                               for current, rows in enumerate(self._ancestor_rows(layer))], axis=1)

    def _ancestor_rows(self, layer: int) -> list[np.ndarray]:
        """For hidden layers ``0 .. layer``, the index in that layer of each region of layer ``layer``'s ancestor
        (the last entry is ``arange``: the regions themselves); empty for ``layer = -1``."""
        rows, index = [], np.arange(len(self.polygons_after(layer)))
        for current in range(layer, -1, -1):
            rows.append(index)
            index = self.layers[current].parent[index]
        return rows[::-1]

    @property
    def frame(self) -> Frame:
        """The domain's centre and half-size, which the geometric tolerances are relative to."""
        return Frame.around(self.bounds)

    def polygons_after(self, layer: int) -> Polygons:
        """The regions after hidden layer ``layer`` (0-based); ``-1`` is the undivided domain."""
        return self.domain if layer < 0 else self.layers[layer].polygons

    def region_index(self, codes) -> np.ndarray:
        """Index of the region with each given code, -1 where no region has it.

        Parameters
        ----------
        codes : array of bool, shape (n, n_nodes)
            E.g. :func:`spline_utils.activation_codes` of points: ``region_index`` then locates the points.
        """
        codes = np.asarray(codes, dtype=bool)
        n_nodes = sum(self.layer_sizes)
        if codes.ndim != 2 or codes.shape[1] != n_nodes:
            raise ValueError(f"codes must have shape (n, {n_nodes}); got {codes.shape}")
        # keys: each layer's codes packed on its own, side by side, as the layers keep them (never unpacked here)
        ancestry = self._ancestor_rows(len(self.layers) - 1)
        parts = [layer.packed_codes[rows] for layer, rows in zip(self.layers, ancestry)]
        keys = np.concatenate(parts, axis=1) if parts else np.zeros((self.num_regions, 0), dtype=np.uint8)
        lookup = {row.tobytes(): index for index, row in enumerate(keys)}
        asked = np.concatenate([np.packbits(part, axis=1)
                                for part in np.split(codes, np.cumsum(self.layer_sizes)[:-1], axis=1)], axis=1)
        return np.array([lookup.get(row.tobytes(), -1) for row in asked], dtype=np.int64)

    def areas(self) -> np.ndarray:
        """Area of every region, shape (num_regions,)."""
        return self.polygons.areas()

    def interior_points(self) -> np.ndarray:
        """A point strictly inside every region (its vertex mean), shape (num_regions, 2)."""
        return self.polygons.vertex_means()

    def pre_activations(self, points) -> list[np.ndarray]:
        """Every hidden layer's pre-activations at 2-D points, from the network's forward pass in float64.

        Parameters
        ----------
        points : array_like, shape (n_points, 2)
            Points in the 2-D coordinates of the partition (mapped through ``plane`` where there is one).

        Returns
        -------
        list of ndarray, entry ``l`` of shape (n_points, n_nodes_l)
            Hidden layer ``l``'s pre-activations, nodes flattened in the order of :attr:`codes`.
        """
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (n_points, 2); got {points.shape}")
        inputs = torch.as_tensor(points) if self.plane is None else self.plane(points).to(torch.float64)
        with torch.no_grad():
            layers = self.network.pre_activations(inputs)
        return [h.reshape(len(points), -1).numpy() for h in layers]

    def affine_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """The network's output on each region as an affine map of the 2-D coordinates.

        Returns
        -------
        slopes : ndarray, shape (num_regions, n_outputs, 2)
        offsets : ndarray, shape (num_regions, n_outputs)
            On region ``r``, ``f(p) = slopes[r] @ p + offsets[r]`` for the flattened output ``f``.
        """
        maps = self.output_maps()
        return np.moveaxis(maps[:, 1:3, :], 1, 2), maps[:, 0, :]

    def output_maps(self) -> np.ndarray:
        """Output affine maps packed as ``(num_regions, 3, n_outputs)``: rows offset, d/da, d/db."""
        if self._output_maps is None:
            index = ancestors(self.layers, len(self.layers) - 1, self._output_level)
            level_maps = self._level_output_maps
            level_maps = level_maps() if callable(level_maps) else level_maps
            self._output_maps = level_maps[index].reshape(len(index), 3, -1)
        return self._output_maps

    def spline_segments(self, layer: int, node: int) -> np.ndarray:
        """The spline (zero set of the pre-activation) of one node, as segments.

        Parameters
        ----------
        layer : int
            Hidden layer, 0-based.
        node : int
            Node of that layer (flattened C order for conv layers).

        Returns
        -------
        ndarray, shape (n_segments, 2, 2)
            One straight segment per region of the previous layers that the spline crosses, in region order: the
            spline bends only on earlier splines.
        """
        current = self.layers[self._check_layer(layer)]
        if isinstance(node, bool) or not isinstance(node, numbers.Integral) or not 0 <= node < current.num_nodes:
            raise ValueError(f"hidden layer {layer} has {current.num_nodes} nodes (0 to {current.num_nodes - 1}); "
                             f"node {node!r} does not exist")
        return self._spline_pieces(layer, slice(int(node), int(node) + 1))

    def _check_layer(self, layer) -> int:
        """``layer`` as a valid hidden-layer index (0-based, no negative indexing), or a ValueError."""
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or not 0 <= layer < len(self.layers):
            raise ValueError(f"layer must be a hidden layer index from 0 to {len(self.layers) - 1} (the network has "
                             f"{len(self.layers)} hidden layers; negative indices are not used); got {layer!r}")
        return int(layer)

    def layer_spline_segments(self, layer: int) -> np.ndarray:
        """All splines of a hidden layer, shape (n_segments, 2, 2): node after node, each in region order."""
        return self._spline_pieces(self._check_layer(layer), slice(None))

    def _spline_pieces(self, layer: int, nodes: slice, pairs_per_chunk: int = 1 << 16) -> np.ndarray:
        """Segments of the splines of ``nodes`` (a slice of the layer's nodes), node after node, each in region order.

        A node's line can cut a parent region only if it passes within the region's bounding box
        (:func:`spline_utils.engine.cutting.lines_near_boxes`), so only those (parent, node) pairs are clipped, vectorized
        over pairs.
        """
        parents = self.polygons_after(layer - 1)
        pre = self.layers[layer].pre_activation_columns(nodes)
        # generous slack: the clipping decides
        near_parent, near_node = lines_near_boxes(pre, parents.bounding_boxes(), self.frame, slack=10.0)
        order = np.lexsort((near_parent, near_node))
        near_parent, near_node = near_parent[order], near_node[order]
        pieces = []
        for first in range(0, len(near_parent), pairs_per_chunk):
            chunk = slice(first, first + pairs_per_chunk)
            lines = pre[near_parent[chunk], :, near_node[chunk]]
            pieces.append(clip_lines(parents.subset(near_parent[chunk]), lines, self.frame)[1])
        return np.concatenate(pieces) if pieces else np.zeros((0, 2, 2))

    def spline(self, layer: int, node: int) -> list[np.ndarray]:
        """The spline of one node as polylines (each an (m, 2) array)."""
        return join_segments(self.spline_segments(layer, node))

    def boundary_segments(self, classes=None) -> np.ndarray:
        """The decision boundary as segments, shape (n_segments, 2, 2).

        Parameters
        ----------
        classes : pair of int, optional
            ``(i, j)``: the set where logits ``i`` and ``j`` tie, ``{f_i = f_j}`` (e.g. ``(6, 9)`` for a 6-vs-9
            slice). By default: one output, its zero set; two outputs, ``{f_0 = f_1}``; more, where the largest
            logit changes (two logits tie and both are the largest).
        """
        maps = self.output_maps()
        n_outputs = maps.shape[2]
        if n_outputs == 0:
            raise ValueError("the network has no outputs (its last layer has 0 features), so it has no decision "
                             "boundary; give the last layer at least one output")
        if classes is None and n_outputs == 1:
            return clip_lines(self.polygons, maps[:, :, 0], self.frame)[1]
        if classes is not None or n_outputs == 2:
            first, second = (0, 1) if classes is None else _class_pair(classes, n_outputs)
            return clip_lines(self.polygons, maps[:, :, first] - maps[:, :, second], self.frame)[1]
        pieces = [self._top_logit_ties(maps, first, second)
                  for first in range(n_outputs) for second in range(first + 1, n_outputs)]
        return np.concatenate(pieces)

    def decision_boundary(self, classes=None) -> list[np.ndarray]:
        """The decision boundary as polylines; ``classes`` as in :meth:`boundary_segments`."""
        return join_segments(self.boundary_segments(classes))

    def _top_logit_ties(self, maps: np.ndarray, first: int, second: int) -> np.ndarray:
        hit, segments = clip_lines(self.polygons, maps[:, :, first] - maps[:, :, second], self.frame)
        if not hit.any():
            return segments
        region_maps = maps[hit]
        ends = np.concatenate([np.ones((len(segments), 2, 1)), segments], axis=2)
        logits = np.einsum("sej,sjo->seo", ends, region_maps)
        lead = logits[:, :, [first]] - np.delete(logits, [first, second], axis=2)
        start, stop = np.zeros(len(segments)), np.ones(len(segments))
        change = lead[:, 1] - lead[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = -lead[:, 0] / change
        start = np.maximum(start, np.where(change > 0, crossing, 0).max(axis=1, initial=0.0))
        stop = np.minimum(stop, np.where(change < 0, crossing, 1).min(axis=1, initial=1.0))
        never = ((change == 0) & (lead[:, 0] < 0)).any(axis=1)
        keep = (stop > start + 1e-12) & ~never
        direction = segments[:, 1] - segments[:, 0]
        return np.stack([segments[:, 0] + start[:, None] * direction, segments[:, 0] + stop[:, None] * direction],
                        axis=1)[keep]


def _class_pair(classes, n_outputs: int) -> tuple[int, int]:
    """``classes`` as two different output indices, or a ValueError that says what is expected."""
    try:
        first, second = classes
    except (TypeError, ValueError):
        raise ValueError(f"classes must be a pair of output indices (i, j), e.g. (0, 1); got {classes!r}") from None
    for index in (first, second):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
            raise ValueError(f"classes must be two whole numbers (output indices); got {classes!r}")
        if not 0 <= index < n_outputs:
            raise ValueError(f"class {index} does not exist: the network has {n_outputs} outputs (0 to "
                             f"{n_outputs - 1})")
    if first == second:
        raise ValueError(f"classes must be two different outputs; got {classes!r}")
    return int(first), int(second)


def ancestors(layers: list[LayerPartition], level: int, ancestor_level: int) -> np.ndarray:
    """For every region of partition level ``level``, the index of the region of ``ancestor_level`` holding it.

    Level ``-1`` is the undivided domain (one region).
    """
    if level < 0:
        return np.zeros(1, dtype=np.int64)
    index = np.arange(layers[level].num_regions)
    for current in range(level, ancestor_level, -1):
        index = layers[current].parent[index]
    return index


class MapsTooLarge(PartitionTooLarge):
    """The memory cap: the per-region affine maps held at once would exceed ``max_bytes``.

    :func:`spline_utils.engine.tiling.partition_in_tiles` catches it and partitions the domain in tiles instead.
    """

    def __init__(self, message: str, needed: int, max_bytes: int, bytes_per_region: int):
        super().__init__(message)
        self.needed, self.max_bytes, self.bytes_per_region = needed, max_bytes, bytes_per_region


def check_memory(n_regions: int, bytes_per_region: int, max_bytes: int, held: int = 0) -> None:
    """Raise :class:`MapsTooLarge` before allocating ``n_regions * bytes_per_region`` bytes on top of ``held`` bytes
    of maps when the sum exceeds ``max_bytes``."""
    needed = n_regions * bytes_per_region
    if held + needed > max_bytes:
        besides = f" besides the {readable_bytes(held)} of maps already held" if held else ""
        raise MapsTooLarge(
            f"the next layer's affine maps on {n_regions} regions need {readable_bytes(needed)}{besides}, more than "
            f"max_bytes={max_bytes} ({readable_bytes(max_bytes)}); shrink the bounds, use a smaller model, or raise "
            "max_bytes", held + needed, max_bytes, bytes_per_region)


def readable_bytes(n_bytes: int) -> str:
    """``n_bytes`` in the largest binary unit that keeps it at least 1, e.g. ``'1.5 GiB'`` or ``'1000 bytes'``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes} bytes"
