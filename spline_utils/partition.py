"""Exact input-space partition of a ReLU/LeakyReLU network on a 2-D domain or a 2-D slice.

Layer by layer (paper, section 2): the regions of layers ``1..l-1`` are convex polygons on which every pre-activation
of layer ``l`` is affine, ``h_k(p) = c_k + a_k . p``. Each region is cut by the zero lines of the nodes that cross it;
the pieces are the regions of layers ``1..l``. Nothing is sampled: the polygons, codes and affine maps are exact up to
float64 round-off.

The cutting lives in :mod:`spline_utils.cutting`, the propagation of per-region maps in
:mod:`spline_utils.propagate`.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn as nn

from .chain import Chain, activation_codes, is_chain, to_chain
from .cutting import cut_by_layer, lines_near_boxes
from .region_bound import PartitionTooLarge
from .polygons import Polygons, clip_lines, join_segments, rectangle
from .tolerance import Frame
from .propagate import apply_block, map_in_chunks, next_pre_activations
from .slices import Plane, grid_points

GRID_POINTS_PER_BATCH = 65536  # grid points whose codes one forward pass computes


class LayerPartition:
    """The partition after one hidden layer: the refinement of the previous layer's partition.

    Attributes
    ----------
    polygons : Polygons
        The regions, flat.
    parent : ndarray of int64, shape (n_regions,)
        Index of the region of the previous layer that contains each region (0 for the first layer: the domain).
    layer_codes : ndarray of bool, shape (n_regions, n_nodes_of_this_layer)
        This layer's activation code in each region.
    pre_activations : ndarray, shape (n_parent_regions, 3, n_nodes_of_this_layer)
        On each parent region, node ``k``'s pre-activation is ``pre[p, 0, k] + pre[p, 1, k] a + pre[p, 2, k] b``.
    slope : float
        The nonlinearity's negative slope (0 for ReLU).
    shape : tuple
        Per-sample shape of the layer's pre-activation (``(C, H, W)`` for a conv layer).
    """

    def __init__(self, polygons, parent, layer_codes, pre_activations, slope, shape):
        self.shape = shape
        self.polygons = polygons
        self.parent = parent
        self.layer_codes = layer_codes
        self.pre_activations = pre_activations
        self.slope = slope

    @property
    def num_regions(self) -> int:
        return len(self.polygons)

    @property
    def num_nodes(self) -> int:
        return self.layer_codes.shape[1]

    @property
    def regions(self) -> list[np.ndarray]:
        return self.polygons.split()

    def post_activations(self, index: np.ndarray) -> np.ndarray:
        """This layer's output as an affine map on regions ``index``, shape (len(index), 3, n_nodes)."""
        gain = np.where(self.layer_codes[index], 1.0, self.slope)
        return self.pre_activations[self.parent[index]] * gain[:, None, :]


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
        Activation code of each region, hidden nodes in layer order (as :func:`spline_utils.activation_codes`).
    layers : list of LayerPartition
    bounds : tuple (xmin, xmax, ymin, ymax)
    plane : Plane or None
    """

    def __init__(self, chain: Chain, bounds, plane, domain: Polygons, layers: list[LayerPartition],
                 input_state: np.ndarray):
        self.chain = chain
        self.bounds = bounds
        self.plane = plane
        self.domain = domain
        self.layers = layers
        self._input_state = input_state
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
        parts, index = [], np.arange(self.layers[layer].num_regions)
        for current in range(layer, -1, -1):
            parts.append(self.layers[current].layer_codes[index])
            index = self.layers[current].parent[index]
        return np.concatenate(parts[::-1], axis=1)

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
        if codes.ndim != 2 or codes.shape[1] != self.codes.shape[1]:
            raise ValueError(f"codes must have shape (n, {self.codes.shape[1]}); got {codes.shape}")
        lookup = {row.tobytes(): index for index, row in enumerate(np.packbits(self.codes, axis=1))}
        return np.array([lookup.get(row.tobytes(), -1) for row in np.packbits(codes, axis=1)], dtype=np.int64)

    def areas(self) -> np.ndarray:
        """Area of every region, shape (num_regions,)."""
        return self.polygons.areas()

    def interior_points(self) -> np.ndarray:
        """A point strictly inside every region (its vertex mean), shape (num_regions, 2)."""
        return self.polygons.vertex_means()

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
            if not self.layers:
                self._output_maps = apply_block(self.chain.blocks[-1], self._input_state)
            else:
                last = self.layers[-1]
                self._output_maps = map_in_chunks(
                    lambda index: apply_block(self.chain.blocks[-1], last.post_activations(index), last.shape),
                    last.num_regions)
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
        (:func:`spline_utils.cutting.lines_near_boxes`), so only those (parent, node) pairs are clipped, vectorized
        over pairs.
        """
        parents = self.polygons_after(layer - 1)
        pre = self.layers[layer].pre_activations[:, :, nodes]
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
            first, second = classes if classes is not None else (0, 1)
            for index in (first, second):
                if not 0 <= index < n_outputs:
                    raise ValueError(f"class {index} does not exist: the network has {n_outputs} outputs")
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


