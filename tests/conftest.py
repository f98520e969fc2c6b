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
