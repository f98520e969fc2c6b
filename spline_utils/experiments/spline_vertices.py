"""Which splines carry a vertex: bends of splines and turning points of decision boundaries (chapters 1 and 2).

A spline of layer ``l`` can only bend where it crosses an earlier spline, and a decision boundary can only turn where
it crosses a spline. Both claims are checked here with the network's own forward pass (:func:`hidden_pre_activations`,
forward pre-hooks on its ReLU/LeakyReLU modules), not with the partition engine's maps, so the check is independent
of the engine. Only the public :class:`~spline_utils.Partition` interface is used.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

NONLINEAR_MODULES = (nn.ReLU, nn.LeakyReLU)


def hidden_pre_activations(model: nn.Module, x) -> list[np.ndarray]:
    """Every hidden layer's pre-activation at inputs ``x``, from the model's own float64 forward pass in eval mode.

    The input of each ReLU/LeakyReLU module call is read by a forward pre-hook (before an in-place module overwrites
    it), in the order the forward runs them: for a network that calls each nonlinearity module once, in the order
    of :attr:`Partition.codes <spline_utils.Partition.codes>`. Runs on a copy; ``model`` is not touched.

    Parameters
    ----------
    model : torch.nn.Module
        Without :mod:`torch.nn.utils.prune` masks (remove them first).
    x : array-like, shape (n_samples, *input_shape)

    Returns
    -------
    list of ndarray, entry ``l`` of shape (n_samples, n_nodes_l)
        Layer ``l``'s pre-activations, flattened in C order.
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if x.dim() < 2:
        raise ValueError(f"x must have shape (n_samples, *input_shape); got {tuple(x.shape)}")
    network = copy.deepcopy(model).to(torch.float64).eval()
    recorded: list[np.ndarray] = []

    def record(_module, inputs):
        recorded.append(inputs[0].detach().reshape(len(x), -1).numpy().copy())

    for module in network.modules():
        if isinstance(module, NONLINEAR_MODULES):
            module.register_forward_pre_hook(record)
    with torch.no_grad():
        network(x)
    if not recorded:
        raise ValueError("the model has no ReLU or LeakyReLU module, so it has no hidden pre-activations")
    return recorded


def inputs_of(partition, points: np.ndarray) -> torch.Tensor:
    """The model inputs at 2-D points of ``partition``'s domain (through its plane for a slice)."""
    points = np.asarray(points, dtype=np.float64)
    return torch.as_tensor(points) if partition.plane is None else partition.plane(points)


def zero_nodes(model: nn.Module, partition, points: np.ndarray, tolerance: float = 1e-7) -> list[np.ndarray]:
    """Per hidden layer, which nodes have a zero pre-activation at each point: bool arrays (n_points, n_nodes_l).

    The pre-activations come from :func:`hidden_pre_activations`; ``points`` are 2-D coordinates of the partition.
    """
    values = hidden_pre_activations(model, inputs_of(partition, points))
    if [v.shape[1] for v in values] != list(partition.layer_sizes):
        raise ValueError(f"the model's forward runs hidden layers of sizes {[v.shape[1] for v in values]}, the "
                         f"partition has {list(partition.layer_sizes)}: pass the model the partition was made of")
    return [np.abs(v) < tolerance for v in values]


def interior_ends(segments: np.ndarray, bounds, tolerance: float = 1e-7) -> np.ndarray:
    """The distinct end points of segments (n, 2, 2) that lie strictly inside ``bounds``, shape (m, 2)."""
    ends = np.asarray(segments).reshape(-1, 2)
    xmin, xmax, ymin, ymax = bounds
    inside = ((ends[:, 0] > xmin + tolerance) & (ends[:, 0] < xmax - tolerance)
              & (ends[:, 1] > ymin + tolerance) & (ends[:, 1] < ymax - tolerance))
    return np.unique(ends[inside].round(12), axis=0)


def bends_on_earlier_splines(partition, model: nn.Module, layer: int, tolerance: float = 1e-7) -> tuple[float, int]:
    """Fraction of a layer's spline bends (segment ends inside the domain) that lie on a spline of an earlier layer.

    Returns
    -------
    fraction : float
        1.0 when every bend lies on an earlier spline (nan without bends).
    n_bends : int
    """
    bends = interior_ends(partition.layer_spline_segments(layer), partition.bounds, tolerance)
    if not len(bends):
        return float("nan"), 0
    zero = zero_nodes(model, partition, bends, tolerance)[:layer]
    on_earlier = np.any([is_zero.any(axis=1) for is_zero in zero], axis=0)
    return float(on_earlier.mean()), len(bends)