def partition2d(model: nn.Module, bounds=(-1.0, 1.0, -1.0, 1.0), plane: Plane | None = None,
                max_regions: int = 500_000, max_bytes: int = 4 * 2**30) -> Partition:
    """Exact partition of a 2-D domain (or of a 2-D slice of the input space) by a ReLU/LeakyReLU network.

    Parameters
    ----------
    model : torch.nn.Module
        Not modified. A plain (nested) ``nn.Sequential`` of Linear, Conv2d, BatchNorm (eval statistics are used),
        Flatten, AvgPool2d, Identity, Dropout, ReLU, LeakyReLU runs through the chain engine; any other module
        whose forward ``torch.fx`` can trace into the operations of :mod:`spline_utils.graph_ops` (residual
        connections, MaxPool2d, concatenation, functional ReLUs, ...) through the graph engine
        (:mod:`spline_utils.graph_partition`), with hidden layers in the order of
        :func:`spline_utils.activation_codes`.
    bounds : tuple (xmin, xmax, ymin, ymax)
        The rectangle to partition, in the 2-D coordinates.
    plane : Plane, optional
        Maps 2-D coordinates to the model's input (see :mod:`spline_utils.slices`). Without it the model's input
        must be 2-D.
    max_regions : int
        Stop with :class:`PartitionTooLarge` once a layer's partition would have more regions than this. Before a
        layer is cut, a lower bound on its region count (from where its lines cross) is checked, so a partition far
        above the cap stops within seconds. A whole number: ``None``, NaN or infinity do not turn the cap off.
    max_bytes : int
        Stop with :class:`PartitionTooLarge` before allocating per-region affine maps larger than this.

    Returns
    -------
    Partition
        ``.num_regions``, ``.regions``, ``.codes``, per-layer partitions in ``.layers``, affine maps, splines and
        the decision boundary.

    Raises
    ------
    TypeError
        An unsupported module (named in the message).
    ValueError
        Bad bounds or caps, an input size that does not match the model, non-finite or ``meta`` weights, a
        non-finite LeakyReLU slope, a BatchNorm whose ``running_var + eps`` is not positive.
    PartitionTooLarge
        The region or memory cap would be exceeded.
    """
    bounds = _check_bounds(bounds)
    max_regions = _check_cap("max_regions", max_regions, "regions")
    max_bytes = _check_cap("max_bytes", max_bytes, "bytes")
    domain = rectangle(bounds)
    frame = Frame.around(bounds)
    if not is_chain(model):
        from .graph_partition import graph_partition2d  # here, not at the top: graph_partition builds on this module
        input_state = _input_state((2,) if plane is None else None, plane).numpy()
        return graph_partition2d(model, bounds, plane, input_state, domain, frame, max_regions, max_bytes)
    chain = to_chain(model)
    input_state = _input_state(chain.input_shape, plane)
    shapes = _layer_shapes(chain, input_state, plane)
    layers: list[LayerPartition] = []
    for layer_index, (block, nonlinearity) in enumerate(zip(chain.blocks, chain.nonlinearities)):
        if layer_index == 0:
            pre, parents = apply_block(block, input_state), domain
        else:
            previous = layers[-1]
            check_memory(previous.num_regions, 3 * math.prod(shapes[layer_index]) * 8, max_bytes)
            pre = next_pre_activations(block, previous)
            parents = previous.polygons
        pieces, parent, layer_codes = cut_by_layer(parents, pre, frame, max_regions, layer_index)
        layers.append(LayerPartition(pieces, parent, layer_codes, pre, nonlinearity.slope, shapes[layer_index]))
    return Partition(chain, bounds, plane, domain, layers, input_state)


