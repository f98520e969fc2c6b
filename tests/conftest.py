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
    from browser_support import recording_page

    pages = []

    def open_page(width):
        pages.append(recording_page(browser, width))
        return pages[-1]

    yield open_page
    for page in pages:
        page.context.close()


@pytest.fixture(scope="module")
def site():
    """Base URL of the built book (``browser_support.HTML_DIR``) served on 127.0.0.1."""
    from browser_support import HTML_DIR, SERVER_SECONDS, unavailable
    from data_files import local_server

    if not (HTML_DIR / "index.html").exists():
        unavailable(f"no built book in {HTML_DIR}: run `make book` first")
    with local_server(HTML_DIR, SERVER_SECONDS) as (base_url, _):
        yield base_url.rstrip("/")
