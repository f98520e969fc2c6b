"""Is a figure readable at the size the book's page shows it? Text size, overlapping text, axes too small to read.

The page shows a figure as a PNG cropped to its tight bounding box (``bbox_inches="tight"``, as the notebook's inline
backend and :func:`spline_utils.plot.figure_png` save it), at its natural width in CSS pixels, in a text column of
``column_px`` pixels (800 on the book's desktop page); a wider PNG is scaled down to the column. :func:`check_figure`
renders a figure with the Agg renderer, records every piece of text it actually draws (with its clipping) and
measures it at that shown size:

* every text at least ``min_text_px`` pixels (its font size in shown pixels);
* no two texts overlapping (their drawn boxes intersect by more than 1 shown pixel in both directions), with the
  special case of one axis's tick labels colliding;
* every axes that holds something at least ``min_axes_px`` shown pixels wide and high (a colorbar: long).

On a phone (:func:`check_figure_on_phone`) a figure must read either in the 390 px column (text at least 6 px, every
axes at least 120 px) or, where it does not, in the page's tap-to-enlarge view (``book/_static/book.js``), which
shows it at the size it was drawn for, to be panned across: a multi-panel figure that reads well in the 800 px column
(13 inches at 100 dpi, 10 pt tick labels: 8.5 px) shrinks to 4 px in the column, and is read enlarged.

:func:`record_figure` appends a figure's problems to the JSON-lines file named by the environment variable
``SPLINE_READABILITY_REPORT``; the matplotlib backend :mod:`spline_utils.plot.readability_backend` calls it for every figure
a notebook cell leaves open, and :func:`spline_utils.plot.figure_png` for every slider frame.
"""
from __future__ import annotations

import contextlib
import json
import os
from itertools import combinations
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

PAGE_COLUMN_PX = 800
PHONE_COLUMN_PX = 390
MIN_TEXT_PX = 8.0
PHONE_MIN_TEXT_PX = 6.0
MIN_AXES_PX = 100.0
PHONE_MIN_AXES_PX = 120.0
ENLARGED_COLUMN_PX = float("inf")  # the tap-to-enlarge view: the figure at its drawn size, never scaled down
OVERLAP_PX = 1.0
REPORT_VARIABLE = "SPLINE_READABILITY_REPORT"
BACKEND = "module://spline_utils.plot.readability_backend"


def check_figure(fig: Figure, column_px: float = PAGE_COLUMN_PX, dpi: float | None = None,
                 min_text_px: float = MIN_TEXT_PX, min_axes_px: float = MIN_AXES_PX) -> list[str]:
    """The readability problems of ``fig`` shown in a column of ``column_px`` pixels; empty if it reads well.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Drawn (with the Agg renderer) but not closed or changed.
    column_px : float
        Width of the page's column in CSS pixels; a wider PNG is scaled down to it.
    dpi : float, optional
        Resolution the PNG is saved at (the page shows one PNG pixel per CSS pixel); ``fig.dpi`` by default, which
        is what the notebook's inline backend uses.
    min_text_px, min_axes_px : float
        Smallest font size, and smallest side of an axes that holds something, in shown pixels.

    Returns
    -------
    list of str
        One sentence per problem, naming the text or axes.
    """
    if column_px <= 0 or min_text_px < 0 or min_axes_px < 0 or (dpi is not None and dpi <= 0):
        raise ValueError(f"need column_px > 0, dpi > 0 and non-negative minimums; got column_px={column_px}, "
                         f"dpi={dpi}, min_text_px={min_text_px}, min_axes_px={min_axes_px}")
    with _agg_canvas(fig) as canvas:
        renderer = canvas.get_renderer()
        drawn = _draw_recording_text(fig, renderer)
        scale = _shown_pixels_per_display_pixel(fig, renderer, column_px, fig.dpi if dpi is None else dpi)
        tick_axis = _tick_label_owners(fig)
        texts = [(text, box) for text, clip in drawn.values()
                 if (box := _visible_box(Text.get_window_extent(text, renderer), clip)) is not None]
        problems = _small_text(texts, fig.dpi / 72 * scale, min_text_px)
        problems += _overlaps(texts, tick_axis, scale)
        problems += _small_axes(fig, renderer, scale, min_axes_px)
    return problems


