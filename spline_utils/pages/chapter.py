"""The preamble every chapter notebook runs first: figure style, threads, ``glue`` and ``show``, a timer.

A chapter starts with ``from spline_utils.pages.chapter import FRAME_DPI, glue, show, start_chapter`` and
``chapter_start = start_chapter()``. In the book build ``glue`` is myst-nb's (numbers and figures are pasted into the
prose); in Colab or plain Jupyter there is no prose to fill, so figures are shown where they are made and numbers are
left to the cell's own printout.
"""
from __future__ import annotations

import time

import matplotlib.pyplot as plt
import torch

FRAME_DPI = 100  # slider frames 8 inches wide: 800 px, the width of the page's column
FIGURE_STYLE = {"figure.dpi": 100, "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
                "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 10}

try:
    from myst_nb import glue
except ImportError:  # Colab or plain Jupyter: show figures where they are made, numbers are printed anyway
    def glue(name: str, value, display: bool = True) -> None:
        """Stand-in for myst-nb's ``glue`` outside the book build: show figures and tables, skip plain values."""
        if not isinstance(value, (str, int, float)):
            from IPython.display import display as display_value
            display_value(value)


def show(name: str, fig) -> None:
    """Hand a finished figure to the book (a numbered figure with its caption below) and close it."""
    glue(name, fig, display=False)
    plt.close(fig)


def start_chapter(threads: int = 1) -> float:
    """Set the book's figure style and torch's thread count; return the start time for the chapter's timing.

    The book's networks are small: one torch thread is faster than two that hand work to each other on a busy
    2-core machine. Returns ``time.perf_counter()``.
    """
    torch.set_num_threads(threads)
    plt.rcParams.update(FIGURE_STYLE)
    return time.perf_counter()
