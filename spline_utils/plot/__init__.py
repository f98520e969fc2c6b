"""Figures in the paper's colours.

``from spline_utils import plot`` gives the drawing functions and colours of :mod:`.drawing` (``plot.draw_boundary``,
``plot.figure_png`` ...); chapter-specific figures are :mod:`.pruning`, :mod:`.training` and :mod:`.surface3d`; the
readability check of every figure is :mod:`.readability`.
"""
from spline_utils.plot.drawing import *  # noqa: F401,F403 (the face: drawing's __all__)
from spline_utils.plot.drawing import __all__  # noqa: F401 (the face exports what its module exports)
