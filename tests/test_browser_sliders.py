"""The static slider in a real browser: play/pause over time, by mouse and keyboard, on a phone and on a desktop.

A small page with two sliders (an "epoch" slider with a play button, a "threshold" slider without) is written to a
temporary folder and served on 127.0.0.1 by a server that stops itself after ``SERVER_SECONDS``; headless Chromium
from the system (Debian: ``make browser-deps``; never ``playwright install``) opens it with every request leaving
127.0.0.1 aborted and recorded. Every test ends with no console error or warning and no external request.
Screenshots go to ``_build/screenshots/sliders_*.png``. No book build is needed.

Without Chromium or Playwright these tests skip with a message saying what to do; with
``SPLINE_BOOK_REQUIRE_BROWSER=1`` (``make browser-check``) they fail instead.
"""
import base64
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from data_files import local_server
from spline_utils.pages.interact import slider_html
from spline_utils.plot.drawing import figure_png

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
SERVER_SECONDS = 300  # the server shuts itself down after this long, even if a test hangs
INTERVAL_MS = 150  # the play slider's milliseconds per frame
EPOCHS, THRESHOLDS = list(range(1, 9)), [0.1, 0.2, 0.3, 0.4, 0.5]
FRAME_DPI, FRAME_SIZE = 80, (8, 3)  # frames of 640 x 240 px: wider than a phone's column, narrower than a desktop's
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1400, "height": 900}
MIN_PHONE_TRACK_PX, MIN_TOUCH_PX = 300, 44
PAGE_PADDING_PX = 16  # like a book page's side padding on a phone



def draw_frame(title, height):
    """A 640 x 240 px picture that differs per position: a bar of ``height`` under ``title``."""
    fig, ax = plt.subplots(figsize=FRAME_SIZE)
    ax.barh([0], [height], color="tab:blue")
    ax.set_xlim(0, max(EPOCHS))
    ax.set_title(title)
    return figure_png(fig, dpi=FRAME_DPI)


@pytest.fixture(scope="module")
def frames():
    """The PNG frames of both sliders, rendered here (the oracle for what each position must show)."""
    return {"epoch": [draw_frame(f"epoch {epoch}", epoch) for epoch in EPOCHS],
            "threshold": [draw_frame(f"threshold {t:.1f}", 10 * t) for t in THRESHOLDS]}


@pytest.fixture(scope="module")
def site(tmp_path_factory, frames):
    """URL of a page with the two sliders, served on 127.0.0.1 for at most ``SERVER_SECONDS``."""
    folder = tmp_path_factory.mktemp("sliders")
    epoch = slider_html(frames["epoch"], [f"epoch {e}" for e in EPOCHS], "epoch", play=True, interval_ms=INTERVAL_MS)
    threshold = slider_html(frames["threshold"], [f"{t:.1f}" for t in THRESHOLDS], "threshold", start=2)
    (folder / "index.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>sliders</title></head>'
        f'<body style="margin:0"><main style="max-width:50em;margin:0 auto;padding:0 {PAGE_PADDING_PX}px">'
        f"<h1>Two sliders</h1><p>A process to play:</p>{epoch}<p>A parameter to move:</p>{threshold}"
        "</main></body></html>", encoding="utf-8")
    with local_server(folder, SERVER_SECONDS) as (base_url, _):
        yield base_url + "index.html"



