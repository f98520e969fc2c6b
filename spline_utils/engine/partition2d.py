"""The public entry point: :func:`partition2d` reads the model once and runs the engine on it; :func:`grid_codes`.

The model is read by :func:`spline_utils.reading.dispatch.read_model` into a :class:`~spline_utils.reading.sequential.Chain`
(plain ``nn.Sequential``) or a traced :class:`~spline_utils.reading.graph_ir.Graph` (everything else); the engine
cuts either layer by layer (:mod:`spline_utils.engine.cutting`) and returns one :class:`Partition` type.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn as nn

from spline_utils.checks import check_bool
from spline_utils.engine.partition import Partition
from spline_utils.engine.slices import Plane, grid_points
from spline_utils.engine.thread_pools import engine_thread_pools
from spline_utils.engine.tiling import partition_in_tiles
from spline_utils.engine.tolerance import Frame
from spline_utils.reading.dispatch import read_model
from spline_utils.reading.graph_ir import Graph
from spline_utils.reading.oracle import activation_codes
from spline_utils.reading.sequential import Chain

GRID_POINTS_PER_BATCH = 65536  # grid points whose codes one forward pass computes

def partition2d(model: nn.Module, bounds=(-1.0, 1.0, -1.0, 1.0), plane: Plane | None = None,
                max_regions: int = 500_000, max_bytes: int = 2**30, keep_output_maps: bool = True) -> Partition:
    """Exact partition of a 2-D domain (or of a 2-D slice of the input space) by a ReLU/LeakyReLU network.

    Parameters
    ----------
    model : torch.nn.Module
        Not modified. A plain (nested) ``nn.Sequential`` of Linear, Conv2d, BatchNorm (eval statistics are used),
        Flatten, AvgPool2d, Identity, Dropout, ReLU, LeakyReLU runs through the chain engine; any other module
        whose forward ``torch.fx`` can trace into the operations of :mod:`spline_utils.reading.graph_ops` (residual
        connections, MaxPool2d, concatenation, functional ReLUs, ...) through the graph engine
        (:mod:`spline_utils.engine.graph_partition`), with hidden layers in the order of
        :func:`spline_utils.activation_codes`.
    bounds : tuple (xmin, xmax, ymin, ymax)
        The rectangle to partition, in the 2-D coordinates: four finite numbers with a finite area. Detail finer
        than about 1e-10 of its half-width is not resolved (see :mod:`spline_utils.engine.partition`); a
        :class:`~spline_utils.engine.tolerance.ResolutionWarning` says when that merged a region.
    plane : Plane, optional
        Maps 2-D coordinates to the model's input (see :mod:`spline_utils.engine.slices`). Without it the model's input
        must be 2-D.
    max_regions : int
        Stop with :class:`PartitionTooLarge` once a layer's partition would have more regions than this. Before a
        layer is cut, a lower bound on its region count (from where its lines cross) is checked, so a partition far
        above the cap stops within seconds. A whole number: ``None``, NaN or infinity do not turn the cap off.
    max_bytes : int
        The most bytes of per-region affine maps, codes and polygons the engine holds at once. Maps that would need
        more are computed a chunk of regions at a time (the later layers of a chunk of a layer's regions, exactly
        as in one piece; :mod:`spline_utils.engine.graph_partition`); a partition whose codes and polygons alone
        need more is computed in tiles of the rectangle, each within this budget, and merged exactly
        (:mod:`spline_utils.engine.tiling`); :class:`PartitionTooLarge` when even that is not possible (the budget
        holds fewer than 1,000 regions, or the regions crowd so closely around a point that smaller tiles do not
        help). The process's peak is higher: the result and the cut's temporaries come on top (see the README for
        measured peaks).
    keep_output_maps : bool
        ``False`` for a canvas whose partition alone nearly fills the memory: where ``max_bytes`` makes the engine
        continue layers a chunk of regions at a time, the output maps on their regions (3 x outputs floats a region)
        are not kept, and are computed again from the regions' codes when first asked for
        (:meth:`Partition.output_maps`, the decision boundary, ``affine_maps``): a forward pass of the network per
        region, which can take longer than the partition itself (about 2x on the PreAct ResNet). Tiles always keep
        theirs.

    Returns
    -------
    Partition
        ``.num_regions``, ``.regions``, ``.codes``, per-layer partitions in ``.layers``, affine maps, splines and
        the decision boundary.

    Notes
    -----
    The engine's inner loops are compiled by numba on first use in a fresh environment (about 5-10 s on a 2-core
    CPU) and cached on disk beside the package, so later calls and later processes start at once.

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
    keep_output_maps = check_bool("keep_output_maps", keep_output_maps)
    if plane is not None and not isinstance(plane, Plane):
        raise ValueError(f"plane must be a spline_utils.Plane, got {type(plane).__name__}")
    frame = Frame.around(bounds)
    with engine_thread_pools(0):  # reading runs small torch operations: one thread, not two pools that fight
        network, input_state = _read(model, plane)
    widest = max([0] + [math.prod(network.nodes[index].shape) for index in network.relu_nodes])
    with engine_thread_pools(widest):
        return partition_in_tiles(network, bounds, plane, input_state, frame, max_regions, max_bytes,
                                  keep_output_maps)


def _read(model: nn.Module, plane: Plane | None) -> tuple[Graph, np.ndarray]:
    """The model as the engine's graph, and the input as an affine map of the 2-D coordinates (1, 3, *input)."""
    network = read_model(model, (2,) if plane is None else plane.input_shape)
    if not isinstance(network, Chain):
        return network, _input_state(network.input_shape, plane).numpy()
    # a chain is read without tracing: its input shape (when its first module does not say) and layer shapes here
    input_state = _input_state(network.input_shape, plane)
    network = network.to_graph(tuple(input_state.shape[2:]), _layer_shapes(network, input_state, plane))
    return network, input_state.numpy()


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
    """``bounds`` as four floats ``(xmin, xmax, ymin, ymax)`` of a rectangle with finite width, height and area."""
    if isinstance(bounds, (str, bytes)) or any(isinstance(b, (str, bytes)) for b in _items(bounds)):
        raise ValueError(f"bounds must be four numbers (xmin, xmax, ymin, ymax), not text; got {bounds!r}")
    try:
        values = tuple(float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be four numbers (xmin, xmax, ymin, ymax); got {bounds!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"bounds must be four finite numbers (xmin, xmax, ymin, ymax); got {bounds!r}")
    xmin, xmax, ymin, ymax = values
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"bounds need xmin < xmax and ymin < ymax; got {bounds!r}")
    if not math.isfinite((xmax - xmin) * (ymax - ymin)):
        raise ValueError(f"the rectangle {bounds!r} is too large for float64 (its width, height or area overflows); "
                         "partition a smaller rectangle")
    return values


def _items(bounds) -> list:
    try:
        return list(bounds)
    except TypeError:
        return []


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


