# Two commands do everything on a fresh machine: `make test` and `make book`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))

.PHONY: setup test data book bench bench-deps clean browser-deps browser-check

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

# Benchmark-only packages (regioncam, pinned in benchmarks/requirements.txt): in the venv, never in the package's deps.
BENCH_STAMP := $(VENV)/.bench-installed

bench-deps: $(BENCH_STAMP)

$(BENCH_STAMP): benchmarks/requirements.txt $(STAMP)
	$(PY) -m pip install -q -r benchmarks/requirements.txt
	touch $(BENCH_STAMP)

# `make bench BENCH_ARGS="--total-budget 0"`: options of benchmarks/bench_partition.py (see benchmarks/README.md).
bench: setup bench-deps
	$(PY) benchmarks/bench_partition.py $(BENCH_ARGS)

# Headless Chromium for the browser check (Debian package; never a browser download).
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The browser check of the built book (after `make book`); fails instead of skipping when something is missing.
browser-check: setup browser-deps
	SPLINE_BOOK_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_site.py tests/test_browser.py tests/test_browser_sliders.py tests/test_live_kernel.py

clean:
	rm -rf _build