def open_page(browser, site, viewport):
    """The page at ``viewport`` size; console errors and warnings, script errors and requests leaving 127.0.0.1
    are recorded."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: message.type in ("error", "warning") and page.problems.append(
        f"console {message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))

    def local_only(route):
        if route.request.url.startswith(("http://127.0.0.1", "data:")):
            return route.continue_()
        page.problems.append(f"external request: {route.request.url}")
        return route.abort()

    page.route("**/*", local_only)
    page.goto(site, wait_until="load")
    return page


@pytest.fixture
def desktop(browser, site):
    page = open_page(browser, site, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser, site):
    page = open_page(browser, site, PHONE)
    yield page
    page.context.close()


def state(slider):
    """What the reader sees: (position, value label, frame bytes, button's accessible name or None)."""
    button = slider.locator("button")
    src = slider.locator("img").get_attribute("src")
    return (int(slider.locator("input").input_value()), slider.locator("output").inner_text(),
            base64.b64decode(src.removeprefix("data:image/png;base64,")),
            button.get_attribute("aria-label") if button.count() else None)


def wait_for_position(page, slider, at_least):
    slider.locator("input").evaluate(
        "(input, target) => new Promise(done => { const check = () => Number(input.value) >= target ? done() : "
        "setTimeout(check, 20); check(); })", at_least)


def shows(slider, frames, labels):
    """The slider's picture, label and aria-valuetext agree with its position (checked against ``frames``)."""
    position, label, frame, _ = state(slider)
    return (frame == frames[position] and label == labels[position]
            and slider.locator("input").get_attribute("aria-valuetext") == labels[position])


def test_play_advances_over_time_and_pause_stops(desktop, frames):
    epoch, threshold = desktop.locator("div.su-slider").nth(0), desktop.locator("div.su-slider").nth(1)
    labels = [f"epoch {e}" for e in EPOCHS]
    assert state(epoch)[0] == 0 and state(epoch)[3] == "Play epoch"
    assert threshold.locator("button").count() == 0, "a slider without play=True has no play button"
    epoch.locator("button").click()
    assert state(epoch)[3] == "Pause epoch" and epoch.locator("button").inner_text().endswith("Pause")
    wait_for_position(desktop, epoch, 3)
    assert shows(epoch, frames["epoch"], labels), "the picture or label lags behind the position while playing"
    epoch.locator("button").click()
    paused = state(epoch)
    assert paused[3] == "Play epoch" and epoch.locator("button").inner_text().endswith("Play")
    desktop.wait_for_timeout(4 * INTERVAL_MS)
    assert state(epoch) == paused, "pause did not stop the frames"
    assert 3 <= paused[0] < len(EPOCHS) - 1
    assert state(threshold)[:2] == (2, "0.3"), "playing one slider moved another"
    assert not desktop.problems, desktop.problems


def test_play_stops_on_the_last_frame_and_starts_again_from_the_first(desktop, frames):
    epoch = desktop.locator("div.su-slider").nth(0)
    epoch.locator("input").focus()
    desktop.keyboard.press("End")
    desktop.keyboard.press("ArrowLeft")
    epoch.locator("button").click()
    wait_for_position(desktop, epoch, len(EPOCHS) - 1)
    desktop.wait_for_timeout(3 * INTERVAL_MS)
    end = state(epoch)
    assert end[0] == len(EPOCHS) - 1 and end[2] == frames["epoch"][-1]
    assert end[3] == "Play epoch", "the button should offer Play again once the last frame is reached"
    epoch.locator("button").click()
    assert state(epoch)[0] == 0 and state(epoch)[2] == frames["epoch"][0], "play on the last frame restarts"
    wait_for_position(desktop, epoch, 1)
    assert not desktop.problems, desktop.problems


def test_keyboard_space_and_enter_toggle_and_the_range_keeps_its_arrow_keys(desktop, frames):
    epoch = desktop.locator("div.su-slider").nth(0)
    button, track = epoch.locator("button"), epoch.locator("input")
    desktop.keyboard.press("Tab")  # the range input comes first, then the play button
    assert track.evaluate("element => element === document.activeElement")
    desktop.keyboard.press("ArrowRight")
    assert state(epoch)[0] == 1 and state(epoch)[2] == frames["epoch"][1], "arrow keys must still move the range"
    desktop.keyboard.press("Tab")
    assert button.evaluate("element => element === document.activeElement")
    desktop.keyboard.press("Space")
    assert state(epoch)[3] == "Pause epoch"
    wait_for_position(desktop, epoch, 3)
    desktop.keyboard.press("Space")
    paused = state(epoch)
    desktop.wait_for_timeout(3 * INTERVAL_MS)
    assert paused[3] == "Play epoch" and state(epoch) == paused, "Space did not pause"
    desktop.keyboard.press("Enter")
    assert state(epoch)[3] == "Pause epoch", "Enter did not start playing"
    track.focus()
    desktop.keyboard.press("Home")
    stopped = state(epoch)
    desktop.wait_for_timeout(3 * INTERVAL_MS)
    assert stopped[0] == 0 and stopped[3] == "Play epoch", "moving the slider by hand should pause the play"
    assert state(epoch) == stopped
    assert not desktop.problems, desktop.problems


def box(locator):
    return locator.bounding_box()


def test_phone_gives_the_track_the_full_width_and_large_touch_targets(phone):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "sliders_390.png"), full_page=True)
    column = box(phone.locator("main"))["width"] - 2 * PAGE_PADDING_PX
    for index in range(2):
        slider = phone.locator("div.su-slider").nth(index)
        track, name, image = box(slider.locator("input")), box(slider.locator(".su-slider-name")), slider.locator("img")
        assert track["width"] >= MIN_PHONE_TRACK_PX, f"slider {index + 1}: track {track['width']:.0f} px on a phone"
        assert track["height"] >= MIN_TOUCH_PX, f"slider {index + 1}: touch area {track['height']:.0f} px high"
        assert name["y"] + name["height"] <= track["y"] + 1, "the slider's name should sit on its own line above"
        natural = image.evaluate("image => [image.naturalWidth, image.naturalHeight]")
        shown = box(image)
        assert shown["width"] <= column + 1 and shown["width"] < natural[0], "the frame should shrink to the column"
        assert abs(shown["height"] - shown["width"] * natural[1] / natural[0]) <= 1, "the frame is distorted"
    button = box(phone.locator("div.su-slider").nth(0).locator("button"))
    assert button["height"] >= MIN_TOUCH_PX and button["width"] >= MIN_TOUCH_PX
    overflow = phone.evaluate("() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")
    assert overflow <= 0, f"the page scrolls {overflow} px sideways on a 390 px phone"
    assert not phone.problems, phone.problems


