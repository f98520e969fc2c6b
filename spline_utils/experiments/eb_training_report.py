"""Summaries of :func:`spline_utils.experiments.eb_training.compare`: mean and spread over seeds, a table, two plots."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from spline_utils.experiments.eb_training import METHODS, saving_bound

#: The paper's headline (spline-EB training, "up to 3.5x fewer training FLOPs") and where its early bird sits:
#: Fig 5 marks the EB at epochs 13-15 of 160.
PAPER_SAVING = 3.5
PAPER_EB_FRACTION = 15 / 160
RATIO_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")
RATIO_MARKERS = ("o", "s", "D", "^", "v")


def summarize(rows: Sequence[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (method, ratio), FLOPs relative to the dense run.

    Returns
    -------
    list of dict with ``method, ratio, n_seeds, accuracy_mean, accuracy_std, accuracy_min, flops_mean,
    flops_saving`` (dense FLOPs / method FLOPs), ``epoch_mean``, ``eb_fraction_mean``, ``cost_fraction_mean`` and
    ``saving_bound`` (:func:`~spline_utils.experiments.eb_training.saving_bound` of the seeds' mean cost
    ``e_EB/E + (1 - e_EB/E) f``; NaN for methods without an early bird); in the order of :data:`METHODS`, then
    ratio.
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
        fractions = [(r["eb_fraction"], r["cost_fraction"]) for r in group if r["eb_fraction"] is not None]
        bound = (1.0 / np.mean([1.0 / saving_bound(phi, f) for phi, f in fractions]) if fractions
                 else float("nan"))
        summary.append(dict(method=order[method_index], ratio=ratio, n_seeds=len(group),
                            accuracy_mean=float(accuracies.mean()), accuracy_std=float(accuracies.std()),
                            accuracy_min=float(accuracies.min()),
                            flops_mean=float(np.mean([r["flops"] for r in group])),
                            flops_saving=reference / float(np.mean([r["flops"] for r in group])),
                            epoch_mean=float(np.mean(epochs)) if epochs else float("nan"),
                            eb_fraction_mean=float(np.mean([phi for phi, _ in fractions])) if fractions
                            else float("nan"),
                            cost_fraction_mean=float(np.mean([r["cost_fraction"] for r in group])),
                            saving_bound=float(bound)))
    return summary


def format_table(summary: Sequence[dict]) -> str:
    """A plain-text table of :func:`summarize`'s rows."""
    lines = [f"{'method':20s} {'ratio':>5s} {'test accuracy':>16s} {'train GFLOPs':>12s} {'saving':>7s} "
             f"{'bound':>6s} {'ticket epoch':>12s} {'e_EB/E':>6s} {'f':>5s}"]
    for row in summary:
        epoch = "-" if np.isnan(row["epoch_mean"]) else f"{row['epoch_mean']:.1f}"
        early = not np.isnan(row["saving_bound"])
        bound = f"{row['saving_bound']:5.2f}x" if early else "-"
        fraction = f"{row['eb_fraction_mean']:.2f}" if early else "-"
        lines.append(f"{row['method']:20s} {row['ratio']:5.0%} {row['accuracy_mean']:8.3f} +- "
                     f"{row['accuracy_std']:.3f} {row['flops_mean'] / 1e9:12.1f} {row['flops_saving']:6.2f}x "
                     f"{bound:>6s} {epoch:>12s} {fraction:>6s} {row['cost_fraction_mean']:5.2f}")
    return "\n".join(lines)


def run_savings(rows: Sequence[dict]) -> list[float]:
    """Each run's training-FLOPs saving: the dense runs' mean FLOPs over the run's, one per row of ``rows``."""
    dense = np.mean([row["flops"] for row in rows if row["method"] == "dense"])
    return [float(dense / row["flops"]) for row in rows]


def methods_figure(summary: Sequence[dict], n_seeds: int):
    """:func:`plot_accuracy_and_saving` as a figure of the column's width, the rows of the methods that prune the
    spline early-bird ticket (only their criterion differs) in a shaded box."""
    fig, (accuracy_ax, saving_ax) = plt.subplots(1, 2, figsize=(8, 4.6), sharey=True,
                                                 gridspec_kw=dict(width_ratios=(1.3, 1)))
    plot_accuracy_and_saving(accuracy_ax, saving_ax, summary)
    methods = [m for m in METHODS if any(row["method"] == m for row in summary)]
    same_ticket = [methods.index(m) for m in methods if METHODS[m].ticket == "spline-EB"]
    if same_ticket:
        for ax in (accuracy_ax, saving_ax):
            ax.axhspan(min(same_ticket) - 0.45, max(same_ticket) + 0.45, color="#fff1c9", zorder=-1)
        accuracy_ax.annotate("same ticket", (0.01, max(same_ticket) + 0.4), xycoords=("axes fraction", "data"),
                             fontsize=9, color="#8a6d00", va="bottom")
    legend = saving_ax.get_legend()  # to the free upper left of the accuracy panel: no point under it
    accuracy_ax.legend(handles=legend.legend_handles, loc="upper left")
    legend.remove()
    accuracy_ax.set_title(f"(a) test accuracy, {n_seeds} seeds")
    saving_ax.set_title("(b) training FLOPs saving")
    accuracy_ax.set_xlabel("test accuracy (mean +- std)")
    saving_ax.set_xlabel("saving (dense / method)")
    fig.tight_layout()
    return fig


def saving_figure(rows: Sequence[dict]):
    """:func:`plot_saving_vs_eb_fraction` as a figure of the column's width."""
    fig, ax = plt.subplots(figsize=(8, 4.6))
    plot_saving_vs_eb_fraction(ax, rows)
    ax.set_title("training FLOPs saving against when the early bird fires")
    fig.tight_layout()
    return fig


