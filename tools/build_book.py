"""Execute every chapter once with papermill, then build the static book with Jupyter Book 1.

The sources are staged in ``_build/source`` (config, toc, prose, executed notebooks); Jupyter Book renders them with
execution off, so no notebook runs twice, and with ``-W`` so any warning fails the build. The HTML lands in
``_build/html``.

Usage: ``python tools/build_book.py [--only 01_spline_partition]``
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import papermill
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
STAGE = BUILD / "source"
STAGED_FILES = ["_config.yml", "_toc.yml"]
os.environ["SPLINE_BOOK_STATIC"] = "1"  # sliders render as static frames only (no dead widgets on the page)


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def stage(only: str | None) -> None:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    shutil.copytree(ROOT / "book", STAGE / "book", ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    for name in STAGED_FILES:
        shutil.copy(ROOT / name, STAGE / name)
    config = yaml.safe_load((STAGE / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (STAGE / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for notebook in chapters():
        target = STAGE / "book" / notebook.name
        if only and only not in notebook.stem:
            shutil.copy(notebook, target)
            continue
        started = time.perf_counter()
        papermill.execute_notebook(str(notebook), str(target), cwd=str(ROOT / "book"), kernel_name="python3",
                                   progress_bar=False)
        print(f"executed {notebook.name} in {time.perf_counter() - started:.0f} s", flush=True)


def build() -> None:
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(STAGE), "--path-output", str(ROOT), "-W",
               "--keep-going"]
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="execute only chapters whose name contains this (others are copied as is)")
    args = parser.parse_args()
    stage(args.only)
    build()
    print(f"book built in {ROOT / '_build' / 'html'}")


if __name__ == "__main__":
    main()
