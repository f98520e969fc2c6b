"""Pruning: node scores and keep masks, weight and node surgery, the spline criterion, exact merging.

``from spline_utils import pruning`` gives the scoring and surgery functions of :mod:`.scores` (``pruning.node_scores``,
``pruning.select_nodes``, ``pruning.prune_nodes`` ...); the spline criterion is :mod:`.spline_criterion`, exact merging of
duplicate splines :mod:`.merging`.
"""
from spline_utils.pruning.scores import *  # noqa: F401,F403 (the face: scores' __all__)
from spline_utils.pruning.scores import __all__  # noqa: F401 (the face exports what its module exports)
