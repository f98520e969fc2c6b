"""Why overparametrize, then prune: the sawtooth (Fig 11), k-means (Fig 10) and training strategies (Fig 9).

Three small experiments with one message: a small model that *could* solve a task is hard to find by local search
from a random start; a larger model is easy to train, and pruning it back keeps the solution.

* Sawtooth regression (Fig 11): :func:`sawtooth_task`, the exact hand-built 4-unit network
  :func:`exact_sawtooth_net`, many one-hidden-layer nets trained at once by :class:`ShallowEnsemble`, their 1-D
  partitions (:func:`knots`) and :func:`width_sweep`.
* K-means (Fig 10): :func:`gaussian_grid`, :func:`lloyd`, :func:`prune_centroids`, :func:`recovered_centres`.
* Training strategies (Fig 9) for MLPs with the cost counted analytically: :func:`mlp_training_flops`,
  :func:`prune_mlp` (node surgery and lottery rewinding from :mod:`spline_utils.pruning`), :func:`layerwise_pretrain`
  and :func:`compare_strategies`.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import pruning
from .nets import mlp
from .train import Callback, TrainState, accuracy, fit

# ---------------------------------------------------------------------------------------------------------------
# Fig 11: a sawtooth with two peaks
# ---------------------------------------------------------------------------------------------------------------

#: The hand-built solution: ``sawtooth(x) = sum_k a_k relu(x - t_k)`` on [-1, 1], knots ``t_k``, slopes ``a_k``.
SAWTOOTH_KNOTS = (-1.0, -0.5, 0.0, 0.5)
SAWTOOTH_SLOPE_CHANGES = (2.0, -4.0, 4.0, -4.0)


def sawtooth(x: torch.Tensor) -> torch.Tensor:
    """The target: a sawtooth with two peaks on [-1, 1], 0 at -1, 0 and 1, peaks of height 1 at -0.5 and 0.5."""
    return sum(a * F.relu(x - t) for a, t in zip(SAWTOOTH_SLOPE_CHANGES, SAWTOOTH_KNOTS))


def sawtooth_task(n_samples: int = 101, dtype: torch.dtype = torch.float32):
    """``n_samples`` evenly spaced points on [-1, 1] and their sawtooth values.

    Returns
    -------
    x, y : torch.Tensor, shape (n_samples, 1) each
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    x = torch.linspace(-1.0, 1.0, n_samples, dtype=dtype)[:, None]
    return x, sawtooth(x)


def exact_sawtooth_net(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A 1-4-1 ReLU network equal to :func:`sawtooth` on [-1, 1]: unit k is ``relu(x - t_k)``, weighted by ``a_k``."""
    net = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1)).to(dtype)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(-torch.tensor(SAWTOOTH_KNOTS, dtype=dtype))
        net[2].weight.copy_(torch.tensor([SAWTOOTH_SLOPE_CHANGES], dtype=dtype))
        net[2].bias.zero_()
    return net


class ShallowEnsemble(nn.Module):
    """``M`` independent one-hidden-layer ReLU nets ``1 -> width -> 1`` evaluated in one batched pass.

    Member ``m`` starts exactly as ``nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1))`` built
    after ``torch.manual_seed(seeds[m])``. Trained with :func:`ensemble_mse` (a sum over members) and an elementwise
    optimizer (SGD, Adam), every member follows the same trajectory it would follow alone.

    Parameters
    ----------
    width : int
    seeds : sequence of int, length M
    """

    def __init__(self, width: int, seeds: Sequence[int]):
        super().__init__()
        if width < 1 or not len(seeds):
            raise ValueError(f"need width >= 1 and at least one seed, got width={width}, seeds={seeds}")
        members = []
        with torch.random.fork_rng(devices=[]):
            for seed in seeds:
                torch.manual_seed(int(seed))
                members.append(nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1)))
        self.width, self.seeds = int(width), [int(s) for s in seeds]
        self.w1 = nn.Parameter(torch.stack([m[0].weight[:, 0] for m in members]).detach())  # (M, width)
        self.b1 = nn.Parameter(torch.stack([m[0].bias for m in members]).detach())  # (M, width)
        self.w2 = nn.Parameter(torch.stack([m[2].weight[0] for m in members]).detach())  # (M, width)
        self.b2 = nn.Parameter(torch.stack([m[2].bias[0] for m in members]).detach())  # (M,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (n, 1) -> outputs (n, M), column m is member m."""
        hidden = F.relu(x[:, :, None] * self.w1[None] + self.b1[None])  # (n, M, width)
        return (hidden * self.w2[None]).sum(-1) + self.b2[None]

    def member(self, index: int) -> nn.Sequential:
        """Member ``index`` as a stand-alone ``nn.Sequential`` (a copy)."""
        net = nn.Sequential(nn.Linear(1, self.width), nn.ReLU(), nn.Linear(self.width, 1))
        with torch.no_grad():
            net[0].weight.copy_(self.w1[index][:, None])
            net[0].bias.copy_(self.b1[index])
            net[2].weight.copy_(self.w2[index][None])
            net[2].bias.fill_(float(self.b2[index]))
        return net


