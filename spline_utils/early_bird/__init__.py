"""The early-bird: activation codes of a probe set, their distances, and the two detectors.

``from spline_utils.early_bird import SplineEarlyBird`` (and ``MaskEarlyBird``, ``spline_early_bird_epoch``,
``batchnorm_mask``) come from :mod:`.detectors`; codes and distances live in :mod:`.codes`.
"""
from spline_utils.early_bird.detectors import *  # noqa: F401,F403 (the face: the detectors' __all__)
from spline_utils.early_bird.detectors import __all__  # noqa: F401 (the face exports what its module exports)
