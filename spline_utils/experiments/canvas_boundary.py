"""Where a network's 6-vs-9 decision boundary crosses the segment from the 6 to the 9 on the canvas, epoch by epoch.

On the canvas ``x(a, b) = a x_6 + b x_9`` the segment ``(a, 1 - a)`` runs from the 6 (``a = 1``) to the 9
(``a = 0``). Following its crossing with ``{f_6 = f_9}`` over training shows when the boundary stops moving
(:func:`boundary_settling`); :func:`boundary_window` centres a small canvas window on it for exact partitions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from spline_utils.experiments.mnist_canvas import NINE, SIX


def boundary_crossing(model: nn.Module, plane, classes=(SIX, NINE), steps: int = 2000) -> float | None:
    """The coordinate ``a`` of the first point ``(a, 1 - a)``, going from ``a = 1`` to ``a = 0``, where the model's
    boundary ``{f_i = f_j}`` crosses the segment (to ``1 / steps``); None if it does not cross it.

    Parameters
    ----------
    model : nn.Module
        Evaluated in eval mode on ``plane``'s images (float32).
    plane : Plane
        The canvas, e.g. :func:`.mnist_canvas.canvas_plane`.
    classes : pair of int
        ``(i, j)``: the logits whose tie is the boundary.
    steps : int
        Points on the segment, less one.
    """
    a = np.linspace(1.0, 0.0, steps + 1)
    was_training = model.training
    with torch.no_grad():
        logits = model.eval()(plane(np.stack([a, 1 - a], axis=1)).float())
    model.train(was_training)
    tie = (logits[:, classes[0]] - logits[:, classes[1]]).numpy()
    crossing = np.nonzero(np.diff(np.sign(tie)))[0]
    return float(a[crossing[0]]) if len(crossing) else None


def boundary_window(model: nn.Module, plane, side: float, classes=(SIX, NINE)) -> tuple:
    """A square canvas window of ``side``, centred where the segment from the 6 to the 9 crosses the model's
    boundary (the canvas centre if it does not), kept inside [0, 1]^2: ``(a_min, a_max, b_min, b_max)``."""
    if not 0 < side <= 1:
        raise ValueError(f"side must be in (0, 1] (the canvas is [0, 1]^2), got {side}")
    a = boundary_crossing(model, plane, classes)
    centre = np.array([0.5, 0.5]) if a is None else np.array([a, 1 - a])
    a, b = np.clip(centre, side / 2, 1 - side / 2)
    return (float(a - side / 2), float(a + side / 2), float(b - side / 2), float(b + side / 2))


@dataclass
class Settling:
    """Where the boundary crossed the segment after every epoch, split at the first learning-rate drop.

    Attributes
    ----------
    crossings : list of (float or None), one per epoch 1..E
        :func:`boundary_crossing` after each epoch (None: no crossing).
    drop : int
        The last epoch before the first learning-rate drop; epochs ``1..drop`` are the high-learning-rate phase.
    """

    crossings: list
    drop: int

    @property
    def high_lr(self) -> np.ndarray:
        """The crossings of epochs ``1..drop`` that exist."""
        return np.array([a for a in self.crossings[:self.drop] if a is not None])

    @property
    def complete(self) -> bool:
        """Whether the boundary crossed the segment after every epoch."""
        return all(a is not None for a in self.crossings)

    @property
    def missing(self) -> list[int]:
        """The epochs after which the boundary did not cross the segment."""
        return [epoch for epoch, a in enumerate(self.crossings, start=1) if a is None]

    @property
    def spread(self) -> float | None:
        """Range of the crossings over epochs ``1..drop`` (those that exist); None if there are none."""
        return float(np.ptp(self.high_lr)) if len(self.high_lr) else None

    @property
    def settled(self) -> float | None:
        """Largest distance of the crossings after the drop to the final one; None unless all of them exist."""
        after = self.crossings[self.drop:]
        if any(a is None for a in after):
            return None
        return float(np.max(np.abs(np.array(after) - self.crossings[-1])))

    def moved_after(self, epoch: int) -> float | None:
        """Largest distance of the crossings of epochs ``epoch..drop`` to the crossing at ``epoch``; None unless all
        of them exist and ``1 <= epoch <= drop`` (how far the boundary still moves at the high learning rate)."""
        if not 1 <= epoch <= self.drop:
            return None
        later = self.crossings[epoch - 1:self.drop]
        if any(a is None for a in later):
            return None
        return float(np.max(np.abs(np.array(later) - later[0])))

    def describe(self) -> str:
        """One sentence for the chapter's printout."""
        parts = []
        if self.spread is not None:
            parts.append(f"the boundary crosses the 6-9 segment at a in [{self.high_lr.min():.3f}, "
                         f"{self.high_lr.max():.3f}] in epochs 1-{self.drop}")
        if self.settled is not None:
            parts.append(f"from epoch {self.drop + 1} on within {self.settled:.3f} of its final "
                         f"a = {self.crossings[-1]:.3f}")
        if self.missing:
            parts.append(f"it does not cross the segment after epochs {self.missing}")
        return "; ".join(parts)


def boundary_settling(ticket: Callable[[int], nn.Module], plane, epochs: int, drop: int,
                      classes=(SIX, NINE)) -> Settling:
    """:func:`boundary_crossing` after every epoch ``1..epochs``; ``ticket(e)`` is the network after epoch ``e``."""
    if not 1 <= drop < epochs:
        raise ValueError(f"need 1 <= drop < epochs, got drop={drop}, epochs={epochs}")
    return Settling([boundary_crossing(ticket(epoch), plane, classes) for epoch in range(1, epochs + 1)], drop)


def format_or_none(value: float | None, spec: str, missing: str = "-") -> str:
    """``format(value, spec)``, or ``missing`` for None: prose never reads "nan"."""
    return missing if value is None else format(value, spec)
