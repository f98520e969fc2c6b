"""Distance-matrix figures of chapter 3: the paper's Figs 5, 13 and 15, and the frames of the threshold slider.

Every panel is :func:`spline_utils.plot.training.draw_distance_matrix`: epochs on both axes, reversed viridis, the
spline EB epoch marked as in the paper.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from spline_utils.early_bird import spline_early_bird_epoch
from spline_utils.plot.training import draw_distance_matrix
from spline_utils.experiments.eb_runs import lookback_statistic


def eb_figure(matrices: dict, eb_epochs: dict, titles: dict, lookback: int) -> plt.Figure:
    """Fig 5: one min-max normalized matrix per network in a row, with one colorbar.

    Parameters
    ----------
    matrices, eb_epochs, titles : dicts keyed by network name, in panel order
        The raw (E, E) matrix, its EB epoch (or None) and the panel's title.
    lookback : int
    """
    fig, axes = plt.subplots(1, len(matrices), figsize=(8.6, 3.4), layout="constrained", squeeze=False)
    axes = axes[0]
    for ax, name in zip(axes, matrices):
        image = draw_distance_matrix(ax, matrices[name], eb_epochs[name], lookback=lookback, colorbar=False,
                                     title=titles[name])
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="normalized distance")
    return fig


def probe_figure(matrices: dict, eb_epochs: dict, titles: dict, lookback: int) -> plt.Figure:
    """Fig 13: rows are probe sets, columns networks; raw distances on one colour scale for all panels.

    Parameters
    ----------
    matrices, eb_epochs : dicts keyed by (network, probe)
        The raw matrix and the EB epoch that probe set gives.
    titles : dict of network -> str
        Column titles (the probe set is added to each).
    """
    networks = list(dict.fromkeys(network for network, _ in matrices))
    probes = list(dict.fromkeys(probe for _, probe in matrices))
    shared_top = max(matrix.max() for matrix in matrices.values())
    fig, axes = plt.subplots(len(probes), len(networks), figsize=(8.4, 10.4), layout="constrained", squeeze=False)
    for column, network in enumerate(networks):
        for row, probe in enumerate(probes):
            ax = axes[row, column]
            image = draw_distance_matrix(ax, matrices[network, probe], eb_epochs[network, probe], lookback=lookback,
                                         colorbar=False, title=f"{titles[network]}\nprobe: {probe}",
                                         normalize=False, vmax=shared_top)
            ax.title.set_fontsize(11)
            ax.set_xlabel("epoch" if row == len(probes) - 1 else "")
            ax.set_ylabel("epoch" if column == 0 else "")
    fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="distance d(e, e') (one scale for all)")
    return fig


def single_matrix_figure(matrix: np.ndarray, eb_epoch: int | None, title: str, lookback: int) -> plt.Figure:
    """Fig 15: one normalized matrix with its colorbar."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    draw_distance_matrix(ax, matrix, eb_epoch, lookback=lookback, colorbar=True, title=title)
    return fig


def threshold_frame(matrix: np.ndarray, threshold: float, lookback: int, title: str,
                    thresholds: Sequence[float]) -> plt.Figure:
    """One frame of the threshold slider: the matrix with the EB epoch under ``threshold`` (left) and the rule's
    statistic ``max_j d(e, e - j)`` against the threshold (right); the y scale fits every value of ``thresholds``."""
    epoch = spline_early_bird_epoch(matrix, threshold, lookback)
    statistic = lookback_statistic(matrix, lookback)
    fig, (ax_matrix, ax_rule) = plt.subplots(1, 2, figsize=(8, 3.6))
    draw_distance_matrix(ax_matrix, matrix, epoch, lookback=lookback, colorbar=False, title=title)
    ax_rule.plot(np.arange(1, len(matrix) + 1), statistic, "o-", markersize=3, color="purple",
                 label=f"max of d(e, e - j), j <= {lookback}")
    ax_rule.axhline(threshold, color="red", linestyle="--", linewidth=1, label=f"threshold {threshold:.2f}")
    if epoch is not None:
        ax_rule.axvline(epoch, color="red", linewidth=1)
    finite = statistic[np.isfinite(statistic)]
    ax_rule.set_ylim(0, 1.3 * max(finite.max() if len(finite) else 0.0, max(thresholds)))
    ax_rule.set_xlabel("epoch e")
    ax_rule.set_title(f"EB epoch: {epoch}")
    ax_rule.legend(loc="upper right")
    fig.tight_layout()
    return fig
