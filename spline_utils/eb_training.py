"""Spline early-bird training end to end, and a comparison with the usual pruning pipelines.

Spline-EB training (paper notes 1.6): train dense, detect the spline early-bird epoch ``t_EB``
(:class:`spline_utils.early_bird.SplineEarlyBird`), prune that ticket with the spline criterion
(:mod:`spline_utils.spline_pruning`), and train the pruned network for the rest of the learning-rate schedule.

:func:`compare` runs it next to its baselines on one data split, for several seeds and pruning ratios. One dense run
per seed (with network slimming's L1 penalty on the BatchNorm scales) provides every ticket:

* ``dense``: the dense network after the full schedule;
* ``spline-EB layerwise`` / ``spline-EB global``: the spline criterion at ``t_EB``;
* ``magnitude @EB`` / ``random @EB``: filter-norm and random pruning of the same ticket (same FLOPs, other
  criterion);
* ``mask-EB``: the original Early-Bird (You et al., 2020): the BatchNorm-scale mask detector at ratio ``p``, its
  ticket pruned by BatchNorm scale (global);
* ``network slimming``: the fully trained network pruned by BatchNorm scale (global), then fine-tuned.

Training FLOPs are counted with :mod:`spline_utils.flops` from the actual dense and pruned networks.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import flops, pruning, spline_pruning, train
from .early_bird import BatchNormL1, MaskEarlyBird, SplineEarlyBird

METHODS = ("dense", "spline-EB layerwise", "spline-EB global", "magnitude @EB", "random @EB", "mask-EB",
           "network slimming")


@dataclass(frozen=True)
class Schedule:
    """SGD with step learning-rate drops at fractions of training, and the detectors' settings.

    ``milestones`` are fractions of ``epochs`` (the paper: 0.5 and 0.75 of 160 epochs). ``finetune_epochs`` is the
    length of network slimming's fine-tuning after full training, at ``finetune_lr`` with one x0.1 drop halfway.
    """

    epochs: int = 20
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    milestones: tuple = (0.5, 0.75)
    slimming_l1: float = 1e-4
    eb_threshold: float = 0.16
    eb_lookback: int = 3
    mask_fifo: int = 5
    mask_threshold: float = 0.1
    finetune_epochs: int = 10
    finetune_lr: float = 0.01

    def __post_init__(self):
        if self.epochs < 1 or self.finetune_epochs < 0 or not all(0 < m < 1 for m in self.milestones):
            raise ValueError(f"need epochs >= 1, finetune_epochs >= 0 and milestones in (0, 1), got {self}")

    @property
    def milestone_epochs(self) -> tuple:
        """The epochs after which the learning rate drops x0.1."""
        return tuple(round(m * self.epochs) for m in self.milestones)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of the epoch that follows ``epoch`` completed epochs."""
        return self.lr * 0.1 ** sum(epoch >= m for m in self.milestone_epochs)

    def rest(self, epoch: int) -> dict:
        """``fit`` keywords that continue the schedule after ``epoch`` completed epochs."""
        return dict(epochs=self.epochs - epoch, lr=self.lr_at(epoch),
                    milestones=[m - epoch for m in self.milestone_epochs if m > epoch])

    def sgd(self) -> dict:
        return dict(momentum=self.momentum, weight_decay=self.weight_decay, batch_size=self.batch_size)


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
    spline_epoch : int or None
        Spline early-bird epoch.
    mask_epochs : dict of float -> int or None
        Mask early-bird epoch per pruning ratio.
    spline_distances : ndarray, shape (E, E)
        The spline detector's epoch-by-epoch distance matrix.
    """

    model: nn.Module
    states: dict
    spline_epoch: int | None
    mask_epochs: dict
    spline_distances: np.ndarray
    accuracy: float

    def ticket(self, epoch: int) -> nn.Module:
        """A copy of the dense network after ``epoch`` epochs."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(self.states[epoch])
        return model.eval()


def train_dense(model: nn.Module, split: Split, schedule: Schedule, ratios: Sequence[float], probe: torch.Tensor,
                seed: int = 0) -> DenseRun:
    """Train ``model`` (in place) for the full schedule with the L1 penalty, the spline and the mask detectors.

    Parameters
    ----------
    model : nn.Sequential
        A BatchNorm network (see :mod:`spline_utils.pruning`).
    split : Split
    schedule : Schedule
    ratios : sequence of float
        Pruning ratios: one mask detector per ratio.
    probe : torch.Tensor, shape (n_probe, *input_shape)
        Probe set of the spline detector.
    seed : int
        Batch order.
    """
    spline = SplineEarlyBird(probe, schedule.eb_threshold, schedule.eb_lookback)
    masks = {ratio: MaskEarlyBird(ratio, schedule.mask_fifo, schedule.mask_threshold) for ratio in ratios}
    snapshots = train.Snapshots(epochs=range(schedule.epochs + 1))
    train.fit(model, split.train_x, split.train_y, lr=schedule.lr, milestones=schedule.milestone_epochs,
              epochs=schedule.epochs, seed=seed, callbacks=[BatchNormL1(schedule.slimming_l1), spline, snapshots,
                                                            *masks.values()], **schedule.sgd())
    return DenseRun(model, snapshots.at_epoch, spline.epoch, {r: m.epoch for r, m in masks.items()}, spline.matrix(),
                    train.accuracy(model, split.test_x, split.test_y))


