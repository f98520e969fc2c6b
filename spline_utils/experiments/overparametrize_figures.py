"""The figures and slider frames of chapter 5 (Figs 11, 10 and 9), drawn from the results of :mod:`.sawtooth`,
:mod:`.kmeans` and :mod:`.strategies`.

:func:`sawtooth_figure` and :func:`width_frame` (Fig 11), :func:`kmeans_figure` and :func:`pruning_frame` (Fig 10),
:func:`strategies_figure` and :func:`strategy_frame` (Fig 9).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from spline_utils import plot
from spline_utils.experiments import kmeans, sawtooth, strategies

#: Training errors below this are drawn at it on the log axis.
ERROR_FLOOR = 1e-8
KMEANS_COLOURS = ("#e08a00", plot.BOUNDARY_RED, plot.SPLINE_BLUE)


def sawtooth_figure(exact_net, widths: Sequence[int], errors: np.ndarray, seed: int = 0):
    """Fig 11: the target with the hand-built network's knots (top) and the training error of every network
    against its width (bottom, log-log: dots, the mean and the 25th to 75th percentile band).

    ``errors``: shape (len(widths), seeds), training MSE of each network.
    """
    x_plot, y_plot = sawtooth.sawtooth_task(401)
    fig, (ax_target, ax_error) = plt.subplots(2, 1, figsize=(8, 7.2), gridspec_kw={"height_ratios": [1, 1.6]})
    ax_target.plot(x_plot, y_plot, color="black", linewidth=2, label="target = hand-built 4-unit net")
    for knot in sawtooth.knots(exact_net):
        ax_target.axvline(knot, color=plot.SPLINE_BLUE, linestyle=":", linewidth=1.4)
    ax_target.set(xlabel="$x$", ylabel="$y$", title="sawtooth with two peaks; its four knots dotted")
    ax_target.legend(loc="upper right")
    clipped = np.maximum(errors, ERROR_FLOOR)
    jitter = np.random.default_rng(seed).uniform(0.93, 1.07, clipped.shape)
    ax_error.scatter(np.array(widths)[:, None] * jitter, clipped, s=14, color=plot.SPLINE_BLUE, alpha=0.5,
                     label="one network")
    ax_error.plot(widths, np.maximum(errors.mean(axis=1), ERROR_FLOOR), "o-", color=plot.BOUNDARY_RED,
                  label="mean over seeds")
    ax_error.fill_between(widths, *np.percentile(clipped, [25, 75], axis=1), color=plot.BOUNDARY_RED, alpha=0.15,
                          label="25th to 75th percentile")
    ax_error.axvline(4, color="grey", linestyle="--", linewidth=1)
    ax_error.text(4.2, 0.03, "4 units suffice", color="grey", transform=ax_error.get_xaxis_transform())
    ax_error.set_xscale("log")
    ax_error.set_yscale("log")
    ax_error.set_xticks(widths, [str(w) for w in widths])
    ax_error.minorticks_off()
    ax_error.set(xlabel="hidden units $K$", ylabel=f"training MSE (below {ERROR_FLOOR:.0e}: drawn at it)",
                 title=r"$\ell_2$ training error against width")
    ax_error.legend(loc="upper right")  # wide networks reach tiny errors: the top right is free
    fig.tight_layout()
    return fig


def teaser_figure(exact_net, widths: Sequence[int], errors: np.ndarray):
    """A one-row teaser of Fig 11: the target and its knots (left), the mean training error against width (right)."""
    x_plot, y_plot = sawtooth.sawtooth_task(401)
    fig, (ax_target, ax_error) = plt.subplots(1, 2, figsize=(8, 2.8))
    ax_target.plot(x_plot, y_plot, color="black", linewidth=2)
    for knot in sawtooth.knots(exact_net):
        ax_target.axvline(knot, color=plot.SPLINE_BLUE, linestyle=":", linewidth=1.4)
    ax_target.set(title="4 ReLUs draw it exactly", xticks=[-1, 0, 1], yticks=[0, 1])
    ax_error.plot(widths, np.maximum(errors.mean(axis=1), ERROR_FLOOR), "o-", color=plot.BOUNDARY_RED)
    ax_error.set_xscale("log")
    ax_error.set_yscale("log")
    ax_error.set_xticks(widths[::2], [str(w) for w in widths[::2]])
    ax_error.minorticks_off()
    ax_error.axvline(4, color="grey", linestyle="--", linewidth=1)
    ax_error.set(title="trained: mean error vs width", xlabel="hidden units")
    fig.tight_layout()
    return fig


def width_frame(ensemble, exact_net, width: int, solved: float, mean_error: float):
    """Slider frame: every network of one width, its fit over the target (top) and its knots, one row per network
    (bottom), the exact knots dotted."""
    x_plot, y_plot = sawtooth.sawtooth_task(401)
    with torch.no_grad():
        fits = ensemble(x_plot).numpy()
    fig, (ax_fit, ax_knots) = plt.subplots(2, 1, figsize=(8, 5.8), sharex=True,
                                           gridspec_kw={"height_ratios": [2, 1.2]})
    colours = plt.cm.tab10(np.arange(len(ensemble.seeds)) % 10)
    for index, colour in enumerate(colours):
        ax_fit.plot(x_plot[:, 0], fits[:, index], color=colour, linewidth=1.2, alpha=0.8)
        points = sawtooth.knots(ensemble.member(index))
        ax_knots.plot(points, np.full(len(points), index), "|", color=colour, markersize=10, markeredgewidth=1.8)
    ax_fit.plot(x_plot[:, 0], y_plot[:, 0], color="black", linewidth=2.4, zorder=0)
    ax_fit.set_ylim(-0.3, 1.3)
    ax_fit.set_ylabel("$f(x)$")
    ax_fit.set_title(f"width {width}: {solved:.0%} of {len(ensemble.seeds)} networks solve it "
                     f"(mean MSE {mean_error:.1e})")
    for knot in sawtooth.knots(exact_net):
        ax_knots.axvline(knot, color="grey", linestyle=":", linewidth=1.2)
    ax_knots.set_ylim(-0.7, len(ensemble.seeds) - 0.3)
    ax_knots.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_knots.set(ylabel="network", xlabel="$x$ (knots $-b_k/w_k$; dotted: the exact ones)", xlim=(-1.02, 1.02))
    fig.tight_layout()
    return fig


def kmeans_figure(points, centres, first_run: dict, recovered: dict, radius: float):
    """Fig 10: the Voronoi partition of each method's 64 centroids for the first seed (three panels) and the
    clusters recovered by each method over all seeds (bottom right).

    ``first_run``: method -> centroids; ``recovered``: method -> clusters recovered per seed.
    """
    methods = list(first_run)
    fig, axes = plt.subplots(2, 2, figsize=(8, 8.6))
    for ax, method in zip(axes.flat[:3], methods):
        missed = kmeans.draw_voronoi(ax, points, centres, first_run[method], radius)
        ax.set_title(f"{method}\ncost {kmeans.kmeans_cost(points, first_run[method]):.0f}, "
                     f"{len(centres) - missed.sum()} of {len(centres)} recovered")
    ax_spread = axes[1, 1]
    for index, method in enumerate(methods):
        counts = recovered[method]
        ax_spread.scatter(np.full(len(counts), index) + np.linspace(-0.15, 0.15, len(counts)), counts, s=22,
                          color=KMEANS_COLOURS[index % len(KMEANS_COLOURS)])
        ax_spread.plot([index - 0.25, index + 0.25], [counts.mean()] * 2, color="black", linewidth=2)
    ax_spread.set_xticks(range(len(methods)), ["random", "pruned", "k-means++"][:len(methods)])
    ax_spread.set_xlim(-0.5, len(methods) - 0.5)
    ax_spread.set_ylabel(f"clusters recovered (of {len(centres)})")
    ax_spread.set_title(f"all {len(recovered[methods[0]])} seeds; bar: mean")
    fig.tight_layout()
    return fig


def pruning_frame(points, centres, history: Sequence[np.ndarray], step: int, radius: float):
    """Slider frame: the Voronoi partition after ``step`` removals (left) and the k-means cost along the pruning,
    this step marked (right)."""
    fig, (ax, ax_cost) = plt.subplots(1, 2, figsize=(8, 5.2), gridspec_kw=dict(width_ratios=(1.45, 1)))
    missed = kmeans.draw_voronoi(ax, points, centres, history[step], radius)
    ax.set_title(f"{len(history[step])} centroids; {missed.sum()} clusters\nnot recovered (red crosses)")
    left = [len(centroids) for centroids in history]
    costs = [kmeans.kmeans_cost(points, centroids) for centroids in history]
    ax_cost.plot(left, costs, color="0.4")
    ax_cost.plot(left[step], costs[step], "o", color=plot.BOUNDARY_RED, markersize=9)
    ax_cost.invert_xaxis()
    ax_cost.set(xlabel="centroids left", ylabel="k-means cost", title=f"cost {costs[step]:.0f}")
    ax_cost.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def strategies_figure(results: dict, architectures: dict):
    """Fig 9: per task (rows) the final test accuracy of each strategy (left) and its training cost (right).

    ``results``: task -> list of :func:`~.strategies.compare_strategies` results (one per seed);
    ``architectures``: task -> (small widths, dense widths).
    """
    fig, axes = plt.subplots(len(results), 2, figsize=(8, 4.3 * len(results)), sharey=True, squeeze=False)
    for row, (task, runs) in enumerate(results.items()):
        small, dense = architectures[task]
        strategies.draw_accuracy_ranges(axes[row, 0], runs)
        strategies.draw_cost_bars(axes[row, 1], runs)
        axes[row, 0].set_title(f"{task}: small {'-'.join(map(str, small))}")
        axes[row, 1].set_title(f"cost (dense {'-'.join(map(str, dense))})")
        low = min(min(run[s][-1][1] for run in runs) for s in strategies.WITH_DENSE)
        axes[row, 0].set_xlim(max(0.0, low - 0.03), 1.0)
    fig.tight_layout()
    return fig


def strategy_frame(results: dict, strategy: str):
    """Slider frame: one strategy's learning curve highlighted over the others, one panel per task."""
    fig, axes = plt.subplots(len(results), 1, figsize=(8, 3.3 * len(results)), squeeze=False)
    for ax, (task, runs) in zip(axes[:, 0], results.items()):
        strategies.draw_learning_curves(ax, runs, highlight=strategy)
        ax.set_title(f"{task}: {strategy}")
        ax.set_ylim(0.4, 1.0)
    axes[0, 0].legend(loc="lower right", ncols=2, fontsize=9)
    fig.tight_layout()
    return fig
