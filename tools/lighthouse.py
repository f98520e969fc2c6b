"""Lighthouse's mobile audit of the built book, served locally as ``python -m http.server`` serves it (uncompressed).

Runs Lighthouse (npm, pinned in the Makefile: ``make lighthouse`` installs it into .lighthouse/) with the system's
headless Chromium on every page of the toc, prints performance and accessibility scores with the metrics behind them
(first and largest contentful paint, total blocking time, layout shift, render-blocking bytes), and fails when a
page's performance score is under ``--min-performance`` (the book's target: 80).

Lighthouse's mobile profile simulates a 1.6 Mbit/s line with 150 ms round trips and a CPU four times slower than the
machine's; a run takes about 15-20 s a page, and the score varies by a few points between runs on a busy machine.
``make browser-check`` runs the cheap, exact proxy instead (tests/test_site.py, ``test_built_pages_paint_early``).

Usage: ``python tools/lighthouse.py [--html-dir _build/html] [--json-dir DIR] [--min-performance 80] [PAGE ...]``
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LIGHTHOUSE = ROOT / ".lighthouse" / "node_modules" / ".bin" / "lighthouse"  # `make lighthouse` installs it
CHROMIUM = os.environ.get("SPLINE_BOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update " \
                 "--disable-sync --no-first-run"
METRICS = {"FCP": "first-contentful-paint", "LCP": "largest-contentful-paint", "TBT": "total-blocking-time",
           "CLS": "cumulative-layout-shift"}


def toc_pages() -> list[str]:
    """The site paths of every page in ``_toc.yml`` (root, chapters, sections), in toc order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    found.append(f"{node[key]}.html")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return found


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per page is printed, not per request
        pass


def audit(url: str) -> dict:
    """Lighthouse's JSON report of ``url`` (mobile form factor, performance and accessibility)."""
    command = [str(LIGHTHOUSE), url, "--only-categories=performance,accessibility", "--form-factor=mobile",
               "--quiet", "--output=json", "--output-path=stdout", f"--chrome-flags={CHROMIUM_FLAGS}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "CHROME_PATH": CHROMIUM},
                          timeout=300)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"lighthouse failed on {url}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def summary(report: dict) -> dict:
    """Scores (0-100) and the metrics behind them."""
    audits = report["audits"]
    blocking = audits["render-blocking-resources"].get("details", {}).get("items", [])
    return {"performance": round(report["categories"]["performance"]["score"] * 100),
            "accessibility": round(report["categories"]["accessibility"]["score"] * 100),
            **{name: audits[key]["displayValue"] for name, key in METRICS.items()},
            "render-blocking kB": round(sum(item.get("totalBytes", 0) for item in blocking) / 1e3),
            "total kB": round(audits["total-byte-weight"]["numericValue"] / 1e3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="site paths (default: every page of _toc.yml)")
    parser.add_argument("--html-dir", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--json-dir", type=Path, help="also write each page's full report here")
    parser.add_argument("--min-performance", type=int, default=80)
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit(f"no Lighthouse at {LIGHTHOUSE}: run `make lighthouse` (npm install of the pinned version)")
    if not (args.html_dir / "index.html").exists():
        sys.exit(f"no built book in {args.html_dir}: run `make book` first")
    pages = args.pages or toc_pages()
    handler = functools.partial(QuietHandler, directory=str(args.html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    low = []
    try:
        for page in pages:
            report = audit(f"http://127.0.0.1:{server.server_address[1]}/{page}")
            if args.json_dir:
                args.json_dir.mkdir(parents=True, exist_ok=True)
                (args.json_dir / (page.replace("/", "_").removesuffix(".html") + ".json")).write_text(
                    json.dumps(report))
            found = summary(report)
            print(f"{page:45s} " + "  ".join(f"{name} {value}" for name, value in found.items()), flush=True)
            if found["performance"] < args.min_performance:
                low.append(f"{page} ({found['performance']})")
    finally:
        server.shutdown()
    if low:
        print(f"performance under {args.min_performance}: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
