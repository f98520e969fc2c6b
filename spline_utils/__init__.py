"""spline_utils: exact spline partitions, spline pruning and the spline early-bird for ReLU networks.

Companion package of the book reproducing "Max-Affine Spline Insights Into Deep Network Pruning"
(You, Balestriero et al., TMLR 2022).

The package's face is the exact partition of a 2-D domain or slice: :func:`partition2d` and the :class:`Partition` it
returns, :func:`activation_codes` (the model's own forward, the oracle every partition is checked against),
:class:`PartitionTooLarge`, and the slices :func:`image_canvas` and :func:`plane_through`. The tools live in the
layers below the face, one folder each: ``reading`` (model -> representation), ``engine`` (representation ->
partition), ``training``, ``pruning``, ``early_bird``, ``data``, ``plot``, ``pages`` (what only the book needs).
"""
from spline_utils.engine.partition import Partition
from spline_utils.engine.partition2d import grid_codes, partition2d
from spline_utils.engine.region_bound import PartitionTooLarge
from spline_utils.engine.slices import Plane, grid_points, image_canvas, plane_through
from spline_utils.reading.oracle import activation_codes

__all__ = ["partition2d", "activation_codes", "Partition", "PartitionTooLarge", "image_canvas", "plane_through",
           "Plane", "grid_codes", "grid_points"]
__version__ = "0.1.0"
