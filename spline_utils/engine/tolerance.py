"""When a point is on a line: tolerances relative to the domain's own size, not to its distance from the origin.

Every geometric decision of the engine (which side of a node's line a vertex lies on, whether a line crosses a region,
whether a spline's piece is a segment or a point) compares ``c + a1 x + a2 y`` with :func:`line_tolerance`. It is
measured in the domain's :class:`Frame`, so a domain of width 1 around 1e10 is resolved as finely as one around 0, up
to the float64 round-off of the numbers involved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Lines closer to a vertex than this fraction of their variation across the domain pass through it.
RELATIVE_TOLERANCE = 1e-10
#: The float64 round-off of evaluating ``c + a1 x + a2 y``, as a fraction of ``|c| + |a1 x| + |a2 y|`` (256 ulp).
ROUNDING_TOLERANCE = 2.0**-44


class ResolutionWarning(UserWarning):
    """A line came within the engine's resolution of a region's corner without measurably crossing the region: it
    passes through the corner, or it cuts off a sliver thinner than the resolution, merged into its neighbour."""


@dataclass(frozen=True)
class Frame:
    """Where tolerances are measured: the domain's centre and half-size.

    A tolerance relative to the domain's own size, not to its distance from the origin, resolves a domain of width 1
    around 1e10 as well as one around 0.
    """

    centre_x: float
    centre_y: float
    half: float

    @classmethod
    def around(cls, bounds) -> "Frame":
        """The frame of a rectangle ``(xmin, xmax, ymin, ymax)``."""
        xmin, xmax, ymin, ymax = (float(b) for b in bounds)
        return cls((xmin + xmax) / 2, (ymin + ymax) / 2, max(xmax - xmin, ymax - ymin) / 2)


def line_tolerance(maps: np.ndarray, frame: Frame) -> np.ndarray:
    """How close to zero an affine function ``(..., 3)`` (rows c, a1, a2) must be at a point to be on its line.

    The sum of :data:`RELATIVE_TOLERANCE` times the function's size on the domain (its value at the centre plus its
    variation over the half-size) and :data:`ROUNDING_TOLERANCE` times the size of the terms summed to evaluate it
    (the round-off, which grows with the distance from the origin). Shape ``maps.shape[:-1]``.
    """
    # local = |c + a1 x0 + a2 y0| + h (|a1| + |a2|), terms = |c| + |a1| (|x0| + h) + |a2| (|y0| + h), summed as
    # RELATIVE * |value at the centre| + |maps| . weights (two products instead of a dozen array operations)
    at_centre = maps @ np.array([1.0, frame.centre_x, frame.centre_y])
    weights = np.array([ROUNDING_TOLERANCE,
                        RELATIVE_TOLERANCE * frame.half + ROUNDING_TOLERANCE * (abs(frame.centre_x) + frame.half),
                        RELATIVE_TOLERANCE * frame.half + ROUNDING_TOLERANCE * (abs(frame.centre_y) + frame.half)])
    return RELATIVE_TOLERANCE * np.abs(at_centre) + np.abs(maps) @ weights


def rounding_tolerance(maps: np.ndarray, frame: Frame) -> np.ndarray:
    """The round-off part of :func:`line_tolerance` alone: a value beyond it is not zero, whatever the resolution."""
    weights = np.array([1.0, abs(frame.centre_x) + frame.half, abs(frame.centre_y) + frame.half])
    return ROUNDING_TOLERANCE * (np.abs(maps) @ weights)


def min_segment_length(frame: Frame) -> float:
    """Segments shorter than this are points: a line that only touches a polygon's vertex."""
    return 1e-12 * frame.half + ROUNDING_TOLERANCE * (max(abs(frame.centre_x), abs(frame.centre_y)) + frame.half)