def plot_accuracy_and_saving(accuracy_ax, saving_ax, summary: Sequence[dict]):
    """Test accuracy (left) and training-FLOPs saving (right) of every method, one row per method.

    Each method has its own row (shared by both axes), each pruning ratio its own colour, marker and offset within
    the row, so no two points sit on each other. Error bars: std over seeds. The dense network is the top row and a
    grey band (its mean +- std) across the accuracy axis; a saving of 1x is the dense cost.
    """
    methods = [m for m in METHODS if any(row["method"] == m for row in summary)]
    ratios = sorted({row["ratio"] for row in summary if row["method"] != "dense"})
    if not methods or len(ratios) > len(RATIO_COLOURS):
        raise ValueError(f"need summary rows of known methods and at most {len(RATIO_COLOURS)} ratios")
    offsets = {ratio: 0.22 * (index - (len(ratios) - 1) / 2) for index, ratio in enumerate(ratios)}
    for row in summary:
        y = methods.index(row["method"])
        if row["method"] == "dense":
            low, high = row["accuracy_mean"] - row["accuracy_std"], row["accuracy_mean"] + row["accuracy_std"]
            accuracy_ax.axvspan(low, high, color="0.88", zorder=0)
            accuracy_ax.errorbar(row["accuracy_mean"], y, xerr=row["accuracy_std"], marker="*", markersize=11,
                                 color="black", capsize=3, linestyle="none")
            saving_ax.plot(row["flops_saving"], y, marker="*", markersize=11, color="black", linestyle="none")
            continue
        index = ratios.index(row["ratio"])
        style = dict(marker=RATIO_MARKERS[index], color=RATIO_COLOURS[index], markersize=6, linestyle="none")
        accuracy_ax.errorbar(row["accuracy_mean"], y + offsets[row["ratio"]], xerr=row["accuracy_std"], capsize=2,
                             **style)
        saving_ax.plot(row["flops_saving"], y + offsets[row["ratio"]], **style)
    accuracy_ax.set_yticks(range(len(methods)), methods)
    saving_ax.set_yticks(range(len(methods)))  # the axes may share y: set the labels once, hide them on the right
    saving_ax.tick_params(axis="y", labelleft=False)
    for ax in (accuracy_ax, saving_ax):
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
    saving_ax.axvline(1.0, color="black", linewidth=0.8, linestyle=":")
    accuracy_ax.set_xlabel("test accuracy (mean +- std over seeds)")
    saving_ax.set_xlabel("training FLOPs saving (dense / method)")
    saving_ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}x"))
    handles = [plt.Line2D([], [], marker=RATIO_MARKERS[i], color=RATIO_COLOURS[i], linestyle="none",
                          label=f"prune {ratio:.0%}") for i, ratio in enumerate(ratios)]
    saving_ax.legend(handles=handles, loc="lower right")
    return accuracy_ax, saving_ax


def plot_saving_vs_eb_fraction(ax, rows: Sequence[dict], method: str = "spline-EB layerwise"):
    """Training-FLOPs saving against the fraction of training spent dense before the early bird, ``e_EB / E``.

    One curve per pruning ratio: :func:`~spline_utils.experiments.eb_training.saving_bound` with that ratio's mean
    measured cost fraction ``f``; the measured runs of ``method`` (one point per seed) and of mask-EB (hollow) on top.
    The paper's 3.5x at its EB fraction (epoch 15 of 160) is a black star, with the curve through it dashed: the cost
    fraction it implies.
    """
    dense = np.mean([row["flops"] for row in rows if row["method"] == "dense"])
    ratios = sorted({row["ratio"] for row in rows if row["method"] == method})
    if not ratios or len(ratios) > len(RATIO_COLOURS):
        raise ValueError(f"need rows of {method!r} at no more than {len(RATIO_COLOURS)} ratios")
    phi = np.linspace(0.0, 1.0, 201)
    for index, ratio in enumerate(ratios):
        group = [row for row in rows if row["method"] == method and row["ratio"] == ratio]
        f = float(np.mean([row["cost_fraction"] for row in group]))
        colour, marker = RATIO_COLOURS[index], RATIO_MARKERS[index]
        ax.plot(phi, saving_bound(phi, f), color=colour, linewidth=1.2, label=f"prune {ratio:.0%}: f = {f:.2f}")
        ax.plot([row["eb_fraction"] for row in group], [dense / row["flops"] for row in group], marker=marker,
                color=colour, linestyle="none", markersize=7)
        masks = [row for row in rows if row["method"] == "mask-EB" and row["ratio"] == ratio]
        ax.plot([row["eb_fraction"] for row in masks], [dense / row["flops"] for row in masks], marker=marker,
                markerfacecolor="none", color=colour, linestyle="none", markersize=7)
    implied = (1 / PAPER_SAVING - PAPER_EB_FRACTION) / (1 - PAPER_EB_FRACTION)
    ax.plot(phi, saving_bound(phi, implied), color="black", linestyle="--", linewidth=1.0,
            label=f"paper's 3.5x: f = {implied:.2f}")
    ax.plot(PAPER_EB_FRACTION, PAPER_SAVING, marker="*", color="black", markersize=13, linestyle="none")
    ax.plot([], [], marker="o", color="0.3", linestyle="none", label=f"{method} (one per seed)")
    ax.plot([], [], marker="o", markerfacecolor="none", color="0.3", linestyle="none", label="mask-EB (one per seed)")
    ax.set_xlim(0, 1)
    ax.set_ylim(1, max(PAPER_SAVING, *(1 / row["cost_fraction"] for row in rows if row["method"] == method)) * 1.05)
    ax.set_xlabel(r"fraction of training before the early bird, $e_{EB}/E$")
    ax.set_ylabel("training FLOPs saving")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return ax
