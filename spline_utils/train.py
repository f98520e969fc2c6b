"""A plain, seeded training loop with callbacks.

``fit`` trains any classifier with SGD (or a given optimizer) on in-memory tensors. Callbacks see the loop's state
after every iteration and every epoch, which is how snapshots and early-bird detection plug in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    """Override any of these; set ``state.stop = True`` to end training early."""

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
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got {epochs} and {batch_size}")
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma) if milestones else None
    generator = torch.Generator().manual_seed(seed)
    state = TrainState(model, optimizer)
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
            optimizer.step()
            state.loss = float(loss)
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
        if state.stop:
            break
    model.eval()
    return state


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of correct argmax predictions (eval mode, no grad)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)
