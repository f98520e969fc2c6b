"""The static page's HTML for sliders: frames behind an ``<input type="range">``, and the stand-in for a live control.

Everything is self-contained: the frames are inlined as ``data:`` PNGs, the stylesheet and the few lines of
JavaScript are inline, nothing is loaded from a CDN or any other URL, and the bytes are plain ASCII. So the HTML
works as it is in Jupyter and Colab; the book build (``tools/build_book.py``) moves every ``data:`` PNG of a page
into a file of the site and puts the file's URL in its place. The script treats every frame as a URL either way and
asks for all of them only when the reader first points at, touches or focuses the slider (the page's first load
carries one frame per slider). :mod:`spline_utils.pages.interact` decides when these are shown instead of live widgets.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import struct
from typing import Sequence

from spline_utils.checks import check_index, check_integer, check_string

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URL_PREFIX = "data:image/png;base64,"


# The static slider's stylesheet, the same in every slider (no ids): one row on a wide screen; on a phone the name on
# its own line, the range across the whole column, the play button and the value below; 44 px touch targets; frames
# shrink to the column but never grow beyond their natural size (upscaling would blur them).
SLIDER_CSS = """<style>
.su-slider .su-slider-controls{display:flex;flex-wrap:wrap;align-items:center;gap:0.3em 0.8em;max-width:44em;
 margin:4px 0;font-family:sans-serif}
.su-slider .su-slider-label{display:flex;align-items:center;gap:0.5em;flex:1 1 16em;min-width:0;margin:0}
.su-slider .su-slider-range{flex:1 1 auto;min-width:6em;height:44px;margin:0;cursor:pointer}
.su-slider .su-slider-play{min-width:6.5em;min-height:44px;padding:0 0.8em;font:inherit;color:inherit;
 background:transparent;border:1px solid currentColor;border-radius:6px;cursor:pointer}
