"""Spline early-bird training end to end, and a comparison with the usual pruning pipelines.

Spline-EB training (paper notes 1.6): train dense, detect the spline early-bird epoch ``t_EB``
(:class:`spline_utils.early_bird.SplineEarlyBird`), prune that ticket with the spline criterion
(:mod:`spline_utils.pruning.spline_criterion`), and train the pruned network for the rest of the learning-rate schedule.

:func:`compare` runs it next to its baselines on one data split, for several seeds and pruning ratios. One dense run
per seed (with network slimming's L1 penalty on the BatchNorm scales) provides every ticket:

* ``dense``: the dense network after the full schedule;
* ``spline-EB layerwise`` / ``spline-EB global``: the spline criterion at ``t_EB``;
* ``magnitude @EB`` / ``random @EB``: filter-norm and random pruning of the same ticket (same FLOPs, other
  criterion);
* ``mask-EB``: the original Early-Bird (You et al., 2020): the BatchNorm-scale mask detector at ratio ``p``, its
  ticket pruned by BatchNorm scale (global);
* ``network slimming``: the fully trained network pruned by BatchNorm scale (global), then fine-tuned.

Training FLOPs are counted with :mod:`spline_utils.training.flops` from the actual dense and pruned networks. An early-bird
method that trains ``e_EB`` of ``E`` epochs dense and the rest pruned, at a fraction ``f`` of the dense cost per epoch,
saves at most :func:`saving_bound` ``= 1 / (e_EB/E + (1 - e_EB/E) f)`` (less the detector's own cost).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from spline_utils.training import flops
from spline_utils import pruning
from spline_utils.pruning import spline_criterion as spline_pruning
from spline_utils.training import train
from spline_utils.early_bird.detectors import MaskEarlyBird, SplineEarlyBird
from spline_utils.training.recipes import TrainingRecipe
from spline_utils.pruning.surgery import check_node_surgery


@dataclass(frozen=True)
class Method:
    """How one method draws and prunes its ticket.

    ``criterion``: ``"spline"`` (:mod:`spline_utils.pruning.spline_criterion`) or a :func:`spline_utils.pruning.node_scores`
    criterion; ``scope``: layerwise or global selection; ``ticket``: the dense network at the spline EB epoch
    (``"spline-EB"``), at the mask EB epoch (``"mask-EB"``) or after full training (``"trained"``); ``None`` for the
    dense baseline.
    """

    criterion: str | None
    scope: str = "layerwise"
    ticket: str | None = None


METHODS = {
    "dense": Method(None),
    "spline-EB layerwise": Method("spline", "layerwise", "spline-EB"),
    "spline-EB global": Method("spline", "global", "spline-EB"),
    "magnitude @EB": Method("magnitude", "layerwise", "spline-EB"),
    "random @EB": Method("random", "layerwise", "spline-EB"),
    "mask-EB": Method("slimming", "global", "mask-EB"),
    "network slimming": Method("slimming", "global", "trained"),
}


@dataclass
class Split:
    """Training and test tensors and the per-sample input shape."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train_x.shape[1:])


