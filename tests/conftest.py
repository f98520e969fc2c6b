import os
from pathlib import Path

import pytest

os.environ.setdefault("SPLINE_BOOK_STATIC", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, one per test module (see ``browser_support``)."""
    from browser_support import CHROMIUM, CHROMIUM_ARGS, unavailable

    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM}: run `make browser-deps` (apt-get install chromium) "
                    "or set SPLINE_BOOK_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: `make setup` (pip install -r requirements.txt)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser):
    """``open_page(width)``: a fresh offline page ``width`` px wide that records what must never happen:
    ``page.problems`` lists every uncaught script error, console error or warning, and request to another host
    (those are aborted)."""
    from browser_support import LOCAL

    contexts = []

    def open_page(width):
        contexts.append(browser.new_context(viewport={"width": width, "height": 900}))
        page = contexts[-1].new_page()
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))
        page.on("console", lambda message: message.type in ("error", "warning") and page.problems.append(
            f"console {message.type}: {message.text} ({message.location.get('url')})"))

        def route(route):
            if route.request.url.startswith(LOCAL):
                return route.continue_()
            page.problems.append(f"request to another host: {route.request.url}")
            return route.abort()

        page.route("**/*", route)
        return page

    yield open_page
    for context in contexts:
        context.close()