def prune_ticket(model: nn.Module, criterion: str, ratio: float, probe: torch.Tensor | None = None,
                 space: str = "parameter", seed: int = 0) -> nn.Sequential:
    """Prune ``ratio`` of the hidden nodes/channels of ``model`` (unchanged) with one criterion.

    Parameters
    ----------
    criterion : {"spline layerwise", "spline global", "magnitude", "random", "slimming"}
        Spline criterion (:func:`spline_utils.spline_pruning.spline_keep_masks`, in ``space``), filter L2 norm
        (layerwise), random (layerwise, seeded) or BatchNorm scale (global, as network slimming).
    """
    if criterion.startswith("spline"):
        distances = spline_pruning.spline_distances(model, space, probe)
        masks = spline_pruning.spline_keep_masks(distances, ratio, criterion.split()[-1])
    elif criterion in ("magnitude", "random"):
        options = {"seed": seed} if criterion == "random" else {}
        masks = pruning.select_nodes(pruning.node_scores(model, criterion, **options), ratio, "layerwise")
    elif criterion == "slimming":
        masks = pruning.select_nodes(pruning.node_scores(model, "slimming"), ratio, "global")
    else:
        raise ValueError(f"unknown criterion {criterion!r}; use 'spline layerwise', 'spline global', 'magnitude', "
                         "'random' or 'slimming'")
    return pruning.prune_nodes(model, masks)


def compare(build_model: Callable[[int], nn.Module], split: Split, seeds: Sequence[int], ratios: Sequence[float],
            schedule: Schedule = Schedule(), probe_size: int = 256, space: str = "parameter",
            methods: Sequence[str] = METHODS, progress: bool = False) -> list[dict]:
    """Every method of :data:`METHODS` for every seed and ratio, with test accuracy and training FLOPs.

    Parameters
    ----------
    build_model : callable
        ``build_model(seed)`` returns a fresh BatchNorm ``nn.Sequential`` (e.g. ``nets.small_cnn``).
    split : Split
    seeds, ratios : sequences
    schedule : Schedule
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
        ``epoch`` (when the ticket was drawn; ``None`` for dense), ``detected`` (whether the detector fired; else
        the ticket is the fully trained network and nothing is fine-tuned), ``parameters``.
    """
    unknown = set(methods) - set(METHODS)
    if unknown or not seeds or not ratios:
        raise ValueError(f"need seeds, ratios and methods from {METHODS}; unknown: {sorted(unknown)}")
    probe = split.train_x[:probe_size]
    iterator = seeds
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(seeds, desc="seeds")
    rows = []
    for seed in iterator:
        dense = train_dense(build_model(seed), split, schedule, ratios, probe, seed)
        cost = _Costs(dense.model, split, schedule, probe_size)
        if "dense" in methods:
            rows.append(dict(method="dense", ratio=0.0, seed=seed, accuracy=dense.accuracy, flops=cost.dense_total,
                             epoch=None, detected=True, parameters=pruning.count_parameters(dense.model)))
        for ratio in ratios:
            for method in methods:
                if method != "dense":
                    rows.append(_run_method(method, ratio, seed, dense, split, schedule, probe, space, cost))
    return rows


class _Costs:
    """Training FLOPs of one seed's dense network, and of its pruned tickets."""

    def __init__(self, dense_model: nn.Module, split: Split, schedule: Schedule, probe_size: int):
        self.split = split
        self.dense_epoch = self.epoch_flops(dense_model)
        self.dense_total = schedule.epochs * self.dense_epoch
        self.detection = flops.forward_flops(dense_model, split.input_shape) * probe_size

    def epoch_flops(self, model: nn.Module) -> float:
        return flops.training_flops_per_epoch(model, self.split.input_shape, len(self.split.train_x))