@dataclass
class DenseRun:
    """One dense training run with every detector attached.

    Attributes
    ----------
    model : nn.Module
        The dense network after the full schedule.
    states : dict of int -> dict
        ``state_dict`` after every epoch (0 = initialization).
    spline_detector : SplineEarlyBird
        Its codes of every probe set after every epoch; ``spline_epoch`` is its EB epoch and ``spline_distances``
        the driving probe set's epoch-by-epoch distance matrix, shape (E, E).
    mask_detectors : dict of float -> MaskEarlyBird
        One per pruning ratio; ``mask_epochs`` maps the ratio to its EB epoch (or None).
    epoch_losses : list of float
        Mean training loss of every epoch.
    accuracy : float
        Test accuracy after the full schedule.
    seconds : float
        Wall time of the training run, detectors included.
    """

    model: nn.Module
    states: dict
    spline_detector: SplineEarlyBird
    mask_detectors: dict
    epoch_losses: list
    accuracy: float
    seconds: float

    @property
    def spline_epoch(self) -> int | None:
        return self.spline_detector.epoch

    @property
    def mask_epochs(self) -> dict:
        return {ratio: detector.epoch for ratio, detector in self.mask_detectors.items()}

    @property
    def spline_distances(self) -> np.ndarray:
        return self.spline_detector.matrix()

    def ticket(self, epoch: int) -> nn.Module:
        """A copy of the dense network after ``epoch`` epochs."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.states[epoch])
        return model.eval()


def saving_bound(eb_fraction, cost_fraction):
    """Training-FLOPs saving of early-bird training without the detector's cost: ``1 / (phi + (1 - phi) f)``.

    Parameters
    ----------
    eb_fraction : float or ndarray
        ``phi = e_EB / E``, the fraction of the schedule trained dense, in [0, 1].
    cost_fraction : float or ndarray
        ``f``, the pruned network's FLOPs per epoch over the dense network's, in (0, 1].

    Returns
    -------
    float or ndarray
        Dense training FLOPs over early-bird training FLOPs (broadcast over the arguments); ``1 / f`` at ``phi = 0``.
    """
    phi, f = np.asarray(eb_fraction, dtype=float), np.asarray(cost_fraction, dtype=float)
    if np.any((phi < 0) | (phi > 1)) or np.any((f <= 0) | (f > 1)):
        raise ValueError(f"need 0 <= eb_fraction <= 1 and 0 < cost_fraction <= 1; got {eb_fraction}, {cost_fraction}")
    bound = 1.0 / (phi + (1.0 - phi) * f)
    return float(bound) if bound.ndim == 0 else bound


def train_dense(model: nn.Module, split: Split, recipe: TrainingRecipe, ratios: Sequence[float], probe,
                seed: int = 0) -> DenseRun:
    """Train ``model`` (in place) for the full recipe with the L1 penalty, the spline and the mask detectors.

    Parameters
    ----------
    model : nn.Module
        A BatchNorm network.
    split : Split
    recipe : TrainingRecipe
    ratios : sequence of float
        Pruning ratios: one mask detector per ratio.
    probe : torch.Tensor of shape (n_probe, *input_shape), or mapping of str -> torch.Tensor
        Probe set(s) of the spline detector; the first one drives it.
    seed : int
        Batch order.
    """
    spline = SplineEarlyBird(probe, recipe.eb_threshold, recipe.eb_lookback)
    masks = {ratio: MaskEarlyBird(ratio, recipe.mask_fifo, recipe.mask_threshold) for ratio in ratios}
    snapshots = train.Snapshots(epochs=range(recipe.epochs + 1))
    penalty = [pruning.BatchNormL1(recipe.slimming_l1)] if recipe.slimming_l1 > 0 else []
    started = time.perf_counter()
    state = train.fit(model, split.train_x, split.train_y, seed=seed, **recipe.fit_arguments(),
                      callbacks=[*penalty, spline, snapshots, *masks.values()])
    seconds = time.perf_counter() - started
    return DenseRun(model, snapshots.at_epoch, spline, masks, state.epoch_losses,
                    train.accuracy(model, split.test_x, split.test_y), seconds)


def prune_ticket(model: nn.Module, method: Method, ratio: float, probe: torch.Tensor | None = None,
                 space: str = "parameter", seed: int = 0) -> nn.Sequential:
    """Prune ``ratio`` of the hidden nodes/channels of ``model`` (unchanged) with one method's criterion and scope.

    The spline criterion is :func:`spline_utils.pruning.spline_criterion.spline_keep_masks` in ``space`` (the data space uses
    ``probe``); the others are :func:`spline_utils.pruning.node_scores` criteria (``"random"`` seeded by ``seed``).
    """
    if method.criterion == "spline":
        distances = spline_pruning.spline_distances(model, space, probe)
        masks = spline_pruning.spline_keep_masks(distances, ratio, method.scope)
    else:
        options = {"seed": seed} if method.criterion == "random" else {}
        masks = pruning.select_nodes(pruning.node_scores(model, method.criterion, **options), ratio, method.scope)
    return pruning.prune_nodes(model, masks)


def compare(build_model: Callable[[int], nn.Module], split: Split, seeds: Sequence[int], ratios: Sequence[float],
            recipe: TrainingRecipe = TrainingRecipe(), probe_size: int = 256, space: str = "parameter",
            methods: Sequence[str] = tuple(METHODS), progress: bool = False) -> list[dict]:
    """Every method of :data:`METHODS` for every seed and ratio, with test accuracy and training FLOPs.

    Parameters
    ----------
    build_model : callable
        ``build_model(seed)`` returns a fresh BatchNorm ``nn.Sequential`` (e.g. ``nets.small_cnn``).
    split : Split
    seeds, ratios : sequences
    recipe : TrainingRecipe
    probe_size : int
        The spline detector's probe set: the first ``probe_size`` training inputs. Its forward pass after every
        dense epoch up to ``t_EB`` is counted in the FLOPs of the EB methods.
    space : {"parameter", "data"}
        Space of the spline criterion (the data space uses the probe set).
    methods : sequence of str
        A subset of :data:`METHODS`.
    progress : bool
        Show a progress bar over seeds.

    Returns
    -------
    list of dict
        One row per (method, ratio, seed): ``method, ratio, seed, accuracy, flops`` (total training FLOPs),
        ``epoch`` (when the ticket was drawn; ``None`` for dense), ``eb_fraction`` (``epoch / E`` for the
        early-bird methods, else ``None``), ``cost_fraction`` (the pruned network's FLOPs per epoch over the dense
        network's; 1 for dense), ``detected`` (whether the detector fired; else the ticket is the fully trained
        network and nothing is fine-tuned), ``parameters``.
    """
    unknown = set(methods) - set(METHODS)
    if unknown or not seeds or not ratios:
        raise ValueError(f"need seeds, ratios and methods from {tuple(METHODS)}; unknown: {sorted(unknown)}")
    if any(METHODS[name].criterion for name in methods):
        check_node_surgery(build_model(seeds[0]))  # before the dense run, not after it
    probe = split.train_x[:probe_size]
    iterator = seeds
    if progress:
        iterator = tqdm(seeds, desc="seeds")
    rows = []
    for seed in iterator:
        dense = train_dense(build_model(seed), split, recipe, ratios, probe, seed)
        cost = _Costs(dense.model, split, recipe, probe_size)
        if "dense" in methods:
            rows.append(dict(method="dense", ratio=0.0, seed=seed, accuracy=dense.accuracy, flops=cost.dense_total,
                             epoch=None, eb_fraction=None, cost_fraction=1.0, detected=True,
                             parameters=pruning.count_parameters(dense.model)))
        for ratio in ratios:
            for method in methods:
                if method != "dense":
                    rows.append(_run_method(method, ratio, seed, dense, split, recipe, probe, space, cost))
    return rows


class _Costs:
    """Training FLOPs of one seed's dense network, and of its pruned tickets."""

    def __init__(self, dense_model: nn.Module, split: Split, recipe: TrainingRecipe, probe_size: int):
        self.split = split
        self.dense_epoch = self.epoch_flops(dense_model)
        self.dense_total = recipe.epochs * self.dense_epoch
        self.detection = flops.forward_flops(dense_model, split.input_shape) * probe_size

    def epoch_flops(self, model: nn.Module) -> float:
        return flops.training_flops_per_epoch(model, self.split.input_shape, len(self.split.train_x))


