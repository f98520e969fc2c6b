# Two commands do everything on a fresh machine: `make test` and `make book`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))

.PHONY: setup test data book bench clean browser-deps browser-check

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The browser-marked tests need a built book and Chromium: `make browser-check` runs them (after `make book`).
test: setup
	$(PY) -m pytest -q -m "not browser"

# Real MNIST, fetched once into the cache ($SPLINE_UTILS_DATA, else ~/.cache/spline_utils), verified on use.
data: setup
	$(PY) -m spline_utils.mnist

book: setup data
	$(PY) tools/build_book.py

bench: setup
	$(PY) benchmarks/bench_partition.py

# Headless Chromium for the browser check (Debian package; never a browser download) and axe-core, the accessibility
# checker the browser test loads into every page (npm, pinned; into ./node_modules, not committed).
AXE_CORE := axe-core@4.14.1
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	test -f node_modules/axe-core/axe.min.js || npm install --prefix . --no-save --no-audit --no-fund --silent $(AXE_CORE)

# The browser check of the built book (after `make book`); fails instead of skipping when something is missing.
browser-check: setup browser-deps
	SPLINE_BOOK_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_site.py tests/test_browser.py \
		tests/test_browser_sliders.py tests/test_browser_reader.py tests/test_live_kernel.py

clean:
	rm -rf _build
