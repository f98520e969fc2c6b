"""spline_utils: exact spline partitions, spline pruning and the spline early-bird for ReLU networks.

Companion package of the book reproducing "Max-Affine Spline Insights Into Deep Network Pruning"
(You, Balestriero et al., TMLR 2022).
"""
from .chain import activation_codes, to_chain
from .partition import Partition, PartitionTooLarge, grid_codes, partition2d
from .slices import Plane, grid_points, image_canvas, plane_through

__all__ = ["activation_codes", "to_chain", "Partition", "PartitionTooLarge", "partition2d", "grid_codes", "Plane",
           "grid_points", "image_canvas", "plane_through"]
__version__ = "0.1.0"