def test_desktop_keeps_one_row_and_frames_at_their_natural_size(desktop):
    epoch = desktop.locator("div.su-slider").nth(0)
    epoch.locator("input").evaluate("input => { input.value = 4; input.dispatchEvent(new Event('input')); }")
    desktop.evaluate("document.activeElement.blur()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    desktop.screenshot(path=str(SCREENSHOTS / "sliders_1400.png"), full_page=True)
    track, button, value = (box(epoch.locator(selector)) for selector in ("input", "button", "output"))
    middles = [part["y"] + part["height"] / 2 for part in (track, button, value)]
    assert max(middles) - min(middles) <= 2, "on a desktop the range, button and value share one row"
    assert track["x"] < button["x"] < value["x"]
    image = epoch.locator("img")
    natural = image.evaluate("image => image.naturalWidth")
    assert abs(box(image)["width"] - natural) <= 0.5, "a frame must not be scaled (upscaling blurs it)"
    assert not desktop.problems, desktop.problems


def test_identical_sliders_get_unique_ids(desktop, frames):
    twin = slider_html(frames["threshold"][:2], ["a", "b"], "twin", play=True)
    other = slider_html(frames["threshold"][:2], ["a", "b"], "twin")
    desktop.set_content(f"<html><body>{twin}{other}{twin}</body></html>")
    ids = desktop.eval_on_selector_all("[id]", "elements => elements.map(element => element.id)")
    assert len(ids) == 3 and len(set(ids)) == 3, ids
    assert not desktop.problems, desktop.problems
