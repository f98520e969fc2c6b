"""The built book in a real browser: every page is clean and fits a phone, the sidebars open and close, every chapter
page loads its figures and every static slider changes the picture.

Headless Chromium from the system (Debian: ``make browser-deps``; never ``playwright install``) driven by Playwright
serves ``_build/html`` on 127.0.0.1. Every page must work offline and quietly: any request to another host, any
console error or warning and any uncaught script error fails the check (there is no allow-list). At 390 px (a phone)
no page may scroll sideways. Screenshots go to ``_build/screenshots/``: every page at 390 px, the sidebars open and
closed at 390 and 1400 px, and every chapter with its first slider.

Without Chromium or without a build these tests skip with a message saying what to do; with
``SPLINE_BOOK_REQUIRE_BROWSER=1`` (CI, after ``make book``) they fail instead. ``SPLINE_BOOK_HTML`` and
``SPLINE_BOOK_CHROMIUM`` point them at another build or browser.
"""
from pathlib import Path

import pytest

from browser_support import HTML_DIR, unavailable
from spline_utils.pages.interact import slider_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = HTML_DIR.parent / "screenshots"
CHAPTERS = sorted(path.stem for path in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# Every page of the site: the toc's pages and Sphinx's generated ones.
API_PAGES = sorted(path.stem for path in (ROOT / "book").glob("api*.md"))  # the API reference, a page per layer
PAGES = ["index.html", "book/intro.html", *(f"book/{chapter}.html" for chapter in CHAPTERS),
         *(f"book/{page}.html" for page in API_PAGES), "book/references.html", "genindex.html", "py-modindex.html",
         "search.html"]
REDIRECTS = {"index.html": "book/intro.html"}  # the site's root page forwards to the landing page
PHONE, DESKTOP = 390, 1400

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
    if (window.suLoadMath) {  // the page loads MathJax when a formula nears the view: load it now
        window.suLoadMath();
        for (let wait = 0; wait < 100 && !(window.MathJax && window.MathJax.startup); wait++)
            await new Promise((done) => setTimeout(done, 100));
    }
    if (!window.MathJax || !window.MathJax.startup) return {math, loaded: false, rendered: 0, errors: 0};
    await window.MathJax.startup.promise;
    return {math, loaded: true, rendered: document.querySelectorAll("mjx-container").length,
            errors: document.querySelectorAll("mjx-merror").length};
}"""




@pytest.fixture
def page(open_page):
    return open_page(1280)


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


def check_story(page, chapter):
    """Story before code: code cells folded behind toggles, numbered figure captions, a closing "Try it" section."""
    toggles = page.locator(".cell.tag_hide-input, .cell.tag_hide-cell").count()
    assert toggles > 0, f"{chapter}: no code cell is folded behind a toggle (cell tags hide-input / hide-cell)"
    number = int(chapter[:2])
    captions = page.locator("span.caption-number").all_inner_texts()
    assert any(text.startswith(f"Fig. {number}.") for text in captions), \
        f"{chapter}: no numbered figure caption 'Fig. {number}.N' (got {captions[:3]})"
    assert page.locator("h2", has_text="Try it").count() == 1, f"{chapter}: no 'Try it' exercises section"


def check_play(page, slider, name):
    """The play button steps through the frames on its own, and a second press pauses it."""
    image, button = slider.locator("img"), slider.locator("button.su-slider-play")
    slider.locator("input").evaluate("input => { input.value = 0; input.dispatchEvent(new Event('input')); }")
    start = image.get_attribute("src")
    button.click()
    page.wait_for_function("([img, src]) => img.getAttribute('src') !== src",
                           arg=[image.element_handle(), start], timeout=10_000)
    button.click()
    paused = image.get_attribute("src")
    page.wait_for_timeout(1500)
    assert image.get_attribute("src") == paused, f"{name}: the frames kept changing after pause"


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
    check_story(page, chapter)
    for index in range(page.locator("button.su-slider-play").count()):
        check_play(page, page.locator("div.su-slider").filter(has=page.locator("button.su-slider-play")).nth(index),
                   f"{chapter} play button {index + 1}")
    math = page.evaluate(MATH_JS)
    assert math["math"] > 0, f"{chapter}: no equations on the page"
    assert math["loaded"], f"{chapter}: MathJax did not load from the site (offline); rebuild with `make book`"
    assert math["rendered"] >= math["math"], f"{chapter}: {math['rendered']} of {math['math']} formulas rendered"
    assert math["errors"] == 0, f"{chapter}: {math['errors']} formulas are TeX errors (red in the page)"
    assert not page.problems, f"{chapter}: {page.problems}"
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
    from spline_utils.plot.drawing import figure_png
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
    assert not page.problems



# After the page's scripts ran and MathJax typeset (formulas change the width of the page): the document's width and
# every box that must fit the column: display equations and tables (each scrolls in its own box), API signatures
# (they wrap).
LAYOUT_JS = """async () => {
    if (window.suLoadMath) {  // typeset every formula: formulas change the width of the page
        window.suLoadMath();
        for (let wait = 0; wait < 100 && !(window.MathJax && window.MathJax.startup); wait++)
            await new Promise((done) => setTimeout(done, 100));
    }
    if (window.MathJax && window.MathJax.startup) await window.MathJax.startup.promise;
    const right = (selector) => [...document.querySelectorAll(selector)].filter((e) => e.offsetParent !== null)
        .map((e) => ({what: selector, right: e.getBoundingClientRect().right, text: e.textContent.slice(0, 60)}));
    const signatures = [...document.querySelectorAll("dt.sig")]
        .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent.slice(0, 60));
    return {width: document.documentElement.scrollWidth, viewport: window.innerWidth,
            boxes: [...right("mjx-container[display=true]"), ...right(".pst-scrollable-table-container"),
                    ...right("dt.sig")],
            unwrapped_signatures: signatures};
}"""


def visit(page, site, path):
    """Open ``path`` of the site, let lazy images load, return the layout (LAYOUT_JS)."""
    if not (HTML_DIR / path).exists():
        unavailable(f"{path} is not in {HTML_DIR}: run `make book`")
    page.goto(f"{site}/{path}", wait_until="load")
    if path in REDIRECTS:
        page.wait_for_url(f"{site}/{REDIRECTS[path]}", wait_until="load")
    page.evaluate(IMAGES_JS)
    return page.evaluate(LAYOUT_JS)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize("path", PAGES)
def test_page_is_clean_and_fits_the_screen(open_page, site, path, width):
    """No request leaves the site, no console error or warning; at 390 px nothing scrolls the page sideways."""
    page = open_page(width)
    layout = visit(page, site, path)
    page.wait_for_timeout(300)  # late console messages (theme scripts run after load)
    assert not page.problems, f"{path}: {page.problems}"
    assert layout["width"] <= width, f"{path} at {width} px: the page is {layout['width']} px wide (scrolls sideways)"
    wide = [box for box in layout["boxes"] if box["right"] > width + 1]
    assert not wide, f"{path} at {width} px: boxes past the screen's edge: {wide}"
    if width == PHONE:
        assert not layout["unwrapped_signatures"], f"{path}: API signatures that do not wrap at {width} px: " \
                                                   f"{layout['unwrapped_signatures']}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{path.replace('/', '_')[:-5]}-390.png"))


# Whether the element is on screen: rendered, not hidden, and at least half of it inside the viewport.
SHOWN_JS = """(selector) => {
    const element = document.querySelector(selector);
    if (!element) return false;
    const style = getComputedStyle(element), box = element.getBoundingClientRect();
    const inside = Math.min(box.right, innerWidth) - Math.max(box.left, 0);
    return style.display !== "none" && style.visibility !== "hidden" && box.width > 0 && inside >= box.width / 2;
}"""
SIDEBARS = {"primary": ".bd-sidebar-primary", "secondary": ".bd-sidebar-secondary"}


def shown(page, sidebar):
    return page.evaluate(SHOWN_JS, SIDEBARS[sidebar])


def expect_shown(page, sidebar, expected, action):
    """Wait up to 3 s (the sidebars slide) for ``sidebar`` to be shown (or hidden) after ``action``."""
    try:
        page.wait_for_function(f"({SHOWN_JS})('{SIDEBARS[sidebar]}') === {str(expected).lower()}", timeout=3000)
    except Exception:
        pass
    state = "open" if expected else "closed"
    assert shown(page, sidebar) == expected, f"the {sidebar} sidebar is not {state} after {action}"


def visible_toggle(page, sidebar):
    """The one toggle button of ``sidebar`` the reader sees (the theme has a hidden copy in its navbar)."""
    toggles = page.locator(f"button.{sidebar}-toggle")
    visible = [toggles.nth(index) for index in range(toggles.count()) if toggles.nth(index).is_visible()]
    assert len(visible) == 1, f"{len(visible)} visible {sidebar} toggle buttons, expected 1"
    return visible[0]


@pytest.mark.parametrize("sidebar", ["primary", "secondary"])
def test_sidebar_opens_and_closes_on_a_phone(open_page, site, sidebar):
    """At 390 px both sidebars start closed; the toggle opens each, Escape and a tap beside it close it."""
    page = open_page(PHONE)
    visit(page, site, f"book/{CHAPTERS[0]}.html")
    expect_shown(page, sidebar, False, "loading the page")
    toggle = visible_toggle(page, sidebar)
    toggle.click()
    expect_shown(page, sidebar, True, "a click on its toggle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"nav-390-{sidebar}-open.png"))
    page.keyboard.press("Escape")
    expect_shown(page, sidebar, False, "Escape")
    toggle.click()
    expect_shown(page, sidebar, True, "a second click on its toggle")
    page.mouse.click(PHONE - 10 if sidebar == "primary" else 10, 450)  # beside the sidebar, on the backdrop
    expect_shown(page, sidebar, False, "a tap beside it")
    page.screenshot(path=str(SCREENSHOTS / f"nav-390-{sidebar}-closed.png"))
    assert not page.problems, page.problems


def test_sidebars_on_a_desktop(open_page, site):
    """At 1400 px the menu collapses and comes back with its toggle; the contents sidebar is always shown (the theme
    offers no toggle for it at this width, so none is visible to click and do nothing)."""
    page = open_page(DESKTOP)
    visit(page, site, f"book/{CHAPTERS[0]}.html")
    expect_shown(page, "primary", True, "loading the page")
    expect_shown(page, "secondary", True, "loading the page")
    toggles = page.locator("button.secondary-toggle")
    assert not any(toggles.nth(index).is_visible() for index in range(toggles.count())), \
        "a contents toggle is shown at 1400 px"
    toggle = visible_toggle(page, "primary")
    toggle.click()
    expect_shown(page, "primary", False, "a click on its toggle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "nav-1400-primary-closed.png"))
    toggle.click()
    expect_shown(page, "primary", True, "a second click on its toggle")
    page.screenshot(path=str(SCREENSHOTS / "nav-1400-primary-open.png"))
    assert not page.problems, page.problems


def test_landing_page(open_page, site):
    """The landing page opens with its partition picture across the column; the sidebar title fits in two lines."""
    page = open_page(DESKTOP)
    visit(page, site, "book/intro.html")
    first = page.evaluate("""() => {
        const article = document.querySelector("article"), image = article.querySelector("img");
        const heading = article.querySelector("h2");
        return {src: image && image.src, width: image ? image.naturalWidth : 0,
                shown: image ? image.getBoundingClientRect().width / article.getBoundingClientRect().width : 0,
                beforeHeading: !!image && !!heading &&
                    !!(image.compareDocumentPosition(heading) & Node.DOCUMENT_POSITION_FOLLOWING)};
    }""")
    assert first["src"] and "landing-partition" in first["src"], f"the first picture is {first['src']}"
    assert first["width"] > 0 and first["beforeHeading"], "the partition picture does not load before the first section"
    assert first["shown"] > 0.8, f"the picture spans {first['shown']:.0%} of the column"
    title = page.evaluate("""() => { const title = document.querySelector(".logo__title");
        return title.getBoundingClientRect().height / parseFloat(getComputedStyle(title).lineHeight); }""")
    assert title <= 2.1, f"the sidebar title wraps to {title:.1f} lines; shorten `title` in _config.yml"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "intro-1400.png"))
    assert not page.problems, page.problems