def ensemble_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean squared error; ``outputs`` (n, M), ``targets`` (n, 1)."""
    return ((outputs - targets) ** 2).mean(dim=0).sum()


def width_sweep(widths: Sequence[int], seeds: Sequence[int], steps: int, lr: float = 0.01, n_samples: int = 101):
    """Train one ensemble per width on the sawtooth with full-batch Adam; return errors and the trained ensembles.

    Returns
    -------
    errors : ndarray, shape (len(widths), len(seeds))
        Final training mean squared error of every net.
    ensembles : dict of int -> ShallowEnsemble
    """
    x, y = sawtooth_task(n_samples)
    errors, ensembles = [], {}
    for width in widths:
        ensemble = ShallowEnsemble(width, seeds)
        fit(ensemble, x, y, epochs=steps, batch_size=len(x), optimizer=torch.optim.Adam(ensemble.parameters(), lr),
            loss_fn=ensemble_mse, seed=0)
        with torch.no_grad():
            errors.append(((ensemble(x) - y) ** 2).mean(dim=0).numpy())
        ensembles[int(width)] = ensemble
    return np.array(errors), ensembles


def knots(net: nn.Sequential, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """The 1-D partition of a ``1 -> width -> 1`` ReLU net: sorted knots ``-b_k / w_k`` inside ``[low, high]``.

    Units with ``w_k = 0`` (constant) or a zero outgoing weight (no kink in the output) have no knot.
    """
    first, last = net[0], net[-1]
    if first.in_features != 1 or last.out_features != 1:
        raise ValueError("knots needs a 1 -> width -> 1 network (nn.Sequential(Linear(1, w), ReLU, Linear(w, 1)))")
    w, b = first.weight[:, 0].detach().double(), first.bias.detach().double()
    used = (w != 0) & (last.weight[0].detach() != 0)
    points = (-b[used] / w[used]).numpy()
    return np.sort(points[(points >= low) & (points <= high)])


# ---------------------------------------------------------------------------------------------------------------
# Fig 10: k-means on a grid of Gaussians
# ---------------------------------------------------------------------------------------------------------------

def gaussian_grid(side: int = 8, spacing: float = 1.0, std: float = 0.1, per_cluster: int = 50, seed: int = 0):
    """A mixture of ``side**2`` isotropic 2-D Gaussians centred on a ``side x side`` grid.

    Returns
    -------
    points : ndarray, shape (side**2 * per_cluster, 2)
    centres : ndarray, shape (side**2, 2)
    """
    if side < 1 or per_cluster < 1 or std <= 0 or spacing <= 0:
        raise ValueError("need side >= 1, per_cluster >= 1, std > 0 and spacing > 0")
    grid = np.arange(side) * spacing
    centres = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    noise = np.random.default_rng(seed).normal(0.0, std, size=(len(centres), per_cluster, 2))
    return (centres[:, None, :] + noise).reshape(-1, 2), centres


def squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared Euclidean distances, shapes ``points`` (n, d) and ``centroids`` (k, d)."""
    distances = np.zeros((len(points), len(centroids)))
    for dim in range(points.shape[1]):
        distances += np.subtract.outer(points[:, dim], centroids[:, dim]) ** 2
    return distances


