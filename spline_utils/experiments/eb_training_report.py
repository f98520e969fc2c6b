"""Summaries of :func:`spline_utils.experiments.eb_training.compare`: mean and spread over seeds, a table, a plot."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .eb_training import METHODS


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (method, ratio), FLOPs relative to the dense run.

    Returns
    -------
    list of dict with ``method, ratio, n_seeds, accuracy_mean, accuracy_std, accuracy_min, flops_mean,
    flops_saving`` (dense FLOPs / method FLOPs), ``epoch_mean``; in the order of :data:`METHODS`, then ratio.
    """
    dense = [row["flops"] for row in rows if row["method"] == "dense"]
    reference = float(np.mean(dense)) if dense else float("nan")
    summary = []
    order = list(METHODS)
    keys = sorted({(order.index(r["method"]), r["ratio"]) for r in rows})
    for method_index, ratio in keys:
        group = [r for r in rows if r["method"] == order[method_index] and r["ratio"] == ratio]
        accuracies = np.array([r["accuracy"] for r in group])
        epochs = [r["epoch"] for r in group if r["epoch"] is not None]
        summary.append(dict(method=order[method_index], ratio=ratio, n_seeds=len(group),
                            accuracy_mean=float(accuracies.mean()), accuracy_std=float(accuracies.std()),
                            accuracy_min=float(accuracies.min()),
                            flops_mean=float(np.mean([r["flops"] for r in group])),
                            flops_saving=reference / float(np.mean([r["flops"] for r in group])),
                            epoch_mean=float(np.mean(epochs)) if epochs else float("nan")))
    return summary


def format_table(summary: Sequence[dict]) -> str:
    """A plain-text table of :func:`summarize`'s rows."""
    lines = [f"{'method':20s} {'ratio':>5s} {'test accuracy':>16s} {'train GFLOPs':>12s} {'saving':>7s} "
             f"{'ticket epoch':>12s}"]
    for row in summary:
        epoch = "-" if np.isnan(row["epoch_mean"]) else f"{row['epoch_mean']:.1f}"
        lines.append(f"{row['method']:20s} {row['ratio']:5.0%} {row['accuracy_mean']:8.3f} +- "
                     f"{row['accuracy_std']:.3f} {row['flops_mean'] / 1e9:12.1f} {row['flops_saving']:6.2f}x "
                     f"{epoch:>12s}")
    return "\n".join(lines)


MARKERS = {"dense": "*", "spline-EB layerwise": "o", "spline-EB global": "s", "magnitude @EB": "^",
           "random @EB": "v", "mask-EB": "D", "network slimming": "P"}


def plot_accuracy_vs_flops(ax, summary: Sequence[dict]):
    """Test accuracy (mean, error bar = std over seeds) against total training FLOPs, one series per method."""
    colours = plt.get_cmap("tab10")
    for index, method in enumerate(METHODS):
        group = [row for row in summary if row["method"] == method]
        if not group:
            continue
        ax.errorbar([row["flops_mean"] for row in group], [row["accuracy_mean"] for row in group],
                    yerr=[row["accuracy_std"] for row in group], marker=MARKERS[method], markersize=7,
                    color=colours(index), linestyle="-" if len(group) > 1 else "none", capsize=3, label=method)
        for row in group:
            if row["ratio"] > 0:
                ax.annotate(f"{row['ratio']:.0%}", (row["flops_mean"], row["accuracy_mean"]), fontsize=7,
                            xytext=(4, -9), textcoords="offset points", color=colours(index))
    ax.set_xlabel("total training FLOPs")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return ax
