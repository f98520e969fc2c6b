"""The kernel-free slider: one frame per value, readable labels, no external URL, unique ids, same input same HTML,
a play/pause button on request. The live slider: draws on demand, an ipywidgets.Play linked to it on request.
The live control: recomputes on every move in a kernel; a note and the default picture on the static page.
How the static slider behaves in a browser (playing, keyboard, phone layout) is tests/test_browser_sliders.py."""
import base64
import io
import json
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from PIL import Image

from spline_utils.pages import interact, static_sliders
from spline_utils.pages.interact import frame_slider, live_control, slider_html, static_frame_html
from spline_utils.plot.drawing import figure_png

VALUES = [0.0, 0.25, 0.5, 0.75]
DPI = 30


def draw_bar(value):
    """A figure that differs with ``value`` (a bar of that height)."""
    fig, ax = plt.subplots(figsize=(1.5, 1.5))
    ax.bar([0], [value])
    ax.set_ylim(0, 1)
    return fig


class Elements(HTMLParser):
    """Every start tag as (tag, attributes) and the text of every <script> and <output>."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.scripts, self.outputs, self._inside = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._inside = tag if tag in ("script", "output") else None

    def handle_endtag(self, tag):
        self._inside = None

    def handle_data(self, data):
        if self._inside == "script":
            self.scripts.append(data)
        elif self._inside == "output":
            self.outputs.append(data)

    def first(self, tag):
        return next(attrs for name, attrs in self.tags if name == tag)


def script_arrays(script):
    """The labels and frames arrays the inline script switches between."""
    labels = json.loads(re.search(r"labels = (\[.*?\]),", script).group(1))
    frames = json.loads(re.search(r"frames = (\[.*?\]);", script).group(1))
    return labels, frames


@pytest.fixture(scope="module")
def page():
    return frame_slider(draw_bar, VALUES, "height", format_value=lambda v: f"{v:.0%}", start=1, dpi=DPI).data


def test_one_frame_per_value_equal_to_the_drawn_figure(page):
    labels, frames = script_arrays(Elements(page).scripts[0])
    assert len(frames) == len(VALUES)
    expected = [figure_png(draw_bar(value), dpi=DPI) for value in VALUES]
    assert all(frame.startswith("data:image/png;base64,") for frame in frames), "frames are data URLs in the HTML"
    assert [base64.b64decode(frame.removeprefix("data:image/png;base64,")) for frame in frames] == expected
    assert len(set(frames)) == len(VALUES), "different values must give different pictures"


def test_labels_and_initial_state(page):
    elements = Elements(page)
    labels, frames = script_arrays(elements.scripts[0])
    assert labels == ["0%", "25%", "50%", "75%"]
    slider = elements.first("input")
    assert (slider["type"], slider["min"], slider["max"], slider["value"]) == ("range", "0", "3", "1")
    assert slider["aria-valuetext"] == "25%"
    assert elements.outputs == ["25%"]
    image = elements.first("img")
    assert image["src"] == frames[1]
    assert image["alt"] == "height: 25%"
    width, height = static_sliders.png_size(base64.b64decode(frames[1].removeprefix("data:image/png;base64,")))
    assert (image["width"], image["height"]) == (str(width), str(height)), "the page reserves the frame's size"


def test_no_external_urls(page):
    elements = Elements(page)
    for tag, attrs in elements.tags:
        for attribute in ("src", "href"):
            assert attrs.get(attribute, "data:").startswith("data:"), f"<{tag} {attribute}> leaves the page"
    without_images = re.sub(r"[A-Za-z0-9+/=]{64,}", "", page)  # base64 frames may contain "//" by chance
    assert not re.search(r"https?:|//[a-z]", without_images), "the slider must not load anything from the network"


def test_ids_are_unique_per_slider_and_stable(page):
    again = frame_slider(draw_bar, VALUES, "height", format_value=lambda v: f"{v:.0%}", start=1, dpi=DPI).data
    assert again == page, "the same arguments must give byte-identical HTML (reproducible pages)"
    frames = [figure_png(draw_bar(value), dpi=DPI) for value in VALUES[:2]]
    variants = [slider_html(frames, ["a", "b"], "x"), slider_html(frames, ["a", "c"], "x"),
                slider_html(frames, ["a", "b"], "y"), slider_html(frames, ["a", "b"], "x", start=1),
                slider_html(frames[::-1], ["a", "b"], "x"), slider_html(frames, ["a", "b"], "x", play=True),
                slider_html(frames, ["a", "b"], "x", play=True, interval_ms=300), page]
    ids = [Elements(html).first("div")["id"] for html in variants]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"su-slider-[0-9a-f]{12}", element_id) for element_id in ids)


def test_play_button_only_when_asked_and_named_for_assistive_technology(page):
    assert "<button" not in page, "play defaults to False: no button on a slider that is not a process"
    played = frame_slider(draw_bar, VALUES, "height", format_value=lambda v: f"{v:.0%}", start=1, dpi=DPI,
                          play=True, interval_ms=250).data
    elements = Elements(played)
    buttons = [attrs for tag, attrs in elements.tags if tag == "button"]
    assert buttons == [{"type": "button", "class": "su-slider-play", "aria-label": "Play height"}]
    icon = next(attrs for tag, attrs in elements.tags if attrs.get("class") == "su-slider-icon")
    assert icon["aria-hidden"] == "true", "the play glyph is decoration: screen readers read the button's label"
    button_text = re.sub(r"<[^>]+>", "", re.search(r"<button.*?</button>", played, re.S).group(0))
    assert button_text.endswith(" Play"), f"the button shows the word Play: {button_text!r}"
    assert re.search(r"\binterval = 250\b", elements.scripts[0]), "the script steps at the interval asked for"
    assert script_arrays(elements.scripts[0]) == script_arrays(Elements(page).scripts[0]), "same frames and labels"
    assert played.isascii() and page.isascii(), "the HTML is plain ASCII (glyphs as character references)"


@pytest.mark.parametrize("interval_ms, error", [(0, ValueError), (-100, ValueError), (1.5, TypeError),
                                               ("700", TypeError), (True, TypeError)])
def test_play_interval_must_be_a_positive_integer(interval_ms, error):
    frame = figure_png(draw_bar(0.5), dpi=DPI)
    with pytest.raises(error, match="interval_ms must be a whole number >= 1"):
        slider_html([frame], ["a"], "x", play=True, interval_ms=interval_ms)
    with pytest.raises(error, match="interval_ms must be a whole number >= 1"):
        frame_slider(draw_bar, VALUES, "x", play=True, interval_ms=interval_ms)


def test_text_cannot_break_out_of_the_page():
    frame = figure_png(draw_bar(0.5), dpi=DPI)
    hostile = '</script><script>alert("x")</script> & "quotes" \u03b8 \u2265 0.5'
    html = slider_html([frame], [hostile], hostile, play=True)
    assert html.isascii(), "non-ASCII text travels as character references"
    elements = Elements(html)
    assert [tag for tag, _ in elements.tags].count("script") == 1
    labels, _ = script_arrays(elements.scripts[0])
    assert labels == [hostile]
    assert elements.first("img")["alt"] == f"{hostile}: {hostile}"
    assert elements.first("button")["aria-label"] == f"Play {hostile}"


@pytest.mark.parametrize("frames, labels, start, message", [
    ([], [], 0, "at least one frame"),
    ([b"\x89PNG\r\n\x1a\n"], ["a", "b"], 0, "one label per frame"),
    ([b"GIF89a"], ["a"], 0, "PNG bytes"),
    ([b"\x89PNG\r\n\x1a\n"], ["a"], 1, "start must index"),
])
def test_slider_html_rejects_bad_input(frames, labels, start, message):
    with pytest.raises(ValueError, match=message):
        slider_html(frames, labels, "x", start)


def test_png_size_reads_the_header():
    frame = figure_png(draw_bar(0.5), dpi=DPI)  # 1.5 inches at 30 dpi, cropped to its tight box
    assert static_sliders.png_size(frame) == Image.open(io.BytesIO(frame)).size
    with pytest.raises(ValueError, match="not a PNG"):
        static_sliders.png_size(b"GIF89a" + bytes(20))


def test_frame_slider_rejects_bad_input():
    with pytest.raises(ValueError, match="values is empty"):
        frame_slider(draw_bar, [], "x")
    with pytest.raises(ValueError, match="start must index"):
        frame_slider(draw_bar, VALUES, "x", start=len(VALUES))


@pytest.fixture
def live_kernel(monkeypatch):
    """An interactive kernel with ipywidgets, outside the book build; returns the list of widgets displayed."""
    pytest.importorskip("ipywidgets")
    shown = []
    monkeypatch.delenv(interact.BUILD_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(interact, "_in_interactive_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda widget: shown.append(widget))
    return shown


def test_live_kernel_draws_on_demand(live_kernel):
    shown, drawn = live_kernel, []
    result = frame_slider(lambda v: drawn.append(v) or draw_bar(v), VALUES, "height", start=2, dpi=DPI)
    assert result is None and len(shown) == 1
    assert drawn == [VALUES[2]], "only the initial frame is drawn until the reader moves the slider"
    controls, image = shown[0].children
    slider, label = controls.children
    slider.value = 0
    assert drawn == [VALUES[2], VALUES[0]] and label.value == str(VALUES[0])
    assert image.value == figure_png(draw_bar(VALUES[0]), dpi=DPI)
    slider.value = 2
    assert len(drawn) == 2, "a frame already drawn is reused"


def widget_links(ipywidgets):
    """Every jslink the kernel holds, as ((source widget, trait), (target widget, trait))."""
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_link import Link

    return [(link.source, link.target) for link in list(_instances.values()) if isinstance(link, Link)]


@pytest.mark.parametrize("play", [True, False])
def test_live_slider_gets_a_play_widget_linked_in_the_browser_when_asked(live_kernel, play):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown, drawn = live_kernel, []
    links_before = widget_links(ipywidgets)
    result = frame_slider(lambda v: drawn.append(v) or draw_bar(v), VALUES, "height", start=1, dpi=DPI,
                          play=play, interval_ms=400)
    assert result is None and len(shown) == 1
    controls, image = shown[0].children
    new_links = [link for link in widget_links(ipywidgets) if link not in links_before]
    if not play:
        assert [type(child).__name__ for child in controls.children] == ["IntSlider", "Label"]
        assert new_links == []
        return
    player, slider, label = controls.children
    assert isinstance(player, ipywidgets.Play) and isinstance(slider, ipywidgets.IntSlider)
    assert (player.min, player.max, player.value, player.step, player.interval) == (0, 3, 1, 1, 400)
    assert not player.repeat, "the live player stops on the last value, as the static page's does"
    assert new_links == [((player, "value"), (slider, "value"))], "the player must drive the slider in the browser"
    slider.value = 3  # what the browser sends when the linked player reaches the end
    assert drawn == [VALUES[1], VALUES[3]] and label.value == str(VALUES[3])
    assert image.value == figure_png(draw_bar(VALUES[3]), dpi=DPI)


def test_book_build_is_always_static(monkeypatch):
    monkeypatch.setenv(interact.BUILD_ENVIRONMENT_VARIABLE, "1")
    monkeypatch.setattr(interact, "_in_interactive_kernel", lambda: True)
    result = frame_slider(draw_bar, VALUES[:2], "height", dpi=DPI)
    assert "su-slider" in result.data


def test_live_control_recomputes_every_move(live_kernel):
    shown, computed = live_kernel, []

    def compute(value):
        label_while_computing = shown[0].children[0].children[1].value if shown else None
        computed.append((value, label_while_computing))
        return draw_bar(value)

    result = live_control(compute, VALUES, "height", format_value=lambda v: f"{v:.0%}", start=2, dpi=DPI)
    assert result is None and len(shown) == 1
    assert computed == [(VALUES[2], None)], "only the initial position is computed when the cell runs"
    controls, image = shown[0].children
    slider, label = controls.children
    assert (slider.min, slider.max, slider.value, slider.continuous_update) == (0, 3, 2, False)
    assert image.value == figure_png(draw_bar(VALUES[2]), dpi=DPI) and label.value == "50%"
    slider.value = 0
    assert computed[-1] == (VALUES[0], "0% (computing...)"), "the reader is told while the kernel works"
    assert image.value == figure_png(draw_bar(VALUES[0]), dpi=DPI) and label.value == "0%"
    slider.value = 2
    assert [value for value, _ in computed] == [VALUES[2], VALUES[0], VALUES[2]], "a live control never caches"
    assert image.value == figure_png(draw_bar(VALUES[2]), dpi=DPI) and label.value == "50%"


@pytest.mark.parametrize("static_because", ["book build", "no kernel", "live=False"])
def test_live_control_on_the_static_page_shows_a_note_and_the_default_picture(monkeypatch, static_because):
    computed = []
    if static_because == "book build":
        monkeypatch.setenv(interact.BUILD_ENVIRONMENT_VARIABLE, "1")
        monkeypatch.setattr(interact, "_in_interactive_kernel", lambda: True)
    else:
        monkeypatch.delenv(interact.BUILD_ENVIRONMENT_VARIABLE, raising=False)
        monkeypatch.setattr(interact, "_in_interactive_kernel", lambda: static_because != "no kernel")
    result = live_control(lambda v: computed.append(v) or draw_bar(v), VALUES, "height",
                          format_value=lambda v: f"{v:.0%}", start=1, dpi=DPI, live=static_because != "live=False")
    assert computed == [VALUES[1]], "the static page computes the default position only"
    elements = Elements(result.data)
    images = [attrs for tag, attrs in elements.tags if tag == "img"]
    assert len(images) == 1 and not elements.scripts
    assert base64.b64decode(images[0]["src"].removeprefix("data:image/png;base64,")) == \
        figure_png(draw_bar(VALUES[1]), dpi=DPI)
    assert images[0]["alt"] == "height: 25%"
    note = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", result.data.split("<img")[0]))
    for phrase in ("Live control", "Jupyter or Colab", "height from 0% to 75%", "(4 positions)", "height = 25%"):
        assert phrase in note, f"the note should say {phrase!r}: {note}"


def test_static_frame_html_escapes_text_and_rejects_bad_input():
    frame = figure_png(draw_bar(0.5), dpi=DPI)
    hostile = '<script>alert("x")</script> \u03b8'
    elements = Elements(static_frame_html(frame, [hostile], hostile))
    assert static_frame_html(frame, [hostile], hostile).isascii()
    assert [tag for tag, _ in elements.tags].count("script") == 0
    assert elements.first("img")["alt"] == f"{hostile}: {hostile}"
    with pytest.raises(ValueError, match="PNG bytes"):
        static_frame_html(b"GIF89a", ["a"], "x")
    with pytest.raises(ValueError, match="start must index"):
        static_frame_html(frame, ["a"], "x", start=1)
    with pytest.raises(ValueError, match="values is empty"):
        live_control(draw_bar, [], "x")
    with pytest.raises(ValueError, match="start must index"):
        live_control(draw_bar, VALUES, "x", start=-1)
