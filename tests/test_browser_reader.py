"""The built book as a new reader meets it, at 390 px (a phone) and 1400 px (a desktop): how much a chapter's first
load weighs, where its first figure is, whether every picture says what it shows, what axe-core finds, and how many
Tab presses reach the first slider.

* Weight: every byte the page loads until the network is quiet (HTML, styles, scripts, fonts, the pictures in
  view, MathJax where a formula is near the view; served uncompressed, so bytes transferred are bytes), at most
  ``FIRST_LOAD_LIMIT_MB`` per chapter. Slider frames beyond the first load when the reader first uses the slider and
  are not counted.
* The story shows a figure early: the first figure (or slider) of a chapter starts within the first desktop screen.
* Every picture has alt text that says what it shows: not its file path; slider frames name the slider and value.
* axe-core (``make browser-deps`` installs it with npm into ``node_modules``; the test loads it into the page from
  there, nothing from the network) finds no violation at either width, on every page. There is no allow-list.
* Keyboard: the first slider is at most ``MAX_TABS_TO_SLIDER`` key presses away (skip links).

Screenshots of each chapter's first screen at both widths go to ``_build/screenshots/reader-*.png``. Without Chromium,
axe-core or a build these tests skip saying what to do; with ``SPLINE_BOOK_REQUIRE_BROWSER=1`` they fail instead.
"""
import os
from pathlib import Path

import pytest

from browser_support import unavailable
from test_browser import CHAPTERS, HTML_DIR, PAGES, REDIRECTS, SCREENSHOTS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
AXE = Path(os.environ.get("SPLINE_BOOK_AXE", ROOT / "node_modules" / "axe-core" / "axe.min.js"))
PHONE, DESKTOP, SCREEN_HEIGHT = 390, 1400, 900
FIRST_LOAD_LIMIT_MB = 1.5
MAX_TABS_TO_SLIDER = 4

# Bytes of every response of the page so far (the document and its resources), from the Resource Timing entries.
BYTES_JS = """() => {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    return entries.map((entry) => ({url: entry.name, bytes: entry.decodedBodySize || entry.transferSize || 0}));
}"""

# Where the article's first figure or slider starts, from the top of the page, in CSS px.
FIRST_FIGURE_JS = """() => {
    const first = document.querySelector("article figure img, article .cell_output img, article div.su-slider");
    return first ? first.getBoundingClientRect().top + window.scrollY : null;
}"""

# Every picture of the article: its alt text and, for slider frames, the slider's name and shown value; and whether
# it is wider than the column it sits in.
PICTURES_JS = """() => {
    const article = document.querySelector("article");
    const column = article.getBoundingClientRect().width;
    return [...article.querySelectorAll("img")].map((image) => {
        const slider = image.closest(".su-slider");
        return {src: image.getAttribute("src").slice(0, 80), alt: image.getAttribute("alt"),
                width: image.getBoundingClientRect().width, column,
                slider: slider && slider.querySelector(".su-slider-name").textContent,
                value: slider && slider.querySelector(".su-slider-value").textContent};
    });
}"""


