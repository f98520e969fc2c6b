"""Sliders that work everywhere: in a live kernel, in Colab, and on the static book page.

:func:`frame_slider` renders one figure per slider value ahead of time and shows them behind a plain HTML
``<input type="range">`` with a few lines of inline JavaScript: no kernel, no widget library, no CDN, no external
URL (the frames are inlined as ``data:`` PNGs). In a live kernel, ``live=True`` shows an ipywidgets slider over the
same values instead, which draws each frame the first time it is asked for (so the cell runs fast) and remembers it.
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
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one slider position")
    if not 0 <= start < len(values):
        raise ValueError(f"start must index values, 0 <= start < {len(values)}; got {start}")
    labels = [str(format_value(value)) for value in values]
    if live and not os.environ.get(BUILD_ENVIRONMENT_VARIABLE) and _in_interactive_kernel():
        try:
            import ipywidgets
        except ImportError:
            pass
        else:
            _display_live_slider(ipywidgets, lambda index: figure_png(draw(values[index]), dpi=dpi), labels, name,
                                 start)
            return None
    from IPython.display import HTML

    frames = [figure_png(draw(value), dpi=dpi) for value in values]
    return HTML(slider_html(frames, labels, name, start))


def _display_live_slider(ipywidgets, render: Callable[[int], bytes], labels: list[str], name: str,
                         start: int) -> None:
    """An ipywidgets slider that renders frame ``index`` with ``render(index)`` once and caches it."""
    from IPython.display import display

    cache: dict[int, bytes] = {}
    slider = ipywidgets.IntSlider(value=start, min=0, max=len(labels) - 1, description=name,
                                  readout=False, continuous_update=False,
                                  style={"description_width": "initial"})
    value = ipywidgets.Label(labels[start])
    image = ipywidgets.Image(format="png")

    def show(index: int) -> None:
        if index not in cache:
            cache[index] = render(index)
        image.value = cache[index]
        value.value = labels[index]

    slider.observe(lambda change: show(change["new"]), names="value")
    show(start)
    display(ipywidgets.VBox([ipywidgets.HBox([slider, value]), image]))


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
