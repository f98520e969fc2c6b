"""Sliders that work everywhere: in a live kernel, in Colab, and on the static book page.

:func:`frame_slider` renders one figure per slider value ahead of time and shows them behind a plain HTML
``<input type="range">`` with a few lines of inline JavaScript: no kernel, no widget library, no CDN. In a live
kernel, ``live=True`` adds an ipywidgets slider over the same values that redraws on demand (for values beyond the
pre-rendered ones, call the drawing function directly).
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


def slider_html(frames: Sequence[bytes], labels: Sequence[str], name: str, start: int = 0) -> str:
    """HTML for a kernel-free slider over pre-rendered PNG ``frames`` with a readable ``labels`` entry each."""
    if len(frames) != len(labels) or not frames:
        raise ValueError("frames and labels must be non-empty and of equal length")
    encoded = [base64.b64encode(frame).decode("ascii") for frame in frames]
    digest = hashlib.sha1("".join(encoded).encode()).hexdigest()[:10]
    element = f"su-slider-{digest}"
    label_text = html.escape(name)
    return f"""<div class="su-slider" id="{element}" data-frames="{len(frames)}">
<div style="font-family:sans-serif;font-size:0.95em;margin:4px 0">
<label>{label_text}: <input type="range" min="0" max="{len(frames) - 1}" step="1" value="{start}"
 style="width:60%;vertical-align:middle" aria-label="{label_text}"></label>
<span class="su-slider-value" style="font-weight:bold;margin-left:8px">{html.escape(labels[start])}</span></div>
<img class="su-slider-frame" style="max-width:100%" alt="{label_text}: {html.escape(labels[start])}"
 src="data:image/png;base64,{encoded[start]}">
<script>(function() {{
  var root = document.getElementById("{element}");
  var frames = {json.dumps(encoded)};
  var labels = {json.dumps(list(labels))};
  var input = root.querySelector("input"), image = root.querySelector("img"),
      value = root.querySelector(".su-slider-value");
  input.addEventListener("input", function() {{
    image.src = "data:image/png;base64," + frames[input.value];
    image.alt = "{label_text}: " + labels[input.value];
    value.textContent = labels[input.value];
  }});
}})();</script>
</div>"""


def frame_slider(draw: Callable, values: Sequence, name: str, format_value: Callable = str, start: int = 0,
                 dpi: int = 80, live: bool = True):
    """Show a slider over ``values``; each position shows the figure ``draw(value)`` returns.

    Parameters
    ----------
    draw : callable
        ``draw(value) -> matplotlib.figure.Figure``.
    values : sequence
        The slider's positions, in order.
    name : str
        The slider's label, e.g. ``"pruning ratio"``.
    format_value : callable
        Readable label of a value, shown next to the slider.
    start : int
        Index of the initial position.
    dpi : int
        Resolution of the pre-rendered frames (page weight grows with it).
    live : bool
        In an interactive kernel with ipywidgets installed, also show a live slider. Never during the book build
        (environment variable ``SPLINE_BOOK_STATIC`` set), so the static page holds no dead widgets.

    Returns
    -------
    IPython.display.HTML
        The static slider (display it, or let it be the cell's result).
    """
    from IPython.display import HTML, display

    values = list(values)
    frames = [figure_png(draw(value), dpi=dpi) for value in values]
    static = HTML(slider_html(frames, [format_value(v) for v in values], name, start))
    if live and not os.environ.get(BUILD_ENVIRONMENT_VARIABLE) and _in_interactive_kernel():
        try:
            import ipywidgets
            import matplotlib.pyplot as plt
        except ImportError:
            return static

        def show(index):
            draw(values[index])
            plt.show()

        display(ipywidgets.interactive(show, index=ipywidgets.IntSlider(start, 0, len(values) - 1,
                                                                        description=name[:20])))
        return None
    return static


def _in_interactive_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ in ("ZMQInteractiveShell", "Shell")
