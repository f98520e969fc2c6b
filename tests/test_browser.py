"""The built book in a real browser: every chapter page loads its figures and every static slider changes the picture.

Headless Chromium from the system (Debian: ``make browser-deps``; never ``playwright install``) driven by Playwright
serves ``_build/html`` on 127.0.0.1 with every request to another host blocked, so the pages are checked as they
work offline: figures, sliders and the equations (MathJax is served by the site; only the Colab badge comes from the
network and is left out). A screenshot of every chapter is saved to ``_build/screenshots/``.

Without Chromium or without a build these tests skip with a message saying what to do; with
``SPLINE_BOOK_REQUIRE_BROWSER=1`` (CI, after ``make book``) they fail instead. ``SPLINE_BOOK_HTML`` and
``SPLINE_BOOK_CHROMIUM`` point them at another build or browser.
"""
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from spline_utils.interact import slider_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML_DIR = Path(os.environ.get("SPLINE_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = HTML_DIR.parent / "screenshots"
CHROMIUM = os.environ.get("SPLINE_BOOK_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("SPLINE_BOOK_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# jupyter-book 1.0.4 + sphinx-thebe 0.3.1 put sphinx-thebe's config script in every page's <head> twice; the second
# copy fails harmlessly (the book does not use thebe). Any other uncaught script error fails the check.
KNOWN_THEME_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)
CHAPTERS = sorted(path.stem for path in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))

# Every <img> of the page: wait for it (lazy images too), report whether it decoded.
IMAGES_JS = """async () => Promise.all([...document.images].map(async (image) => {
    image.loading = "eager";
    try { await image.decode(); } catch (error) {}
    return {src: image.src.slice(0, 120), local: !/^https?:/.test(image.src) || image.src.startsWith(location.origin),
            width: image.naturalWidth, slider: image.classList.contains("su-slider-frame")};
}))"""

# Move one slider through every position as a script would, return what the reader sees at each.
SWEEP_JS = """async (root) => {
    const input = root.querySelector("input[type=range]"), image = root.querySelector("img"),
          label = root.querySelector(".su-slider-value"), seen = [];
    for (let index = Number(input.min); index <= Number(input.max); index++) {
        input.value = index;
        input.dispatchEvent(new Event("input", {bubbles: true}));
        try { await image.decode(); } catch (error) {}
        seen.push({src: image.src, width: image.naturalWidth, label: label.textContent});
    }
    return seen;
}"""

# Wait for MathJax's first typeset; count the page's math elements, the rendered formulas and TeX errors.
MATH_JS = """async () => {
    const math = document.querySelectorAll("span.math, div.math").length;
    if (!window.MathJax || !window.MathJax.startup) return {math, loaded: false, rendered: 0, errors: 0};
    await window.MathJax.startup.promise;
    return {math, loaded: true, rendered: document.querySelectorAll("mjx-container").length,
            errors: document.querySelectorAll("mjx-merror").length};
}"""


def unavailable(reason):
    """Skip locally; fail where the check is required (CI after ``make book``)."""
    if REQUIRED:
        pytest.fail(f"{reason} (SPLINE_BOOK_REQUIRE_BROWSER=1 requires the browser check)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM}: run `make browser-deps` (apt-get install chromium) "
                    "or set SPLINE_BOOK_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -r requirements.txt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh offline page: requests leaving 127.0.0.1 are aborted, uncaught script errors are collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda error: str(error) in KNOWN_THEME_ERRORS or page.script_errors.append(str(error)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("http://127.0.0.1", "data:"))
               else route.abort())
    yield page
    context.close()


@pytest.fixture(scope="module")
def site():
    """Base URL of ``HTML_DIR`` served on 127.0.0.1."""
    if not (HTML_DIR / "index.html").exists():
        unavailable(f"no built book in {HTML_DIR}: run `make book` first")
    handler = functools.partial(QuietHandler, directory=str(HTML_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def check_slider(page, slider, name):
    """Drive ``slider`` by keyboard and through every position; each position shows its own decoded frame."""
    frames = int(slider.get_attribute("data-frames"))
    image, value = slider.locator("img"), slider.locator(".su-slider-value")
    before = (image.get_attribute("src"), value.inner_text(), slider.locator("input").input_value())
    slider.locator("input").focus()
    page.keyboard.press("Home" if before[2] == str(frames - 1) else "End")
    after = (image.get_attribute("src"), value.inner_text(), slider.locator("input").input_value())
    if frames > 1:
        assert after[2] != before[2], f"{name}: Home/End did not move the slider"
        assert after[0] != before[0], f"{name}: the keyboard moved the slider but the picture did not change"
        assert after[1] != before[1], f"{name}: the value label did not change"
    seen = slider.evaluate(SWEEP_JS)
    assert len(seen) == frames, f"{name}: {frames} frames announced, {len(seen)} positions"
    assert all(position["width"] > 0 for position in seen), f"{name}: a frame did not decode"
    assert all(position["label"].strip() for position in seen), f"{name}: a position has no readable label"
    assert len({position["src"] for position in seen}) > 1 or frames == 1, f"{name}: every position shows one picture"


def test_no_page_without_a_chapter():
    if not HTML_DIR.exists():
        unavailable(f"no built book in {HTML_DIR}: run `make book` first")
    pages = sorted(path.stem for path in (HTML_DIR / "book").glob("[0-9][0-9]_*.html"))
    assert set(pages) <= set(CHAPTERS), f"pages of deleted chapters in {HTML_DIR}: rebuild with `make clean book`"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page(page, site, chapter):
    if not (HTML_DIR / "book" / f"{chapter}.html").exists():
        unavailable(f"{chapter}.html is not in {HTML_DIR / 'book'}: the build is older than the chapter (rebuild "
                    "with `make book`) or the chapter is missing from _toc.yml")
    page.goto(f"{site}/book/{chapter}.html", wait_until="load")
    if page.locator("div.cell_output").count() == 0:
        unavailable(f"{chapter}.html has no cell outputs: the chapter was not executed (`tools/build_book.py --only` "
                    "leaves the other chapters unexecuted); run `make book`")
    images = page.evaluate(IMAGES_JS)
    broken = [image["src"] for image in images if image["local"] and image["width"] == 0]
    assert not broken, f"{chapter}: images that did not load: {broken}"
    sliders = page.locator("div.su-slider")
    figures = [image for image in images if image["local"] and not image["slider"]]
    assert sliders.count() >= 1, f"{chapter}: no static slider on the page (frame_slider's output)"
    assert figures or sliders.count() >= 2, f"{chapter}: the page shows no figure besides its slider"
    for index in range(sliders.count()):
        check_slider(page, sliders.nth(index), f"{chapter} slider {index + 1}")
    math = page.evaluate(MATH_JS)
    assert math["math"] > 0, f"{chapter}: no equations on the page"
    assert math["loaded"], f"{chapter}: MathJax did not load from the site (offline); rebuild with `make book`"
    assert math["rendered"] >= math["math"], f"{chapter}: {math['rendered']} of {math['math']} formulas rendered"
    assert math["errors"] == 0, f"{chapter}: {math['errors']} formulas are TeX errors (red in the page)"
    assert not page.script_errors, f"{chapter}: script errors {page.script_errors}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    middle = int(sliders.first.get_attribute("data-frames")) // 2
    sliders.first.locator("input").evaluate(
        "(input, index) => { input.value = index; input.dispatchEvent(new Event('input')); }", middle)
    page.evaluate("document.activeElement.blur()")
    sliders.first.scroll_into_view_if_needed()
    sliders.first.screenshot(path=str(SCREENSHOTS / f"{chapter}-slider.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{chapter}.png"), full_page=True)


def test_identical_sliders_on_one_page_move_independently(page):
    """No build needed: two copies of one slider (same id) each drive their own picture."""
    from spline_utils.plot import figure_png
    import matplotlib.pyplot as plt

    frames = []
    for colour in ("red", "blue", "green"):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.set_facecolor(colour)
        frames.append(figure_png(fig, dpi=20))
    twin = slider_html(frames, ["red", "blue", "green"], "colour")
    page.set_content(f"<html><body>{twin}{twin}</body></html>")
    first, second = page.locator("div.su-slider").nth(0), page.locator("div.su-slider").nth(1)
    first.locator("input").focus()
    page.keyboard.press("ArrowRight")
    assert first.locator(".su-slider-value").inner_text() == "blue"
    assert second.locator(".su-slider-value").inner_text() == "red"
    assert first.locator("img").get_attribute("src") != second.locator("img").get_attribute("src")
    assert first.locator("img").get_attribute("alt") == "colour: blue"
    assert not page.script_errors