def kmeans_cost(points: np.ndarray, centroids: np.ndarray) -> float:
    """Sum of squared distances of every point to its nearest centroid (sklearn's ``inertia_``)."""
    return float(squared_distances(points, centroids).min(axis=1).sum())


def random_init(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` distinct data points drawn uniformly (Forgy initialization)."""
    if not 1 <= k <= len(points):
        raise ValueError(f"need 1 <= k <= {len(points)} points, got k={k}")
    return points[np.random.default_rng(seed).choice(len(points), size=k, replace=False)].copy()


def lloyd(points: np.ndarray, centroids: np.ndarray, max_iter: int = 300) -> np.ndarray:
    """Lloyd's algorithm from ``centroids`` (k, 2) until the assignment stops changing; returns new centroids.

    A centroid that loses all its points stays where it is.
    """
    centroids = np.array(centroids, dtype=float)
    labels = None
    for _ in range(max_iter):
        new_labels = squared_distances(points, centroids).argmin(axis=1)
        if labels is not None and np.array_equal(labels, new_labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=len(centroids))
        sums = np.stack([np.bincount(labels, points[:, d], len(centroids)) for d in range(points.shape[1])], 1)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


def removal_costs(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Exact increase of :func:`kmeans_cost` when each centroid alone is removed, shape (k,).

    The points of centroid c move to their second-nearest centroid: the increase is the sum over them of
    (second-nearest minus nearest squared distance).
    """
    if len(centroids) < 2:
        raise ValueError("need at least two centroids to remove one")
    distances = squared_distances(points, centroids)
    nearest = distances.argmin(axis=1)
    two_smallest = np.partition(distances, 1, axis=1)[:, :2]
    return np.bincount(nearest, two_smallest[:, 1] - two_smallest[:, 0], minlength=len(centroids))


def prune_centroids(points: np.ndarray, centroids: np.ndarray, k: int, lloyd_steps: int = 300):
    """Overparametrize-then-prune k-means: from more than ``k`` converged centroids down to ``k``.

    Repeatedly remove the centroid whose removal increases the cost least (:func:`removal_costs`), then run Lloyd
    (at most ``lloyd_steps`` iterations) from the survivors.

    Returns
    -------
    centroids : ndarray, shape (k, 2)
    history : list of ndarray
        The centroids after every removal (and the start), from ``len(centroids)`` down to ``k``.
    """
    if not 1 <= k <= len(centroids):
        raise ValueError(f"need 1 <= k <= {len(centroids)} centroids, got k={k}")
    current = np.array(centroids, dtype=float)
    history = [current]
    while len(current) > k:
        current = np.delete(current, int(removal_costs(points, current).argmin()), axis=0)
        current = lloyd(points, current, lloyd_steps)
        history.append(current)
    return current, history


def recovered_centres(centres: np.ndarray, centroids: np.ndarray, radius: float) -> np.ndarray:
    """Which true centres are recovered, bool (n_centres,).

    Centre j is recovered when its nearest centroid is within ``radius`` and that centroid's nearest true centre is
    j (mutual nearest neighbours: one centroid never recovers two centres).
    """
    distances = squared_distances(centres, centroids)
    nearest_centroid = distances.argmin(axis=1)
    nearest_centre = distances.argmin(axis=0)
    close = distances[np.arange(len(centres)), nearest_centroid] <= radius ** 2
    return close & (nearest_centre[nearest_centroid] == np.arange(len(centres)))


# ---------------------------------------------------------------------------------------------------------------
# Fig 9: training strategies for small MLPs, with the cost counted
# ---------------------------------------------------------------------------------------------------------------

def mlp_forward_flops(widths: Sequence[int]) -> int:
    """Forward FLOPs of one sample through ``nets.mlp(widths)``: ``2 * in * out`` per Linear (as
    :class:`torch.utils.flop_counter.FlopCounterMode` counts; biases and ReLUs are not counted)."""
    return int(sum(2 * a * b for a, b in zip(widths[:-1], widths[1:])))


def mlp_training_flops(widths: Sequence[int], n_samples: int, epochs: int, first_trainable: int = 0) -> int:
    """Training FLOPs: every sample of every epoch costs one forward pass plus a backward pass of twice the forward
    cost of the trainable Linear layers (index ``first_trainable`` on; the frozen ones before need no backward).

    With every layer trainable this is ``3 x forward x samples x epochs``.
    """
    trainable = mlp_forward_flops(list(widths)[first_trainable:])
    return int(n_samples * epochs * (mlp_forward_flops(widths) + 2 * trainable))


def linear_layers(model: nn.Sequential) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of an MLP, in order."""
    return [module for module in model if isinstance(module, nn.Linear)]


def prune_mlp(model: nn.Sequential, keep: Sequence[int], initial_model: nn.Module | None = None) -> nn.Sequential:
    """Keep the ``keep[l]`` nodes of hidden layer l with the largest incoming-weight L2 norm (the authors' FCNet
    criterion, ``pruning.node_scores(model, "magnitude")``) and remove the rest (``pruning.prune_nodes``).

    Parameters
    ----------
    model : nn.Sequential
        An MLP built by :func:`spline_utils.nets.mlp`.
    keep : sequence of int
        Nodes to keep per hidden layer.
    initial_model : nn.Module, optional
        A copy of ``model`` at initialization: the survivors are rewound to their *own* initial weights
        (``pruning.rewind``, the lottery ticket). Without it the pruned net keeps the trained weights.

    Returns
    -------
    nn.Sequential
        A new, smaller MLP; ``model`` is unchanged.
    """
    scores = pruning.node_scores(model, "magnitude")
    if len(keep) != len(scores) or any(not 1 <= k <= len(score) for k, score in zip(keep, scores)):
        raise ValueError(f"keep needs one count in [1, width] per hidden layer, got {list(keep)} for widths "
                         f"{[len(score) for score in scores]}")
    masks = [pruning.select_nodes([score], 1.0 - k / len(score))[0] for score, k in zip(scores, keep)]
    pruned = pruning.prune_nodes(model, masks)
    return pruning.rewind(pruned, initial_model, masks) if initial_model is not None else pruned


def layerwise_pretrain(widths: Sequence[int], x: torch.Tensor, y: torch.Tensor, stage_epochs: int,
                       finetune_epochs: int, lr: float = 0.01, momentum: float = 0.0, batch_size: int = 64,
                       seed: int = 0, stage_callbacks=None) -> nn.Sequential:
    """Greedy layerwise pretraining, then fine-tuning of the whole MLP ``widths``.

    Stage l (l = 1, ..., L-1) trains hidden layer l and a fresh linear head for ``stage_epochs`` while the layers
    below stay frozen; the last stage fine-tunes every layer for ``finetune_epochs``.

    Parameters
    ----------
    widths : sequence of int
        The final MLP, input first, e.g. ``(2, 8, 8, 2)``.
    x, y : torch.Tensor
        Training data, shapes (n, widths[0]) and (n,).
    stage_callbacks : callable, optional
        ``stage_callbacks(stage_widths, first_trainable) -> list of Callback`` for each stage (e.g. a cost trace);
        ``first_trainable`` indexes the first trained Linear of ``nets.mlp(stage_widths)``.

    Returns
    -------
    nn.Sequential
        The trained MLP, same architecture as ``nets.mlp(widths)``.
    """
    widths = list(widths)
    if len(widths) < 3:
        raise ValueError(f"layerwise pretraining needs at least one hidden layer, got widths {widths}")
    hidden = len(widths) - 2
    stages = [(widths[:depth + 1] + [widths[-1]], depth - 1, stage_epochs) for depth in range(1, hidden + 1)]
    stages.append((widths, 0, finetune_epochs))
    model = None
    for stage, (stage_widths, first_trainable, epochs) in enumerate(stages):
        grown = mlp(stage_widths, seed=seed + stage)
        if model is not None:
            inherited = linear_layers(model)
            if stage < len(stages) - 1:
                inherited = inherited[:-1]  # a new head on top of the frozen layers
            for old, new in zip(inherited, linear_layers(grown)):
                new.load_state_dict(old.state_dict())
        for frozen in linear_layers(grown)[:first_trainable]:
            frozen.requires_grad_(False)
        trainable = [p for layer in linear_layers(grown)[first_trainable:] for p in layer.parameters()]
        callbacks = stage_callbacks(stage_widths, first_trainable) if stage_callbacks else ()
        fit(grown, x, y, epochs, optimizer=torch.optim.SGD(trainable, lr=lr, momentum=momentum),
            batch_size=batch_size, callbacks=callbacks, seed=seed + stage)
        model = grown
    return model


class CostAccuracyTrace(Callback):
    """Records ``(cumulative training FLOPs, test accuracy)`` after every epoch, starting from ``start_flops``."""

    def __init__(self, x_test: torch.Tensor, y_test: torch.Tensor, flops_per_epoch: float, start_flops: float = 0.0,
                 trace: list | None = None):
        self.x_test, self.y_test = x_test, y_test
        self.flops_per_epoch, self.flops = float(flops_per_epoch), float(start_flops)
        self.trace = [] if trace is None else trace

    def on_epoch_end(self, state: TrainState) -> None:
        self.flops += self.flops_per_epoch
        self.trace.append((self.flops, accuracy(state.model, self.x_test, self.y_test)))


STRATEGIES = ("random init", "lottery ticket", "layerwise pretraining", "overparametrize + prune")


def compare_strategies(data: tuple, small: Sequence[int], dense: Sequence[int], epochs: int, finetune_epochs: int,
                       seed: int = 0, lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64) -> dict:
    """Train the small MLP ``small`` four ways and trace test accuracy against cumulative training FLOPs.

    * random init: ``nets.mlp(small)`` trained ``epochs`` epochs;
    * lottery ticket: ``nets.mlp(dense)`` trained ``epochs``, pruned to ``small`` (:func:`prune_mlp`), the survivors
      rewound to their own initial weights and retrained ``epochs``;
    * layerwise pretraining (:func:`layerwise_pretrain`): ``epochs // 2`` per stage, then ``finetune_epochs``;
    * overparametrize + prune: the same trained dense net, pruned, fine-tuned ``finetune_epochs`` without rewinding.

    Parameters
    ----------
    data : tuple
        ``(x_train, y_train, x_test, y_test)``, inputs flattened to ``(n, small[0])``.

    Returns
    -------
    dict
        ``strategy -> list of (cumulative FLOPs, test accuracy)`` after every epoch, for :data:`STRATEGIES` and
        ``"dense"`` (the dense net that the lottery ticket and the pruned net start from).
    """
    x_train, y_train, x_test, y_test = data
    if len(small) != len(dense) or (small[0], small[-1]) != (dense[0], dense[-1]):
        raise ValueError(f"small {small} and dense {dense} need the same depth, input and output sizes")
    if epochs < 2 or finetune_epochs < 1:
        raise ValueError(f"need epochs >= 2 and finetune_epochs >= 1, got {epochs} and {finetune_epochs}")
    n_train, settings = len(x_train), dict(lr=lr, momentum=momentum, batch_size=batch_size)
    traces = {name: [] for name in (*STRATEGIES, "dense")}

    def trace(name, widths, start=0.0, first_trainable=0):
        flops = mlp_training_flops(widths, n_train, 1, first_trainable)
        return [CostAccuracyTrace(x_test, y_test, flops, start, traces[name])]

    fit(mlp(small, seed=seed), x_train, y_train, epochs, seed=seed, callbacks=trace(STRATEGIES[0], small), **settings)
    big = mlp(dense, seed=seed)
    initial = copy.deepcopy(big)
    fit(big, x_train, y_train, epochs, seed=seed, callbacks=trace("dense", dense), **settings)
    dense_cost, keep = traces["dense"][-1][0], list(small)[1:-1]
    fit(prune_mlp(big, keep, initial), x_train, y_train, epochs, seed=seed,
        callbacks=trace(STRATEGIES[1], small, dense_cost), **settings)
    layerwise = traces[STRATEGIES[2]]
    layerwise_pretrain(small, x_train, y_train, epochs // 2, finetune_epochs, seed=seed, **settings,
                       stage_callbacks=lambda widths, first: trace(STRATEGIES[2], widths,
                                                                   layerwise[-1][0] if layerwise else 0.0, first))
    fit(prune_mlp(big, keep), x_train, y_train, finetune_epochs, seed=seed,
        callbacks=trace(STRATEGIES[3], small, dense_cost), **settings)
    return traces
