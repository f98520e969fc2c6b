"""A matplotlib backend for tests: Agg, plus a readability check of every figure a notebook cell leaves open.

Select it in the environment of a Jupyter kernel, with a report file::

    MPLBACKEND=module://spline_utils.readability_backend SPLINE_READABILITY_REPORT=/tmp/report.jsonl

After every cell (an IPython ``post_execute`` hook) and at every ``plt.show()``, each open figure is checked with
:func:`spline_utils.readability.record_figure` at the resolution the inline backend would show it (``fig.dpi``) and
closed, as the inline backend closes figures after displaying them. Figures are not displayed.
"""
from __future__ import annotations

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase as FigureManager  # noqa: F401 (the backend's interface)
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: F401

from .readability import record_figure


def check_open_figures() -> None:
    """Record every open figure's readability problems, then close it."""
    source = f"cell {_execution_count()}"
    for manager in Gcf.get_all_fig_managers():
        record_figure(manager.canvas.figure, source)
    Gcf.destroy_all()


def show(*args, **kwargs) -> None:
    """``plt.show()``: check and close the open figures."""
    check_open_figures()


def _execution_count():
    shell = _shell()
    return shell.execution_count if shell is not None else "?"


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _register_hook() -> None:
    shell = _shell()
    if shell is not None and check_open_figures not in shell.events.callbacks["post_execute"]:
        shell.events.register("post_execute", check_open_figures)


_register_hook()