def check_figure_on_phone(fig: Figure, dpi: float | None = None) -> list[str]:
    """The problems of ``fig`` read on a 390 px phone; empty if it reads in the column or in the enlarged view.

    In the column: text at least ``PHONE_MIN_TEXT_PX``, every axes at least ``PHONE_MIN_AXES_PX``. A figure that
    falls short there is read in the tap-to-enlarge view, at its drawn size; the problems returned are that view's
    (each prefixed ``"enlarged: "``), under the same two minimums.
    """
    in_column = check_figure(fig, column_px=PHONE_COLUMN_PX, dpi=dpi, min_text_px=PHONE_MIN_TEXT_PX,
                             min_axes_px=PHONE_MIN_AXES_PX)
    if not in_column:
        return []
    enlarged = check_figure(fig, column_px=ENLARGED_COLUMN_PX, dpi=dpi, min_text_px=PHONE_MIN_TEXT_PX,
                            min_axes_px=PHONE_MIN_AXES_PX)
    return [f"enlarged: {problem}" for problem in enlarged]


def describe_figure(fig: Figure) -> str:
    """A short name for ``fig``: its suptitle, else its axes titles, else its size."""
    if fig._suptitle is not None and fig._suptitle.get_text():
        return fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    width, height = fig.get_size_inches()
    return " | ".join(titles)[:120] if titles else f"untitled {width:g} x {height:g} in figure"


def record_figure(fig: Figure, source: str, dpi: float | None = None) -> None:
    """Append ``fig``'s :func:`check_figure` problems to the report file named by ``SPLINE_READABILITY_REPORT``.

    Does nothing when the variable is not set. One JSON line per figure: ``source`` (e.g. ``"cell 12"``),
    ``figure`` (:func:`describe_figure`) and ``problems`` (possibly empty, so a report also shows what was checked):
    those in the page's column, then those on a phone (:func:`check_figure_on_phone`, each prefixed ``"phone: "``).
    """
    path = os.environ.get(REPORT_VARIABLE)
    if not path:
        return
    problems = check_figure(fig, dpi=dpi) + [f"phone: {problem}" for problem in check_figure_on_phone(fig, dpi=dpi)]
    entry = dict(source=source, figure=describe_figure(fig), problems=problems)
    with open(path, "a", encoding="utf-8") as report:
        report.write(json.dumps(entry) + "\n")


