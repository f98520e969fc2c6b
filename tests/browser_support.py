"""What the browser tests share: where Chromium is, how it is started, and skip-or-fail when it is missing.

Chromium comes from the system (Debian: ``make browser-deps``; never ``playwright install``); Playwright from PyPI.
With ``SPLINE_BOOK_REQUIRE_BROWSER=1`` (``make browser-check``, CI) a missing piece fails instead of skipping.
"""
import os

import pytest

CHROMIUM = os.environ.get("SPLINE_BOOK_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("SPLINE_BOOK_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL = ("http://127.0.0.1", "data:", "blob:")  # where a page may load from; any other request is a problem


def unavailable(reason):
    """Skip locally; fail where the check is required (``make browser-check``, CI)."""
    if REQUIRED:
        pytest.fail(f"{reason} (SPLINE_BOOK_REQUIRE_BROWSER=1 requires the browser checks)")
    pytest.skip(reason)