def chapter_page(open_page, site, chapter, width):
    if not (HTML_DIR / "book" / f"{chapter}.html").exists():
        unavailable(f"{chapter}.html is not in {HTML_DIR / 'book'}: run `make book`")
    page = open_page(width)
    page.set_viewport_size({"width": width, "height": SCREEN_HEIGHT})
    page.goto(f"{site}/book/{chapter}.html", wait_until="networkidle")
    return page


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_first_load_weight(open_page, site, chapter):
    """Everything a chapter loads before the reader scrolls or touches a slider, at the phone width (its lazy
    pictures in view are fewer, its CSS the same) and the desktop one: at most FIRST_LOAD_LIMIT_MB each."""
    for width in (PHONE, DESKTOP):
        page = chapter_page(open_page, site, chapter, width)
        page.wait_for_timeout(500)
        entries = page.evaluate(BYTES_JS)
        total = sum(entry["bytes"] for entry in entries)
        biggest = sorted(entries, key=lambda entry: -entry["bytes"])[:5]
        print(f"{chapter} at {width} px: {total / 1e6:.2f} MB in {len(entries)} responses")
        assert total <= FIRST_LOAD_LIMIT_MB * 1e6, (
            f"{chapter} at {width} px loads {total / 1e6:.2f} MB before the reader does anything (limit "
            f"{FIRST_LOAD_LIMIT_MB} MB); the biggest: {[(e['url'][-60:], e['bytes']) for e in biggest]}")
        assert not page.problems, page.problems


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_first_figure_on_the_first_desktop_screen(open_page, site, chapter):
    """The story shows a picture early: the chapter's first figure or slider starts on the first 1400 x 900 screen."""
    page = chapter_page(open_page, site, chapter, DESKTOP)
    top = page.evaluate(FIRST_FIGURE_JS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"reader-{chapter}-{DESKTOP}.png"))
    assert top is not None, f"{chapter}: no figure or slider in the article"
    assert top < SCREEN_HEIGHT, (f"{chapter}: the first figure starts {top:.0f} px down ({top / SCREEN_HEIGHT:.1f} "
                                 f"desktop screens); it must start on the first screen ({SCREEN_HEIGHT} px)")


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_pictures_say_what_they_show_and_fit_the_column(open_page, site, chapter, width):
    """Every picture's alt text describes it (no file path); slider frames name the slider and its value; no picture
    is wider than the column."""
    page = chapter_page(open_page, site, chapter, width)
    pictures = page.evaluate(PICTURES_JS)
    assert pictures, f"{chapter}: no pictures"
    for picture in pictures:
        alt = (picture["alt"] or "").strip()
        assert (picture["slider"] or len(alt) >= 10) and not alt.endswith(".png") and "_images/" not in alt, \
            f"{chapter}: the picture {picture['src']} has the alt text {alt!r}, which does not say what it shows"
        if picture["slider"]:
            assert picture["slider"] in alt and picture["value"] in alt, \
                f"{chapter}: a slider frame's alt text {alt!r} does not name {picture['slider']!r} = {picture['value']!r}"
        assert picture["width"] <= picture["column"] + 0.5, \
            f"{chapter} at {width} px: {picture['src']} is {picture['width']:.0f} px wide in a " \
            f"{picture['column']:.0f} px column"
    if width == PHONE:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"reader-{chapter}-{PHONE}.png"))


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize("path", PAGES)
def test_axe_finds_no_violation(open_page, site, path, width):
    """axe-core's WCAG 2.x A/AA and best-practice rules, with the page's own colour mode (light), at both widths."""
    if not AXE.exists():
        unavailable(f"axe-core is missing at {AXE}: run `make browser-deps` (npm install axe-core)")
    if not (HTML_DIR / path).exists():
        unavailable(f"{path} is not in {HTML_DIR}: run `make book`")
    page = open_page(width)
    page.goto(f"{site}/{path}", wait_until="networkidle")
    if path in REDIRECTS:
        page.wait_for_url(f"{site}/{REDIRECTS[path]}", wait_until="networkidle")
    page.evaluate("""async () => {  // every formula typeset: axe checks MathJax's markup too
        if (window.suLoadMath) window.suLoadMath();
        for (let wait = 0; wait < 100 && window.suLoadMath && !(window.MathJax && MathJax.startup); wait++)
            await new Promise((done) => setTimeout(done, 100));
        if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
    }""")
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
        .map((v) => ({id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
                      where: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + " " + n.html.slice(0, 100))}))""")
    print(f"axe {path} at {width} px: {sum(v['count'] for v in violations)} nodes in {len(violations)} rules")
    assert not violations, f"{path} at {width} px: axe-core finds " + "\n".join(
        f"{v['id']} ({v['impact']}, {v['count']} nodes): {v['help']}; e.g. {v['where']}" for v in violations)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_first_slider_in_a_few_key_presses(open_page, site, chapter):
    """From the top of the page: Tab to the skip link to the first slider, Enter, Tab: the slider has the focus."""
    page = chapter_page(open_page, site, chapter, DESKTOP)
    presses = 0
    in_slider = "() => !!(document.activeElement && document.activeElement.closest('.su-slider'))"
    on_skip_link = "() => !!(document.activeElement && document.activeElement.matches('a.su-skip-link'))"
    while presses < MAX_TABS_TO_SLIDER and not page.evaluate(in_slider):
        page.keyboard.press("Enter" if page.evaluate(on_skip_link) else "Tab")
        presses += 1
    assert page.evaluate(in_slider), (
        f"{chapter}: {MAX_TABS_TO_SLIDER} key presses from the top do not reach the first slider (a skip link to "
        f"it after the theme's 'Skip to main content' does); the focus is on "
        f"{page.evaluate('() => document.activeElement.outerHTML.slice(0, 120)')}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_head_has_description_and_favicon(open_page, site, chapter):
    """A search result needs a description; the browser's tab an icon (no 404 for /favicon.ico)."""
    page = chapter_page(open_page, site, chapter, DESKTOP)
    description = page.evaluate("() => document.querySelector('meta[name=description]')?.content || ''")
    assert len(description) >= 40, f"{chapter}: meta description {description!r}"
    icon = page.evaluate("() => document.querySelector('link[rel~=icon]')?.href || ''")
    assert icon.startswith(site), f"{chapter}: no local favicon link ({icon!r})"
    assert page.request.get(icon).ok, f"{chapter}: the favicon {icon} does not load"
    assert page.locator("p.su-reading-time").count() == 1, f"{chapter}: no reading-time line under the title"
    assert page.locator("section#cite-this-chapter pre").count() == 1, f"{chapter}: no 'Cite this chapter' block"