.su-slider .su-slider-play:focus-visible{outline:3px solid #1f77b4;outline-offset:2px}
.su-slider .su-slider-value{font-weight:bold;min-width:10em}
.su-slider .su-slider-frame{display:block;max-width:100%;height:auto}
@media (max-width:600px){.su-slider .su-slider-label{flex:1 1 100%;flex-direction:column;align-items:stretch}
 .su-slider .su-slider-range{width:100%}.su-slider .su-slider-value{min-width:0}}
</style>"""
# The play button's glyphs (U+FE0E keeps the triangle a text glyph, not an emoji); read by no screen reader.
PLAY_ICON, PAUSE_ICON = "\u25b6\ufe0e", "\u275a\u275a"


def slider_html(frames: Sequence[bytes], labels: Sequence[str], name: str, start: int = 0, *, play: bool = False,
                interval_ms: int = 700) -> str:
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
    play : bool
        Add a play/pause ``<button>`` that steps through the frames, one every ``interval_ms``, and stops on the
        last one; pressed there, it starts again from the first. Moving the slider (mouse, touch or keys) pauses.
    interval_ms : int
        Milliseconds per frame while playing, a positive integer.

    Returns
    -------
    str
        A ``<div class="su-slider">`` holding a stylesheet, the range input, the play button (with ``play``), the
        value label, the image (with its width and height, so the page does not jump while it loads) and an
        inline script. Its id is a hash of the content: the same arguments give the
        same HTML, different sliders get different ids. The script finds its slider through
        ``document.currentScript``, so even two identical sliders on one page work independently (the second one's
        id gets a suffix when the page loads, so ids stay unique).
    """
    frames, labels = list(frames), [str(label) for label in labels]
    if not frames or len(frames) != len(labels):
        raise ValueError(f"need one label per frame and at least one frame; got {len(frames)} frames and "
                         f"{len(labels)} labels")
    if not all(isinstance(frame, bytes) and frame.startswith(PNG_SIGNATURE) for frame in frames):
        raise ValueError("every frame must be PNG bytes (e.g. spline_utils.plot.figure_png(fig))")
    check_string("name", name, example="pruning ratio")
    start = check_index("start", start, len(frames), "a frame")
    interval_ms = check_integer("interval_ms", interval_ms, minimum=1)
    encoded = [DATA_URL_PREFIX + base64.b64encode(frame).decode("ascii") for frame in frames]
    element_id = "su-slider-" + hashlib.sha1(
        _script_json([name, labels, start, encoded, play, interval_ms]).encode()).hexdigest()[:12]
    name_text, start_label = _html_text(name), _html_text(labels[start])
    button = (f'<button type="button" class="su-slider-play" aria-label="Play {name_text}">'
              f'<span class="su-slider-icon" aria-hidden="true">{_html_text(PLAY_ICON)}</span> '
              f'<span class="su-slider-action">Play</span></button>\n') if play else ""
    return f"""<div class="su-slider" id="{element_id}" data-frames="{len(frames)}">
{SLIDER_CSS}
<div class="su-slider-controls">
<label class="su-slider-label"><span class="su-slider-name">{name_text}</span>
<input class="su-slider-range" type="range" min="0" max="{len(frames) - 1}" step="1" value="{start}"
 aria-valuetext="{start_label}"></label>
{button}<output class="su-slider-value">{start_label}</output></div>
<img class="su-slider-frame" alt="{name_text}: {start_label}" {_size_attributes(frames[start])}decoding="async"
 src="{encoded[start]}">
<script>(function() {{
  var root = document.currentScript ? document.currentScript.parentNode : document.getElementById("{element_id}");
  if (document.getElementById(root.id) !== root) root.id += "-" + document.querySelectorAll(".su-slider").length;
  var name = {_script_json(name)}, labels = {_script_json(labels)}, frames = {_script_json(encoded)};
  var input = root.querySelector("input"), image = root.querySelector("img"),
      value = root.querySelector(".su-slider-value"), button = root.querySelector(".su-slider-play"),
      icons = {_script_json([PLAY_ICON, PAUSE_ICON])}, last = frames.length - 1, interval = {interval_ms}, timer = null,
      fetched = false;
  function fetchFrames() {{  // every frame into the browser's cache, once: on the reader's first approach
    if (fetched) return;
    fetched = true;
    frames.forEach(function(source) {{ new Image().src = source; }});
  }}
  ["pointerenter", "touchstart", "focusin"].forEach(function(type) {{
    root.addEventListener(type, fetchFrames, {{once: true, passive: true}});
  }});
  function show(index) {{
    fetchFrames();
    input.value = index;
    image.src = frames[index];
    image.alt = name + ": " + labels[index];
    value.textContent = labels[index];
    input.setAttribute("aria-valuetext", labels[index]);
  }}
  function setPlaying(playing) {{
    button.setAttribute("aria-label", (playing ? "Pause " : "Play ") + name);
    button.querySelector(".su-slider-icon").textContent = icons[playing ? 1 : 0];
    button.querySelector(".su-slider-action").textContent = playing ? "Pause" : "Play";
  }}
  function pause() {{
    clearTimeout(timer);
    timer = null;
    if (button) setPlaying(false);
  }}
  function step() {{  // the next frame; the last one ends the play
    var index = Number(input.value) + 1;
    if (index <= last) show(index);
    if (index < last) timer = setTimeout(step, interval); else pause();
  }}
  input.addEventListener("input", function() {{ pause(); show(Number(input.value)); }});
  if (button) button.addEventListener("click", function() {{
    if (timer !== null) return pause();
    setPlaying(true);
    if (Number(input.value) < last) return step();
    show(0);
    timer = setTimeout(step, interval);
  }});
}})();</script>
</div>"""


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
    check_string("name", name, example="hidden units")
    start = check_index("start", start, len(labels), "labels")
    name_text, shown = _html_text(name), _html_text(labels[start])
    span = f"{_html_text(labels[0])} to {_html_text(labels[-1])}" if len(labels) > 1 else shown
    encoded = base64.b64encode(frame).decode("ascii")
    return f"""<div class="su-live-control">
<p class="su-live-note" style="font-family:sans-serif;font-size:0.9em;border-left:3px solid #888;padding-left:0.6em">
<b>Live control.</b> Run this notebook in Jupyter or Colab to move <b>{name_text}</b> from {span}
({len(labels)} positions); every move recomputes the picture. Shown here: {name_text} = {shown}.</p>
<img class="su-live-frame" style="max-width:100%;height:auto" alt="{name_text}: {shown}"
 {_size_attributes(frame)}decoding="async" src="{DATA_URL_PREFIX}{encoded}">
</div>"""


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of ``png`` from its header (the IHDR chunk that follows the signature)."""
    if len(png) < 24 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image: no IHDR header after the PNG signature")
    return struct.unpack(">II", png[16:24])


def _size_attributes(png: bytes) -> str:
    """``width="W" height="H" `` of a PNG frame, or nothing when its header cannot be read."""
    try:
        width, height = png_size(png)
    except ValueError:
        return ""
    return f'width="{width}" height="{height}" '


def _html_text(text: str) -> str:
    """``text`` escaped for HTML, non-ASCII characters as character references (the page's bytes stay ASCII)."""
    return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _script_json(value) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``</script>`` or ``<!--`` can close it)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
