"""What the browser tests share: where Chromium is, how it is started, and skip-or-fail when it is missing.

Chromium comes from the system (Debian: ``make browser-deps``; never ``playwright install``); Playwright from PyPI.
With ``SPLINE_BOOK_REQUIRE_BROWSER=1`` (``make browser-check``, CI) a missing piece fails instead of skipping.
"""
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SPLINE_BOOK_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("SPLINE_BOOK_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL = ("http://127.0.0.1", "data:", "blob:")  # where a page may load from; any other request is a problem
HTML_DIR = Path(os.environ.get("SPLINE_BOOK_HTML", Path(__file__).resolve().parents[1] / "_build" / "html"))
SERVER_SECONDS = 1800  # the book's server stops by itself after this long, even if a test hangs


def unavailable(reason):
    """Skip locally; fail where the check is required (``make browser-check``, CI)."""
    if REQUIRED:
        pytest.fail(f"{reason} (SPLINE_BOOK_REQUIRE_BROWSER=1 requires the browser checks)")
    pytest.skip(reason)


def recording_page(browser, width, touch=False):
    """A fresh offline page ``width`` px wide (in its own context) that records what must never happen:
    ``page.problems`` lists every uncaught script error, console error or warning, and request to another host
    (those are aborted)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, has_touch=touch)
    page = context.new_page()
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