def crossing_nodes(partition, layer: int) -> np.ndarray:
    """Nodes of hidden ``layer`` whose spline crosses the domain: both of their codes occur in some region."""
    start = sum(partition.layer_sizes[:layer])
    codes = partition.codes[:, start:start + partition.layer_sizes[layer]]
    return np.nonzero(codes.any(axis=0) & ~codes.all(axis=0))[0]


class BoundaryBends:
    """The decision boundary's vertices inside the domain and the splines that carry them.

    Attributes
    ----------
    vertices : ndarray, shape (n, 2)
        The distinct segment ends of the boundary inside the domain: the only places where it can turn.
    on_spline : ndarray of bool, shape (n,)
        Whether some hidden node is zero at the vertex (checked with the model's forward pass).
    carriers : list of ndarray of int
        Per hidden layer, the nodes that are zero at some vertex: their splines carry a vertex.
    pieces : list of ndarray, each (k_l, 2, 2)
        Per hidden layer, the straight spline pieces (segments of :meth:`Partition.spline_segments`) through a vertex.
    strokes : list of ndarray, each (k_l, 2, 2)
        The same pieces cut to ``stroke`` on each side of the vertex, for drawing.
    zero : list of ndarray of bool, each (n, n_nodes_l)
        Per hidden layer, which nodes are zero at which vertex.
    """

    def __init__(self, partition, model: nn.Module, classes=None, stroke: float = 0.01, tolerance: float = 1e-7):
        self.vertices = interior_ends(partition.boundary_segments(classes), partition.bounds, tolerance)
        n_layers = len(partition.layer_sizes)
        self.zero = [np.zeros((len(self.vertices), size), dtype=bool) for size in partition.layer_sizes]
        self.carriers = [np.zeros(0, dtype=np.int64)] * n_layers
        self.pieces = [np.zeros((0, 2, 2))] * n_layers
        self.strokes = [np.zeros((0, 2, 2))] * n_layers
        if not len(self.vertices):
            self.on_spline = np.zeros(0, dtype=bool)
            return
        self.zero = zero = zero_nodes(model, partition, self.vertices, tolerance)
        self.on_spline = np.any([is_zero.any(axis=1) for is_zero in zero], axis=0)
        for layer, is_zero in enumerate(zero):
            self.carriers[layer] = np.nonzero(is_zero.any(axis=0))[0]
            found, around = [np.zeros((0, 2, 2))], [np.zeros((0, 2, 2))]
            for node in self.carriers[layer]:
                segments = partition.spline_segments(layer, int(node))
                through, cut = _pieces_through(segments, self.vertices[is_zero[:, node]], stroke, tolerance)
                found.append(through)
                around.append(cut)
            self.pieces[layer] = np.concatenate(found)
            self.strokes[layer] = np.concatenate(around)

    def vertices_per_node(self, layer: int) -> np.ndarray:
        """How many of the vertices lie on each node's spline of hidden ``layer``, shape (n_nodes_l,)."""
        return self.zero[layer].sum(axis=0)


def _pieces_through(segments: np.ndarray, points: np.ndarray, stroke: float, tolerance: float):
    """The segments that pass through any of ``points``, and each (segment, point) hit cut to +-``stroke``."""
    start, step = segments[:, None, 0], segments[:, None, 1] - segments[:, None, 0]
    length = np.sqrt((step ** 2).sum(-1)).clip(1e-300)
    t = np.clip(((points[None] - start) * step).sum(-1) / length ** 2, 0, 1)  # (segments, points)
    through = np.linalg.norm(start + t[..., None] * step - points[None], axis=-1) < tolerance
    piece, point = np.nonzero(through)
    reach = stroke / length[piece, 0]
    low, high = (np.clip(t[piece, point] + sign * reach, 0, 1) for sign in (-1, 1))
    cut = np.stack([segments[piece, 0] + low[:, None] * step[piece, 0],
                    segments[piece, 0] + high[:, None] * step[piece, 0]], axis=1)
    return segments[through.any(axis=1)], cut
