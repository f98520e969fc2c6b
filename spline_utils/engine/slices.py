"""2-D affine planes in a network's input space, and grids on them.

A :class:`Plane` maps 2-D coordinates ``(a, b)`` to the input ``origin + a * u + b * v``. Partitioning a network on
a plane gives the exact partition of the 2-D slice, the only way to *see* the spline partition of an image model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch



@dataclass(frozen=True)
class Plane:
    """The affine plane ``x(a, b) = origin + a * u + b * v``.

    Parameters
    ----------
    origin, u, v : torch.Tensor, all of the model's per-sample input shape (e.g. (1, 28, 28))
    """

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def __post_init__(self):
        shapes = {tuple(t.shape) for t in (self.origin, self.u, self.v)}
        if len(shapes) != 1:
            raise ValueError(f"origin, u and v must have the same shape; got {sorted(shapes)}")
        for name in ("origin", "u", "v"):
            tensor = torch.as_tensor(getattr(self, name), dtype=torch.float64)
            if not torch.isfinite(tensor).all():
                raise ValueError(f"plane {name} has non-finite entries")
            object.__setattr__(self, name, tensor)
        if torch.linalg.matrix_rank(torch.stack([self.u.flatten(), self.v.flatten()])) < 2:
            raise ValueError("plane directions u and v are parallel (or zero); pick two independent directions")

    @property
    def input_shape(self) -> tuple:
        """Per-sample input shape of the model the plane feeds."""
        return tuple(self.origin.shape)

    def __call__(self, points) -> torch.Tensor:
        """Map 2-D coordinates, shape (n, 2), to inputs, shape (n, *input_shape), float64."""
        points = torch.as_tensor(np.asarray(points), dtype=torch.float64)
        if points.dim() != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (n, 2); got {tuple(points.shape)}")
        a = points[:, 0].reshape(-1, *([1] * len(self.input_shape)))
        b = points[:, 1].reshape(-1, *([1] * len(self.input_shape)))
        return self.origin + a * self.u + b * self.v


def image_canvas(image0: torch.Tensor, image1: torch.Tensor) -> Plane:
    """The authors' canvas ``x(a, b) = a * image0 + b * image1`` (use bounds (0, 1, 0, 1)).

    ``(1, 0)`` is ``image0``, ``(0, 1)`` is ``image1`` and ``(0, 0)`` the all-zero input.
    """
    image0 = torch.as_tensor(image0, dtype=torch.float64)
    return Plane(torch.zeros_like(image0), image0, torch.as_tensor(image1, dtype=torch.float64))


def plane_through(x0: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor) -> Plane:
    """The plane through three inputs: ``(0, 0) -> x0``, ``(1, 0) -> x1``, ``(0, 1) -> x2``."""
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    return Plane(x0, torch.as_tensor(x1, dtype=torch.float64) - x0, torch.as_tensor(x2, dtype=torch.float64) - x0)


def grid_points(bounds, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``resolution x resolution`` grid of cell centres over ``bounds = (xmin, xmax, ymin, ymax)``.

    Returns
    -------
    xs : ndarray, shape (resolution,)
    ys : ndarray, shape (resolution,)
    points : ndarray, shape (resolution**2, 2), row-major over (y, x)
    """
    xmin, xmax, ymin, ymax = bounds
    xs = xmin + (np.arange(resolution) + 0.5) * (xmax - xmin) / resolution
    ys = ymin + (np.arange(resolution) + 0.5) * (ymax - ymin) / resolution
    grid_x, grid_y = np.meshgrid(xs, ys)
    return xs, ys, np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
