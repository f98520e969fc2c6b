"""A matplotlib backend for tests: Agg, plus a readability check of every figure a notebook cell leaves open.

Select it in the environment of a Jupyter kernel, with a report file::

    MPLBACKEND=module://spline_utils.plot.readability_backend SPLINE_READABILITY_REPORT=/tmp/report.jsonl

Every pyplot figure is checked with :func:`spline_utils.plot.readability.record_figure` at the resolution the inline
backend would show it (``fig.dpi``) when it is closed: by ``plt.close`` (e.g. after ``glue(name, fig)``), by
``plt.show()``, or after the cell that left it open (an IPython ``post_execute`` hook closes every open figure, as
the inline backend does after displaying them). Figures are not displayed.
"""
from __future__ import annotations

from matplotlib._pylab_helpers import Gcf
from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

from spline_utils.plot.readability import record_figure


class FigureManager(FigureManagerBase):
    """Records its figure's readability problems when the figure is closed."""

    def destroy(self) -> None:
        record_figure(self.canvas.figure, f"cell {_execution_count()}")
        super().destroy()


class FigureCanvas(FigureCanvasAgg):
    manager_class = FigureManager


def check_open_figures() -> None:
    """Close every open figure, which records its readability problems."""
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
