"""Sliders that work everywhere: in a live kernel, in Colab, and on the static book page.

:func:`frame_slider` renders one figure per slider value ahead of time and shows them behind a plain HTML
``<input type="range">`` with a few lines of inline JavaScript: no kernel, no widget library, no CDN, no external
URL (the frames are inlined as ``data:`` PNGs). In a live kernel, ``live=True`` shows an ipywidgets slider over the
same values instead, which draws each frame the first time it is asked for (so the cell runs fast) and remembers it.

:func:`live_control` is for what only a kernel can give: a control whose every change recomputes (re-trains a
small network, say) and redraws. The static page cannot hold every outcome, so it shows a short note and the
default position's picture.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from typing import Callable, Sequence

from .plot import figure_png

BUILD_ENVIRONMENT_VARIABLE = "SPLINE_BOOK_STATIC"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def slider_html(frames: Sequence[bytes], labels: Sequence[str], name: str, start: int = 0) -> str:
    """HTML for a kernel-free slider over pre-rendered PNG ``frames``, each with a readable label.

    Parameters
    ----------
    frames : sequence of bytes, length n
        PNG images, one per slider position.
    labels : sequence of str, length n
        Readable value of each position, shown next to the slider and in the image's alt text.
    name : str
        The slider's name, e.g. ``"pruning ratio"``.
    start : int
        Index of the position shown first, ``0 <= start < n``.

    Returns
    -------
    str
        A ``<div class="su-slider">`` holding the range input, the value label, the image and an inline script.
        Its id is a hash of the content: the same arguments give the same HTML, different sliders get different ids.
        The script finds its slider through ``document.currentScript``, so even two identical sliders on one page
        work independently.
    """
    frames, labels = list(frames), [str(label) for label in labels]
    if not frames or len(frames) != len(labels):
        raise ValueError(f"need one label per frame and at least one frame; got {len(frames)} frames and "
                         f"{len(labels)} labels")
    if not all(isinstance(frame, bytes) and frame.startswith(PNG_SIGNATURE) for frame in frames):
        raise ValueError("every frame must be PNG bytes (e.g. spline_utils.plot.figure_png(fig))")
    if not 0 <= start < len(frames):
        raise ValueError(f"start must index a frame, 0 <= start < {len(frames)}; got {start}")
    encoded = [base64.b64encode(frame).decode("ascii") for frame in frames]
    element_id = "su-slider-" + hashlib.sha1(_script_json([name, labels, start, encoded]).encode()).hexdigest()[:12]
    name_text, start_label = html.escape(name), html.escape(labels[start])
    return f"""<div class="su-slider" id="{element_id}" data-frames="{len(frames)}">
<div class="su-slider-controls"
 style="display:flex;align-items:center;gap:0.8em;max-width:44em;margin:4px 0;font-family:sans-serif">
<label style="display:flex;align-items:center;gap:0.5em;flex:1 1 auto">{name_text}
<input type="range" min="0" max="{len(frames) - 1}" step="1" value="{start}" style="flex:1 1 auto;min-width:8em"
 aria-valuetext="{start_label}"></label>
<output class="su-slider-value" style="font-weight:bold;min-width:10em">{start_label}</output></div>
<img class="su-slider-frame" style="max-width:100%" alt="{name_text}: {start_label}"
 src="data:image/png;base64,{encoded[start]}">
