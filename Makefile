# Two commands do everything on a fresh machine: `make test` and `make book`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHAPTERS := $(sort $(wildcard book/[0-9][0-9]_*.ipynb))
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# Where torch comes from. Empty: the default index (this project's machines serve the CPU wheel). CI and Binder set
# https://download.pytorch.org/whl/cpu, PyTorch's CPU-only wheels (no ~3 GB of CUDA libraries); requirements.txt's
# torch==X then matches the installed X+cpu (a local version label is ignored by ==X), so pip keeps it.
TORCH_INDEX ?=

.PHONY: setup test data book bench bench-deps clean browser-deps browser-check lighthouse release

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --index-url $(TORCH_INDEX) "$$(grep -E '^torch==' requirements.txt)")
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The browser-marked tests need a built book and Chromium: `make browser-check` runs them (after `make book`).
test: setup
	$(PY) -m pytest -q -m "not browser"

# Real MNIST, fetched once into the cache ($SPLINE_UTILS_DATA, else ~/.cache/spline_utils), verified on use.
data: setup
	$(PY) -m spline_utils.data

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

# Headless Chromium for the browser check (Debian package; never a browser download). A browser already named by
# SPLINE_BOOK_CHROMIUM (CI: the runner's Chrome) is used instead.
# axe-core is the accessibility checker the browser test loads into every page (npm, pinned; into ./node_modules).
AXE_CORE := axe-core@4.14.1
browser-deps:
	test -x "$$SPLINE_BOOK_CHROMIUM" || command -v chromium >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	test -f node_modules/axe-core/axe.min.js || npm install --prefix . --no-save --no-audit --no-fund --silent $(AXE_CORE)

# The browser check of the built book (after `make book`); fails instead of skipping when something is missing.
browser-check: setup browser-deps
	SPLINE_BOOK_REQUIRE_BROWSER=1 $(PY) -m pytest -q tests/test_site.py tests/test_browser.py tests/test_browser_sliders.py \
		tests/test_browser_playground.py tests/test_browser_reader.py tests/test_live_kernel.py

# Lighthouse's mobile audit of every page of the built book, served locally (after `make book`); fails under 80.
# Not part of browser-check: about 20 s a page (the site has 20), and its score moves a few points with the machine's
# load; browser-check runs its exact proxy (tests/test_site.py, test_built_pages_paint_early). Lighthouse (npm, pinned)
# goes into .lighthouse/, apart from ./node_modules, whose axe-core the browser tests pin.
LIGHTHOUSE := lighthouse@12.8.2
lighthouse: setup browser-deps
	test -x .lighthouse/node_modules/.bin/lighthouse || \
		npm install --prefix .lighthouse --no-save --no-audit --no-fund --silent $(LIGHTHOUSE)
	$(PY) tools/lighthouse.py $(LIGHTHOUSE_ARGS)

# Tag the release v$(VERSION) (pyproject.toml's version) on a clean, tested main; pushing the tag runs
# .github/workflows/release.yml. The book and its install cells keep naming main (README.md, "Installing").
release: test
	git diff --quiet HEAD || (echo "release: commit your changes first" >&2; exit 1)
	test "$$(git rev-parse --abbrev-ref HEAD)" = main || (echo "release: check out main first" >&2; exit 1)
	! git rev-parse --verify --quiet "refs/tags/v$(VERSION)" >/dev/null || \
		(echo "release: v$(VERSION) exists; raise the version in pyproject.toml" >&2; exit 1)
	git tag -a "v$(VERSION)" -m "spline_utils $(VERSION)"
	@echo "Tagged v$(VERSION). Publish it: git push origin v$(VERSION)"

clean:
	rm -rf _build