def grid_codes(model: nn.Module, bounds, resolution: int, plane: Plane | None = None,
               max_points: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Activation codes on a ``resolution x resolution`` grid: the sampling estimate the exact partition replaces.

    Returns
    -------
    points : ndarray, shape (resolution**2, 2)
        Grid cell centres (see :func:`spline_utils.grid_points`).
    codes : ndarray of bool, shape (resolution**2, n_nodes)
    """
    bounds = _check_bounds(bounds)
    if resolution < 1 or resolution**2 > max_points:
        raise ValueError(f"resolution must be in [1, {int(max_points**0.5)}], got {resolution}")
    _, _, points = grid_points(bounds, resolution)
    inputs = torch.as_tensor(points) if plane is None else plane(points)
    chunks = [activation_codes(model, inputs[start:start + GRID_POINTS_PER_BATCH]).numpy()
              for start in range(0, len(inputs), GRID_POINTS_PER_BATCH)]
    return points, np.concatenate(chunks)


def _check_bounds(bounds) -> tuple:
    try:
        values = tuple(float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be four numbers (xmin, xmax, ymin, ymax); got {bounds!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"bounds must be four finite numbers (xmin, xmax, ymin, ymax); got {bounds!r}")
    xmin, xmax, ymin, ymax = values
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"bounds need xmin < xmax and ymin < ymax; got {bounds!r}")
    return values


def _check_cap(name: str, value, units: str) -> int:
    """A cap as a positive int; ``None``, NaN, infinity, strings and fractions are refused (no cap means no cap)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 1 or value != int(value):
        raise ValueError(f"{name} must be a whole number >= 1 (the most {units} to allow; there is no setting that "
                         f"turns the cap off: pass a larger number), got {value!r}")
    return int(value)


def _layer_shapes(chain: Chain, input_state: np.ndarray, plane: Plane | None) -> list[tuple]:
    """The chain's layer shapes for the input; a model whose input size is unknown must take the 2-D points."""
    try:
        return chain.layer_shapes(input_state.shape[2:])
    except ValueError as error:
        if plane is not None or chain.input_shape is not None:
            raise
        raise ValueError(f"the model does not take 2-D points ({error}); pass plane=... (e.g. "
                         "spline_utils.image_canvas(image0, image1)) to partition a 2-D slice of its input") from error


def _input_state(input_shape: tuple | None, plane: Plane | None) -> torch.Tensor:
    """The input as an affine map of (a, b): shape (1, 3, *input_shape), rows offset, d/da, d/db.

    ``input_shape`` is the model's per-sample input shape where it is known, else ``None``.
    """
    if plane is None:
        if input_shape not in (None, (2,)):
            raise ValueError(f"the model expects inputs of shape {input_shape}, not 2-D points; pass plane=... "
                             "(e.g. spline_utils.image_canvas(image0, image1)) to partition a 2-D slice")
        state = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    else:
        if not isinstance(plane, Plane):
            raise ValueError(f"plane must be a spline_utils.Plane, got {type(plane).__name__}")
        if input_shape is not None and plane.input_shape != input_shape:
            raise ValueError(f"the plane gives inputs of shape {plane.input_shape} but the model expects "
                             f"{input_shape}")
        state = torch.stack([plane.origin, plane.u, plane.v])
    return state[None]


def check_memory(n_regions: int, bytes_per_region: int, max_bytes: int) -> None:
    """Raise :class:`PartitionTooLarge` before allocating ``n_regions * bytes_per_region`` bytes above ``max_bytes``."""
    needed = n_regions * bytes_per_region
    if needed > max_bytes:
        raise PartitionTooLarge(
            f"the next layer's affine maps on {n_regions} regions need {needed / 2**30:.1f} GiB, more than "
            f"max_bytes={max_bytes / 2**30:.1f} GiB; shrink the bounds, use a smaller model, or raise max_bytes")
