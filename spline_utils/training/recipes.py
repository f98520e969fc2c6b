"""Training recipes: the SGD schedule, the early-bird detectors' settings and, for paper-scale runs, the network.

One :class:`TrainingRecipe` describes a run; :func:`paper_recipe` gives the paper's CIFAR recipes (Fig 5, Table 1):
SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, 160 epochs, lr x0.1 after 50% and 75% of training.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Callable

import torch.nn as nn

from spline_utils.training import nets


@dataclass(frozen=True)
class TrainingRecipe:
    """SGD with step learning-rate drops at fractions of training, and the detectors' settings.

    Attributes
    ----------
    epochs, lr, momentum, weight_decay, batch_size
        The SGD run.
    milestones : tuple of float
        Fractions of ``epochs`` after which the learning rate drops x0.1 (the paper: 0.5 and 0.75 of 160 epochs).
    eb_threshold, eb_lookback
        The spline early-bird rule (authors' defaults 0.16 and 3).
    mask_fifo, mask_threshold
        The mask early-bird rule (You et al., 2020: 5 and 0.1).
    slimming_l1
        Network slimming's L1 penalty on BatchNorm scales during dense training (0: none).
    finetune_epochs, finetune_lr
        Network slimming's fine-tuning after full training, with one x0.1 drop halfway.
    build_model : callable, optional
        ``build_model(seed) -> nn.Module``: the network of a paper-scale recipe.
    dataset : str, optional
        The data set of a paper-scale recipe, a name for :func:`spline_utils.data.cifar_loader`.
    """

    epochs: int = 20
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    milestones: tuple = (0.5, 0.75)
    eb_threshold: float = 0.16
    eb_lookback: int = 3
    mask_fifo: int = 5
    mask_threshold: float = 0.1
    slimming_l1: float = 1e-4
    finetune_epochs: int = 10
    finetune_lr: float = 0.01
    build_model: Callable[[int], nn.Module] | None = None
    dataset: str | None = None

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

    def fit_arguments(self) -> dict:
        """Keywords of :func:`spline_utils.training.train.fit` for the whole schedule."""
        return dict(epochs=self.epochs, lr=self.lr, milestones=self.milestone_epochs, **self.sgd())

    def rest(self, epoch: int) -> dict:
        """``fit`` keywords that continue the schedule after ``epoch`` completed epochs."""
        return dict(epochs=self.epochs - epoch, lr=self.lr_at(epoch),
                    milestones=[m - epoch for m in self.milestone_epochs if m > epoch], **self.sgd())

    def sgd(self) -> dict:
        """Momentum, weight decay and batch size as ``fit`` keywords."""
        return dict(momentum=self.momentum, weight_decay=self.weight_decay, batch_size=self.batch_size)

    def scaled(self, epochs: int) -> "TrainingRecipe":
        """The same recipe over ``epochs`` epochs (milestones stay at the same fractions of training)."""
        return replace(self, epochs=epochs)


#: The paper's Fig 5 networks: (data set, classes, builder). The closest builders in :mod:`spline_utils.training.nets` (all
#: BatchNorm + ReLU, 3-channel 32x32 inputs).
PAPER_NETWORKS = {
    "alexnet": ("cifar10", 10, functools.partial(nets.small_vgg, widths=(64, 192, 384), in_channels=3,
                                                 input_size=32)),
    "vgg16": ("cifar100", 100, functools.partial(nets.small_vgg, widths=(64, 128, 256, 512, 512), in_channels=3,
                                                 input_size=32)),
    "preresnet101": ("cifar100", 100, functools.partial(nets.preact_resnet, widths=(16, 32, 64),
                                                        blocks_per_stage=16, in_channels=3)),
}


def paper_recipe(network: str) -> TrainingRecipe:
    """The paper's recipe for ``network`` in ``{"alexnet", "vgg16", "preresnet101"}`` (160 epochs, local CIFAR).

    ``recipe.build_model(seed)`` builds the network; ``recipe.dataset`` names the data for
    ``spline_utils.data.cifar_loader(root, recipe.dataset, train)``. Network slimming fine-tunes for half the schedule.
    """
    if network not in PAPER_NETWORKS:
        raise ValueError(f"network must be one of {sorted(PAPER_NETWORKS)}, got {network!r}")
    dataset, num_classes, builder = PAPER_NETWORKS[network]
    return TrainingRecipe(epochs=160, finetune_epochs=80, dataset=dataset,
                          build_model=lambda seed: builder(num_classes=num_classes, seed=seed))