<script>(function() {{
  var root = document.currentScript ? document.currentScript.parentNode : document.getElementById("{element_id}");
  var name = {_script_json(name)}, labels = {_script_json(labels)}, frames = {_script_json(encoded)};
  var input = root.querySelector("input"), image = root.querySelector("img"),
      value = root.querySelector(".su-slider-value");
  input.addEventListener("input", function() {{
    var index = Number(input.value);
    image.src = "data:image/png;base64," + frames[index];
    image.alt = name + ": " + labels[index];
    value.textContent = labels[index];
    input.setAttribute("aria-valuetext", labels[index]);
  }});
}})();</script>
</div>"""


def frame_slider(draw: Callable, values: Sequence, name: str, format_value: Callable = str, start: int = 0,
                 dpi: int = 80, live: bool = True):
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

    Returns
    -------
    IPython.display.HTML or None
        The static slider with every frame pre-rendered (display it, or let it be the cell's result); ``None``
        when the live slider was displayed instead.
    """
    values, labels = _positions(values, format_value, start)
    ipywidgets = _live_widgets() if live else None
    if ipywidgets is not None:
        _display_live_slider(ipywidgets, lambda index: figure_png(draw(values[index]), dpi=dpi), labels, name,
                             start, remember=True)
        return None
    from IPython.display import HTML

    frames = [figure_png(draw(value), dpi=dpi) for value in values]
    return HTML(slider_html(frames, labels, name, start))


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
    values, labels = _positions(values, format_value, start)
    ipywidgets = _live_widgets() if live else None
    if ipywidgets is not None:
        _display_live_slider(ipywidgets, lambda index: figure_png(compute(values[index]), dpi=dpi), labels, name,
                             start, remember=False)
        return None
    from IPython.display import HTML

    return HTML(static_frame_html(figure_png(compute(values[start]), dpi=dpi), labels, name, start))


def static_frame_html(frame: bytes, labels: Sequence[str], name: str, start: int = 0) -> str:
    """HTML standing in for a live control on the static page: a note and the ``start`` position's PNG ``frame``.

    Parameters
    ----------
    frame : bytes
        PNG image of the ``start`` position.
    labels : sequence of str, length n
        Readable value of each position of the live control.
    name : str
        The control's name.
    start : int
        Index of the position shown, ``0 <= start < n``.

    Returns
    -------
    str
        A ``<div class="su-live-control">`` holding a ``<p class="su-live-note">`` and an ``<img>`` with the frame
        inlined as a ``data:`` URL (nothing is loaded from the network).
    """
    labels = [str(label) for label in labels]
    if not isinstance(frame, bytes) or not frame.startswith(PNG_SIGNATURE):
        raise ValueError("frame must be PNG bytes (e.g. spline_utils.plot.figure_png(fig))")
    if not 0 <= start < len(labels):
        raise ValueError(f"start must index labels, 0 <= start < {len(labels)}; got {start}")
    name_text, shown = html.escape(name), html.escape(labels[start])
    span = f"{html.escape(labels[0])} to {html.escape(labels[-1])}" if len(labels) > 1 else shown
    encoded = base64.b64encode(frame).decode("ascii")
    return f"""<div class="su-live-control">
<p class="su-live-note" style="font-family:sans-serif;font-size:0.9em;border-left:3px solid #888;padding-left:0.6em">
<b>Live control.</b> Run this notebook in Jupyter or Colab to move <b>{name_text}</b> from {span}
({len(labels)} positions); every move recomputes the picture. Shown here: {name_text} = {shown}.</p>
<img class="su-live-frame" style="max-width:100%" alt="{name_text}: {shown}" src="data:image/png;base64,{encoded}">
</div>"""


def _positions(values: Sequence, format_value: Callable, start: int) -> tuple[list, list[str]]:
    """The positions as a list and their readable labels, after checking that ``start`` indexes them."""
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one slider position")
    if not 0 <= start < len(values):
        raise ValueError(f"start must index values, 0 <= start < {len(values)}; got {start}")
    return values, [str(format_value(value)) for value in values]


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
                         start: int, remember: bool) -> None:
    """An ipywidgets slider whose position ``index`` shows ``render(index)``, cached when ``remember``."""
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
    # flex-start: the picture keeps its own size instead of being stretched (and blurred) to the column's width
    display(ipywidgets.VBox([ipywidgets.HBox([slider, value]), image],
                            layout=ipywidgets.Layout(align_items="flex-start")))


def _script_json(value) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``</script>`` or ``<!--`` can close it)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _in_interactive_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")
