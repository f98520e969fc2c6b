"""Sliders that work everywhere: in a live kernel, in Colab, and on the static book page.

:func:`frame_slider` renders one figure per slider value ahead of time and shows them behind a plain HTML
``<input type="range">`` with a few lines of inline JavaScript: no kernel, no widget library, no CDN, no external
URL (the frames are inlined as ``data:`` PNGs). In a live kernel, ``live=True`` shows an ipywidgets slider over the
same values instead, which draws each frame the first time it is asked for (so the cell runs fast) and remembers it.
With ``play=True`` (sliders over a process: epochs, nodes, pruning steps) both get a play/pause control. The static
page's HTML is built by :mod:`spline_utils.pages.static_sliders`; ``slider_html`` and ``static_frame_html`` are re-exported.

:func:`live_control` is for what only a kernel can give: a control whose every change recomputes (re-trains a
small network, say) and redraws. The static page cannot hold every outcome, so it shows a short note and the
default position's picture.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from matplotlib.figure import Figure

from spline_utils.checks import check_callable, check_index, check_integer, check_string
from spline_utils.plot import figure_png
from spline_utils.pages.static_sliders import slider_html, static_frame_html

BUILD_ENVIRONMENT_VARIABLE = "SPLINE_BOOK_STATIC"


def frame_slider(draw: Callable, values: Sequence, name: str, format_value: Callable = str, start: int = 0,
                 dpi: int = 80, live: bool = True, *, play: bool = False, interval_ms: int = 700):
    """Show a slider over ``values``; each position shows the figure ``draw(value)`` returns.

    Parameters
    ----------
    draw : callable
        ``draw(value) -> matplotlib.figure.Figure``; the figure is closed after rendering.
    values : sequence
        The slider's positions, in order.
    name : str
        The slider's label, e.g. ``"pruning ratio"``.
    format_value : callable
        Readable label of a value, shown next to the slider.
    start : int
        Index of the initial position.
    dpi : int
        Resolution of the frames (the static page's weight grows with its square).
    live : bool
        In an interactive kernel (Jupyter, Colab) with ipywidgets installed, show a live slider that draws frames
        on demand. Never during the book build (environment variable ``SPLINE_BOOK_STATIC`` set), so the static
        page holds no dead widgets.
    play : bool
        For a slider over a process (epochs, nodes, pruning steps): add a play/pause button that steps through the
        values, one every ``interval_ms``, and stops on the last (pressed there, it starts again from the first).
        On the static page a ``<button>`` (Space or Enter toggles it, moving the slider pauses it); in a kernel an
        ``ipywidgets.Play`` linked to the slider in the browser (``jslink``), which draws frames it has not drawn
        yet as it goes, so its first pass may play slower than ``interval_ms``.
    interval_ms : int
        Milliseconds per value while playing, a positive integer.

    Returns
    -------
    IPython.display.HTML or None
        The static slider with every frame pre-rendered (display it, or let it be the cell's result); ``None``
        when the live slider was displayed instead.
    """
    check_callable("draw", draw, "draw(value) -> matplotlib Figure")
    values, labels, start, dpi = _positions(values, name, format_value, start, dpi)
    interval_ms = check_integer("interval_ms", interval_ms, minimum=1)
    ipywidgets = _live_widgets() if live else None
    if ipywidgets is not None:
        _display_live_slider(ipywidgets, lambda index: _frame(draw, "draw", values[index], dpi), labels, name,
                             start, remember=True, play_interval_ms=interval_ms if play else None)
        return None
    from IPython.display import HTML

    frames = [_frame(draw, "draw", value, dpi) for value in values]
    return HTML(slider_html(frames, labels, name, start, play=play, interval_ms=interval_ms))


def live_control(compute: Callable, values: Sequence, name: str, format_value: Callable = str, start: int = 0,
                 dpi: int = 80, live: bool = True):
    """A control over ``values`` whose every change calls ``compute(value)`` in the kernel and shows its figure.

    For work worth doing live (re-training a small network, re-partitioning it) and too varied to pre-render:
    nothing is cached, so moving back to a position recomputes it. On the static page (the book build, with
    ``SPLINE_BOOK_STATIC`` set, or no interactive kernel, or ``live=False``) only the ``start`` position is
    computed and shown, under a note that says what the control does in Jupyter or Colab.

    Parameters
    ----------
    compute : callable
        ``compute(value) -> matplotlib.figure.Figure``; the figure is closed after rendering.
    values : sequence
        The control's positions, in order.
    name : str
        The control's label, e.g. ``"hidden units"``.
    format_value : callable
        Readable label of a value, shown next to the control.
    start : int
        Index of the initial position (the one the static page shows).
    dpi : int
        Resolution of the pictures.
    live : bool
        Show the live control when an interactive kernel with ipywidgets is there.

    Returns
    -------
    IPython.display.HTML or None
        The note with the ``start`` picture (display it, or let it be the cell's result); ``None`` when the live
        control was displayed instead.
    """
    check_callable("compute", compute, "compute(value) -> matplotlib Figure")
    values, labels, start, dpi = _positions(values, name, format_value, start, dpi)
    ipywidgets = _live_widgets() if live else None
    if ipywidgets is not None:
        _display_live_slider(ipywidgets, lambda index: _frame(compute, "compute", values[index], dpi), labels, name,
                             start, remember=False)
        return None
    from IPython.display import HTML

    return HTML(static_frame_html(_frame(compute, "compute", values[start], dpi), labels, name, start))


def _positions(values: Sequence, name: str, format_value: Callable, start: int,
               dpi: int) -> tuple[list, list[str], int, int]:
    """The positions as a list, their readable labels, ``start`` and ``dpi`` as ints, after checking every argument.

    Raises
    ------
    TypeError
        ``values`` is not a sequence, ``name`` not a string, ``format_value`` not callable, ``start`` or ``dpi``
        not an integer.
    ValueError
        ``values`` is empty, ``start`` does not index it, or ``dpi < 1``.
    """
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"values must be a sequence of slider positions, e.g. [0.1, 0.2, 0.3]; got "
                        f"{type(values).__name__}")
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one slider position")
    check_string("name", name, example="pruning ratio")
    check_callable("format_value", format_value, "format_value(value) -> str")
    start = check_index("start", start, len(values), "values")
    dpi = check_integer("dpi", dpi, minimum=1)
    return values, [str(format_value(value)) for value in values], start, dpi


def _frame(draw: Callable, role: str, value, dpi: int) -> bytes:
    """``draw(value)`` rendered to PNG bytes, or a ``TypeError`` when it returns something other than a figure."""
    figure = draw(value)
    if not isinstance(figure, Figure):
        raise TypeError(f"{role}({value!r}) must return a matplotlib Figure, got {type(figure).__name__}; end "
                        f"{role} with `return fig`")
    return figure_png(figure, dpi=dpi)


def _live_widgets():
    """The ipywidgets module where a live control can be shown (interactive kernel, not the book build), else None."""
    if os.environ.get(BUILD_ENVIRONMENT_VARIABLE) or not _in_interactive_kernel():
        return None
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


def _display_live_slider(ipywidgets, render: Callable[[int], bytes], labels: list[str], name: str,
                         start: int, remember: bool, play_interval_ms: int | None = None) -> None:
    """An ipywidgets slider whose position ``index`` shows ``render(index)``, cached when ``remember``.

    With ``play_interval_ms``, an ``ipywidgets.Play`` before the slider moves it one position every so many
    milliseconds; the two are linked in the browser (``jslink``), so the slider and its picture follow the player.
    """
    from IPython.display import display

    cache: dict[int, bytes] = {}
    slider = ipywidgets.IntSlider(value=start, min=0, max=len(labels) - 1, description=name,
                                  readout=False, continuous_update=False,
                                  style={"description_width": "initial"})
    value = ipywidgets.Label(labels[start])
    image = ipywidgets.Image(format="png")

    def show(index: int) -> None:
        frame = cache.get(index)
        if frame is None:
            value.value = f"{labels[index]} (computing...)"  # the reader sees this while render(index) runs
            frame = render(index)
            if remember:
                cache[index] = frame
        image.value, value.value = frame, labels[index]

    slider.observe(lambda change: show(change["new"]), names="value")
    show(start)
    controls = [slider, value]
    if play_interval_ms is not None:
        player = ipywidgets.Play(value=start, min=0, max=len(labels) - 1, interval=play_interval_ms,
                                 tooltip=f"play {name}")
        ipywidgets.jslink((player, "value"), (slider, "value"))
        controls.insert(0, player)
    # flex-start: the picture keeps its own size instead of being stretched (and blurred) to the column's width
    display(ipywidgets.VBox([ipywidgets.HBox(controls), image],
                            layout=ipywidgets.Layout(align_items="flex-start")))


def _in_interactive_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")