def _run_method(name: str, ratio, seed, dense: DenseRun, split, recipe: TrainingRecipe, probe, space,
                cost: _Costs) -> dict:
    method = METHODS[name]
    if method.ticket == "trained":
        epoch, detected, eb_fraction = recipe.epochs, True, None
        pruned = prune_ticket(dense.model, method, ratio, seed=seed)
        train.fit(pruned, split.train_x, split.train_y, epochs=recipe.finetune_epochs, lr=recipe.finetune_lr,
                  milestones=[recipe.finetune_epochs // 2], seed=seed, **recipe.sgd())
        total = cost.dense_total + recipe.finetune_epochs * cost.epoch_flops(pruned)
    else:
        found = dense.mask_epochs[ratio] if method.ticket == "mask-EB" else dense.spline_epoch
        detected = found is not None
        epoch = found if detected else recipe.epochs
        eb_fraction = epoch / recipe.epochs
        pruned = prune_ticket(dense.ticket(epoch), method, ratio, probe, space, seed)
        train.fit(pruned, split.train_x, split.train_y, seed=seed, **recipe.rest(epoch))
        detection = cost.detection if method.ticket == "spline-EB" else 0.0
        total = flops.early_bird_training_flops(cost.dense_epoch, cost.epoch_flops(pruned), recipe.epochs, epoch,
                                                detection)
    return dict(method=name, ratio=ratio, seed=seed, accuracy=train.accuracy(pruned, split.test_x, split.test_y),
                flops=float(total), epoch=epoch, eb_fraction=eb_fraction,
                cost_fraction=cost.epoch_flops(pruned) / cost.dense_epoch, detected=detected,
                parameters=pruning.count_parameters(pruned))
