"""A plain, seeded training loop with callbacks.

``fit`` trains any classifier with SGD (or a given optimizer) on in-memory tensors. Callbacks see the loop's state
before training, after every backward pass, after every iteration and after every epoch, which is how snapshots
(:class:`Snapshots`), sparsity penalties and early-bird detection (:mod:`spline_utils.early_bird`) plug in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from spline_utils.checks import check_integer


@dataclass
class TrainState:
    """What callbacks see. ``iteration`` counts optimizer steps from 0; ``epoch`` counts completed epochs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    iteration: int = 0
    loss: float = float("nan")
    losses: list = field(default_factory=list)
    epoch_losses: list = field(default_factory=list)
    stop: bool = False


class Callback:
    """Override any of these; set ``state.stop = True`` to end training early.

    Order in one epoch: ``on_backward_end`` (gradients computed, before the optimizer step) then
    ``on_iteration_end`` (after the step) for every mini-batch, then ``on_epoch_end`` (model in eval mode).
    ``on_train_begin`` runs once before the first step.
    """

    def on_train_begin(self, state: TrainState) -> None:
        pass

    def on_backward_end(self, state: TrainState) -> None:
        pass

    def on_iteration_end(self, state: TrainState) -> None:
        pass

    def on_epoch_end(self, state: TrainState) -> None:
        pass


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float = 0.01,
        batch_size: int = 64, momentum: float = 0.0, weight_decay: float = 0.0,
        optimizer: torch.optim.Optimizer | None = None, milestones: Sequence[int] = (), gamma: float = 0.1,
        callbacks: Sequence[Callback] = (), seed: int = 0, loss_fn: Callable = F.cross_entropy,
        progress: bool = False) -> TrainState:
    """Train ``model`` on ``(x, y)`` with mini-batch SGD; returns the final :class:`TrainState`.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place.
    x : torch.Tensor, shape (n_samples, ...)
    y : torch.Tensor, shape (n_samples,) (class indices) or matching ``loss_fn``
    epochs : int
    lr, momentum, weight_decay : float
        SGD settings (ignored when ``optimizer`` is given).
    batch_size : int
    optimizer : torch.optim.Optimizer, optional
    milestones : sequence of int
        Epochs at which the learning rate is multiplied by ``gamma`` (step schedule).
    callbacks : sequence of Callback
    seed : int
        Seeds the batch order.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, cross-entropy by default.
    progress : bool
        Show a tqdm progress bar over epochs.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    epochs = check_integer("epochs", epochs, minimum=0)
    batch_size = check_integer("batch_size", batch_size, minimum=1)
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma) if milestones else None
    generator = torch.Generator().manual_seed(seed)
    state = TrainState(model, optimizer)
    for callback in callbacks:
        callback.on_train_begin(state)
    epoch_range = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        epoch_range = tqdm(epoch_range, desc="epochs")
    for _ in epoch_range:
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            for callback in callbacks:
                callback.on_backward_end(state)
            optimizer.step()
            state.loss = float(loss.detach())
            state.losses.append(state.loss)
            total, count = total + state.loss * len(batch), count + len(batch)
            for callback in callbacks:
                callback.on_iteration_end(state)
            state.iteration += 1
        if scheduler is not None:
            scheduler.step()
        state.epoch += 1
        state.epoch_losses.append(total / max(count, 1))
        model.eval()
        for callback in callbacks:
            callback.on_epoch_end(state)
        if progress:
            epoch_range.set_postfix(loss=f"{state.epoch_losses[-1]:.4f}")
        if state.stop:
            break
    model.eval()
    return state


class Snapshots(Callback):
    """Deep copies of the model's ``state_dict`` at chosen optimizer steps and epochs.

    Parameters
    ----------
    iterations : sequence of int
        Numbers of completed optimizer steps at which to copy the model (0 = before training).
    epochs : sequence of int
        Numbers of completed epochs at which to copy the model (0 = before training).

    Attributes
    ----------
    at_iteration, at_epoch : dict of int -> dict
        The copies, keyed by the step or epoch count. Load one with ``model.load_state_dict(...)``.
    """

    def __init__(self, iterations: Sequence[int] = (), epochs: Sequence[int] = ()):
        if any(int(i) < 0 for i in [*iterations, *epochs]):
            raise ValueError("snapshot iterations and epochs must be >= 0 (0 means before training)")
        self.iterations = {int(i) for i in iterations}
        self.epochs = {int(e) for e in epochs}
        self.at_iteration: dict[int, dict] = {}
        self.at_epoch: dict[int, dict] = {}

    def on_train_begin(self, state: TrainState) -> None:
        if 0 in self.iterations:
            self.at_iteration[0] = _copy_state(state.model)
        if 0 in self.epochs:
            self.at_epoch[0] = _copy_state(state.model)

    def on_iteration_end(self, state: TrainState) -> None:
        steps = state.iteration + 1
        if steps in self.iterations:
            self.at_iteration[steps] = _copy_state(state.model)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch in self.epochs:
            self.at_epoch[state.epoch] = _copy_state(state.model)


def _copy_state(model: nn.Module) -> dict:
    return copy.deepcopy({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()})


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of correct argmax predictions (eval mode, no grad)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)