def _run_method(method, ratio, seed, dense: DenseRun, split, schedule: Schedule, probe, space, cost: _Costs) -> dict:
    criterion = {"spline-EB layerwise": "spline layerwise", "spline-EB global": "spline global",
                 "magnitude @EB": "magnitude", "random @EB": "random", "mask-EB": "slimming",
                 "network slimming": "slimming"}[method]
    if method == "network slimming":
        epoch, detected = schedule.epochs, True
        pruned = prune_ticket(dense.model, criterion, ratio, seed=seed)
        train.fit(pruned, split.train_x, split.train_y, epochs=schedule.finetune_epochs, lr=schedule.finetune_lr,
                  milestones=[schedule.finetune_epochs // 2], seed=seed, **schedule.sgd())
        total = cost.dense_total + schedule.finetune_epochs * cost.epoch_flops(pruned)
    else:
        found = dense.mask_epochs[ratio] if method == "mask-EB" else dense.spline_epoch
        detected = found is not None
        epoch = found if detected else schedule.epochs
        pruned = prune_ticket(dense.ticket(epoch), criterion, ratio, probe, space, seed)
        train.fit(pruned, split.train_x, split.train_y, seed=seed, **schedule.rest(epoch), **schedule.sgd())
        detection = 0.0 if method == "mask-EB" else cost.detection
        total = flops.early_bird_training_flops(cost.dense_epoch, cost.epoch_flops(pruned), schedule.epochs, epoch,
                                                detection)
    return dict(method=method, ratio=ratio, seed=seed, accuracy=train.accuracy(pruned, split.test_x, split.test_y),
                flops=float(total), epoch=epoch, detected=detected, parameters=pruning.count_parameters(pruned))


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (method, ratio), FLOPs relative to the dense run.

    Returns
    -------
    list of dict with ``method, ratio, n_seeds, accuracy_mean, accuracy_std, accuracy_min, flops_mean,
    flops_saving`` (dense FLOPs / method FLOPs), ``epoch_mean``; in the order of :data:`METHODS`, then ratio.
    """
    dense = [row["flops"] for row in rows if row["method"] == "dense"]
    reference = float(np.mean(dense)) if dense else float("nan")
    summary = []
    keys = sorted({(METHODS.index(r["method"]), r["ratio"]) for r in rows})
    for method_index, ratio in keys:
        group = [r for r in rows if r["method"] == METHODS[method_index] and r["ratio"] == ratio]
        accuracies = np.array([r["accuracy"] for r in group])
        epochs = [r["epoch"] for r in group if r["epoch"] is not None]
        summary.append(dict(method=METHODS[method_index], ratio=ratio, n_seeds=len(group),
                            accuracy_mean=float(accuracies.mean()), accuracy_std=float(accuracies.std()),
                            accuracy_min=float(accuracies.min()), flops_mean=float(np.mean([r["flops"] for r in group])),
                            flops_saving=reference / float(np.mean([r["flops"] for r in group])),
                            epoch_mean=float(np.mean(epochs)) if epochs else float("nan")))
    return summary


def format_table(summary: Sequence[dict]) -> str:
    """A plain-text table of :func:`summarize`'s rows."""
    lines = [f"{'method':20s} {'ratio':>5s} {'test accuracy':>16s} {'train GFLOPs':>12s} {'saving':>7s} "
             f"{'ticket epoch':>12s}"]
    for row in summary:
        epoch = "-" if np.isnan(row["epoch_mean"]) else f"{row['epoch_mean']:.1f}"
        lines.append(f"{row['method']:20s} {row['ratio']:5.0%} {row['accuracy_mean']:8.3f} +- "
                     f"{row['accuracy_std']:.3f} {row['flops_mean'] / 1e9:12.1f} {row['flops_saving']:6.2f}x "
                     f"{epoch:>12s}")
    return "\n".join(lines)


MARKERS = {"dense": "*", "spline-EB layerwise": "o", "spline-EB global": "s", "magnitude @EB": "^",
           "random @EB": "v", "mask-EB": "D", "network slimming": "P"}


def plot_accuracy_vs_flops(ax, summary: Sequence[dict]):
    """Test accuracy (mean, error bar = std over seeds) against total training FLOPs, one series per method."""
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    for index, method in enumerate(METHODS):
        group = [row for row in summary if row["method"] == method]
        if not group:
            continue
        ax.errorbar([row["flops_mean"] for row in group], [row["accuracy_mean"] for row in group],
                    yerr=[row["accuracy_std"] for row in group], marker=MARKERS[method], markersize=7,
                    color=colours(index), linestyle="-" if len(group) > 1 else "none", capsize=3, label=method)
        for row in group:
            if row["ratio"] > 0:
                ax.annotate(f"{row['ratio']:.0%}", (row["flops_mean"], row["accuracy_mean"]), fontsize=7,
                            xytext=(4, -9), textcoords="offset points", color=colours(index))
    ax.set_xlabel("total training FLOPs")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return ax
