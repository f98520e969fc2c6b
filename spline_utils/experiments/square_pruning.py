"""Chapter 2's Figs 1(b) and 1(c): node pruning on the square task, weight pruning on a disk task.

The networks (:func:`bias_free_mlp`, the hand-built :func:`exact_square_net`) and the measures the chapter's claims
rest on: how square a boundary is (:func:`boundary_pieces_and_spread`), where bias-free lines point
(:func:`line_angles`), and how much of a boundary lies on axis-parallel pieces (:func:`axis_parallel_share`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from spline_utils.training.nets import seeded


def bias_free_mlp(hidden: int, seed: int) -> nn.Sequential:
    """2-``hidden``-2 network whose first layer has no bias: every first-layer spline passes through the origin."""
    with seeded(seed):
        return nn.Sequential(nn.Linear(2, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, 2))


def exact_square_net() -> nn.Sequential:
    """The four-ReLU network whose boundary is the square ``max(|x1|, |x2|) = 1``.

    ``logit_0 = (relu(x1 + x2) + relu(-x1 - x2) + relu(x1 - x2) + relu(x2 - x1)) / 2 = max(|x1|, |x2|)``,
    ``logit_1 = 1``: the splines are the two diagonals.
    """
    net = nn.Sequential(nn.Linear(2, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[0.5] * 4, [0.0] * 4]))
        net[2].bias.copy_(torch.tensor([0.0, 1.0]))
    return net


def boundary_pieces_and_spread(partition, samples_per_segment: int = 5) -> tuple[int, float]:
    """Number of straight boundary pieces, and the spread (max - min) of ``max(|x1|, |x2|)`` along the boundary.

    The spread is 0 for a square centred at the origin and grows as corners are cut or sides tilt.
    """
    segments = partition.boundary_segments()
    if not len(segments):
        return 0, float("nan")
    t = np.linspace(0, 1, samples_per_segment)[None, :, None]
    radius = np.abs(segments[:, :1] + t * (segments[:, 1:] - segments[:, :1])).max(axis=2)
    return len(segments), float(radius.max() - radius.min())


def line_angles(first_layer: nn.Linear) -> np.ndarray:
    """Direction of each bias-free first-layer spline (a line through the origin), in degrees in [0, 180)."""
    normal = first_layer.weight.detach().numpy()
    return (np.degrees(np.arctan2(normal[:, 1], normal[:, 0])) + 90) % 180


def diagonal_pairs(angles: np.ndarray) -> dict:
    """How four (or more) line directions sit around the two diagonals.

    Returns
    -------
    dict with
        ``off_diagonal``: the largest angle (degrees) from the nearer diagonal;
        ``gaps``: the spread of the directions near 45 and near 135 degrees;
        ``distinct``: the number of distinct directions at 0.1 degree.
    """
    angles = np.sort(np.asarray(angles, dtype=float))
    from_diagonal = np.minimum(np.abs(angles - 45), np.abs(angles - 135))
    near_45 = np.abs(angles - 45) < 45
    gaps = [float(np.ptp(group)) if len(group) else 0.0 for group in (angles[near_45], angles[~near_45])]
    return {"off_diagonal": float(from_diagonal.max()), "gaps": gaps,
            "distinct": len(np.unique(np.round(angles, 1)))}


def axis_parallel_lines(model: nn.Sequential) -> int:
    """Number of first-layer splines parallel to an axis: rows with exactly one zero weight."""
    return int(((model[0].weight == 0).sum(dim=1) == 1).sum())


def axis_parallel_share(partition, tolerance: float = 1e-9) -> float:
    """Share of the decision boundary's length on pieces parallel to an axis."""
    segments = partition.boundary_segments()
    direction = segments[:, 1] - segments[:, 0]
    length = np.hypot(direction[:, 0], direction[:, 1])
    on_axis = (np.abs(direction) <= tolerance * length[:, None]).any(axis=1)
    return float(length[on_axis].sum() / length.sum())