def read_report(path: str | os.PathLike) -> list[dict]:
    """The entries :func:`record_figure` wrote to ``path``, in order; empty if no figure was recorded."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def format_report(entries: list[dict]) -> str:
    """The entries that have problems, for a test failure: one paragraph per source and set of problems.

    Frames of a slider with the same problems make one paragraph (with their count and the first frame's name).
    """
    groups: dict = {}
    for entry in entries:
        if entry["problems"]:
            groups.setdefault((entry["source"], tuple(entry["problems"])), []).append(entry["figure"])
    paragraphs = []
    for (source, problems), figures in groups.items():
        count = f" ({len(figures)} frames)" if len(figures) > 1 else ""
        paragraphs.append(f"{source}{count}, {figures[0]!r}:\n  " + "\n  ".join(problems))
    return "\n".join(paragraphs)


@contextlib.contextmanager
def _agg_canvas(fig: Figure):
    """``fig`` on an Agg canvas for the duration (its own canvas if that already is one), then back on its own."""
    original = fig.canvas
    if isinstance(original, FigureCanvasAgg):
        yield original
        return
    try:
        yield FigureCanvasAgg(fig)
    finally:
        fig.set_canvas(original)


def _draw_recording_text(fig: Figure, renderer) -> dict:
    """Draw ``fig`` and return ``{id: (Text, clip Bbox or None)}`` for every non-blank text actually drawn."""
    drawn = {}
    draw_text = renderer.draw_text

    def recording(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn.setdefault(id(mtext), (mtext, gc.get_clip_rectangle()))
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = recording
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    return drawn


def _shown_pixels_per_display_pixel(fig: Figure, renderer, column_px: float, dpi: float) -> float:
    """How many shown CSS pixels one pixel of the renderer (at ``fig.dpi``) becomes on the page."""
    tight = fig.get_tightbbox(renderer)  # inches
    pad = matplotlib.rcParams["savefig.pad_inches"]
    png_width = (tight.width + 2 * pad) * dpi
    return dpi / fig.dpi * min(1.0, column_px / png_width)


def _visible_box(box: Bbox, clip: Bbox | None) -> Bbox | None:
    """The part of a text's box inside its clip rectangle, or None if nothing of it is drawn."""
    if clip is None:
        return box
    inside = Bbox.intersection(box, clip)
    return inside if inside is not None and inside.width > 0 and inside.height > 0 else None


def _tick_label_owners(fig: Figure) -> dict:
    """``{id(tick label Text): "x axis of <axes>"}`` over every axes, insets included."""
    owners = {}
    for ax in _all_axes(fig):
        for name, axis in ax._axis_map.items():
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    owners[id(label)] = f"{name} axis of {_describe_axes(ax)}"
    return owners


def _small_text(texts: list, shown_px_per_point: float, min_text_px: float) -> list[str]:
    """One problem per font size below ``min_text_px`` shown pixels, naming a few of its texts."""
    by_size = {}
    for text, _ in texts:
        size = text.get_fontsize() * shown_px_per_point
        if size < min_text_px:
            by_size.setdefault(round(size, 1), []).append(text.get_text())
    problems = []
    for size, strings in sorted(by_size.items()):
        named = ", ".join(repr(s) for s in strings[:4]) + (f" and {len(strings) - 4} more" if len(strings) > 4 else "")
        problems.append(f"text at {size:.1f} px, below {min_text_px:g} px at the shown size: {named}")
    return problems


def _overlaps(texts: list, tick_axis: dict, scale: float) -> list[str]:
    """One problem per pair of overlapping texts (tick labels of one axis: a collision on that axis)."""
    problems = []
    for (first, a), (second, b) in combinations(texts, 2):
        width = min(a.x1, b.x1) - max(a.x0, b.x0)
        height = min(a.y1, b.y1) - max(a.y0, b.y0)
        if width * scale <= OVERLAP_PX or height * scale <= OVERLAP_PX:
            continue
        owner = tick_axis.get(id(first))
        if owner is not None and owner == tick_axis.get(id(second)):
            problems.append(f"tick labels collide on the {owner}: {first.get_text()!r} and {second.get_text()!r}")
        else:
            problems.append(f"texts overlap: {first.get_text()!r} and {second.get_text()!r}")
    return problems


def _small_axes(fig: Figure, renderer, scale: float, min_axes_px: float) -> list[str]:
    """One problem per visible axes holding something that is shown smaller than ``min_axes_px`` (colorbars: long)."""
    problems = []
    for ax in _all_axes(fig):
        if not ax.get_visible() or not (ax.has_data() or ax.texts or ax.images):
            continue
        box = ax.get_window_extent(renderer)
        width, height = box.width * scale, box.height * scale
        side = max(width, height) if hasattr(ax, "_colorbar") else min(width, height)
        if side < min_axes_px:
            problems.append(f"axes {_describe_axes(ax)} is {width:.0f} x {height:.0f} px at the shown size, "
                            f"below {min_axes_px:g} px")
    return problems


def _all_axes(fig: Figure) -> list:
    """Every axes of ``fig``, with the inset axes of each."""
    found, stack = [], list(fig.axes)
    while stack:
        ax = stack.pop(0)
        found.append(ax)
        stack.extend(ax.child_axes)
    return found


def _describe_axes(ax) -> str:
    label = ax.get_title() or ax.get_ylabel() or ax.get_xlabel()
    left, bottom, width, height = (float(v) for v in ax.get_position().bounds)
    return repr(label) if label else f"at ({left:.2f}, {bottom:.2f}) of the figure, {width:.2f} x {height:.2f} of it"
