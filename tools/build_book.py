"""Execute every chapter once with papermill, then build the static book with Jupyter Book 1.

The sources are staged in ``_build/source`` (config, toc, prose, executed notebooks); Jupyter Book renders them with
execution off, so no notebook runs twice, and with ``-W`` so any warning fails the build. The HTML lands in
``_build/html``; ``page_pass`` then rewrites the pages (slider frames into files, icons inline, alt texts, reading
time, "cite this"; see tools/page_pass.py) and the first-load weight of every chapter page is printed at the end.
MathJax is served from the site itself (the ``django-static-mathjax`` wheel of requirements.txt), so the pages render
their equations offline too: only the components the pages use (TeX input with its autoloaded packages, HTML output,
the hidden MathML for screen readers), without the 430 kB menu and the speech engine.

Usage: ``python tools/build_book.py [--only 01_spline_partition] [--smoke] [--jobs 2] [--pages-only]
[--path-output DIR]``
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import papermill
import yaml

import page_pass

ROOT = Path(__file__).resolve().parents[1]
STAGED_FILES = ["_config.yml", "_toc.yml"]
CITATION = ROOT / "CITATION.cff"
MATHJAX_ENTRY = "startup.js"  # MathJax 3's loader: it loads the components named in MATHJAX_CONFIG from its folder
MATHJAX_PARTS = [MATHJAX_ENTRY, "core.js", "input/tex.js", "input/tex/extensions", "output/chtml.js",
                 "output/chtml/fonts", "a11y/assistive-mml.js"]
# No menu component (it would make every formula a tab stop and weighs 430 kB); the hidden MathML keeps formulas
# readable by screen readers.
MATHJAX_CONFIG = {"loader": {"load": ["input/tex", "output/chtml", "a11y/assistive-mml"]}}
# Figures at twice their pixels (sharp on 2x screens and in the tap-to-enlarge view), shown at their drawn size: the
# kernel's inline backend saves "retina" PNGs with their 1x width and height in the output's metadata.
KERNEL_CONFIG = 'c.InlineBackend.figure_formats = {"retina"}\n'
# The notebooks show Colab's badge image; the site serves its own copy, so a page makes no request to another host.
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_BADGE_LOCAL = "_static/colab-badge.svg"  # relative to book/
os.environ["SPLINE_BOOK_STATIC"] = "1"  # sliders render as static frames only (no dead widgets on the page)


def chapters() -> list[Path]:
    """The chapter notebooks ``book/NN_*.ipynb``, in order."""
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def provenance(branch: str) -> str:
    """The footer line that says what the site shows: the package version and the release tag or branch and commit
    it was built from (``make release`` tags ``v`` + the version; README.md, "Installing")."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    tag = git("describe", "--tags", "--exact-match", "HEAD")
    source = f"release {tag}" if tag else f"{branch}" + (f" at commit {commit}" if commit else "")
    return f"spline_utils {version}, built from {source}."


def toc_files(node) -> set[str]:
    """Every ``file:`` entry of a parsed ``_toc.yml`` (root, parts, chapters, sections), without suffix."""
    if isinstance(node, list):
        return set().union(*map(toc_files, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {str(Path(node[key]).with_suffix("")) for key in ("root", "file") if key in node}
    return found.union(*(toc_files(value) for value in node.values() if isinstance(value, (list, dict))))


def stage(stage_dir: Path, only: str | None, smoke: bool = False, jobs: int = 2) -> None:
    """Copy config, toc and prose to ``stage_dir`` and execute the chapters into it (execution off for the build).

    The staged notebooks show the site's own Colab badge image (``book/_static``) instead of Colab's.

    Chapters whose name does not contain ``only`` are copied unexecuted (their pages have no outputs); ``smoke``
    executes with ``SMOKE = True`` (a quick preview of the pages, not the book's figures). ``jobs`` chapters run at
    once, each in its own kernel: a chapter runs torch on one thread (``start_chapter``), so two of them use both
    cores of the 2-core machine.
    """
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(ROOT / "book", stage_dir / "book", ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    for name in STAGED_FILES:
        shutil.copy(ROOT / name, stage_dir / name)
    config = yaml.safe_load((stage_dir / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    # Not in a folder named _static: Jupyter Book would add every .js file found there to every page.
    config["sphinx"]["config"]["mathjax_path"] = vendor_mathjax(stage_dir / "_vendor")
    config["sphinx"]["config"]["mathjax3_config"] = MATHJAX_CONFIG
    config["sphinx"]["config"].setdefault("html_static_path", []).append("_vendor")
    config["exclude_patterns"].append("_vendor/**")
    config.setdefault("html", {})["extra_footer"] = provenance(config["repository"]["branch"])
    (stage_dir / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    listed = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    profile = stage_dir / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    os.environ["IPYTHONDIR"] = str(stage_dir / "ipython")  # the kernels papermill starts read it
    to_execute = []
    for notebook in chapters():
        target = stage_dir / "book" / notebook.name
        if f"book/{notebook.stem}" not in listed:
            print(f"skipped {notebook.name}: not in _toc.yml, so not part of the book", flush=True)
        elif only and only not in notebook.stem:
            shutil.copy(notebook, target)
        else:
            to_execute.append((notebook, target))
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(to_execute)))) as pool:
        runs = [pool.submit(execute, notebook, target, smoke) for notebook, target in to_execute]
        try:
            for run in as_completed(runs):
                print(run.result(), flush=True)
        except RuntimeError:  # a chapter failed: start no other, and stop the build once the running ones end
            for run in runs:
                run.cancel()
            raise
    for notebook in (stage_dir / "book").glob("*.ipynb"):
        notebook.write_text(notebook.read_text().replace(COLAB_BADGE_URL, COLAB_BADGE_LOCAL))


def execute(notebook: Path, target: Path, smoke: bool) -> str:
    """Run ``notebook`` with papermill into ``target`` (in a worker process); return the line that says how long it
    took. A failure comes back as a RuntimeError with the chapter's name and papermill's message."""
    started = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(target), cwd=str(ROOT / "book"), kernel_name="python3",
                                   parameters={"SMOKE": True} if smoke else None, progress_bar=False)
    except Exception as error:  # papermill's own errors do not survive the trip back from the worker
        raise RuntimeError(f"{notebook.name} failed:\n{error}") from None
    return f"executed {notebook.name} in {time.perf_counter() - started:.0f} s"


def vendor_mathjax(static_dir: Path) -> str:
    """Copy MathJax 3 from the installed ``mathjax`` package into ``static_dir/mathjax``; return Sphinx's
    ``mathjax_path`` (relative to the site's ``_static``, where Sphinx copies ``static_dir``)."""
    try:
        import mathjax
    except ImportError:
        sys.exit("MathJax is missing: pip install -r requirements.txt (it has django-static-mathjax)")
    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    target = static_dir / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / part, target / part)
    return f"mathjax/{MATHJAX_ENTRY}"


def build(stage_dir: Path, path_output: Path, strict: bool = True) -> None:
    """Render the staged sources to ``path_output/_build/html`` (all pages; with ``strict``, warnings are errors).

    A partial build (``--only``) is not strict: the unexecuted chapters lack the outputs their ``{glue}`` references
    name, which would be warnings.
    """
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(stage_dir), "--path-output", str(path_output), "--keep-going",
               "--all"] + (["-W"] if strict else [])
    subprocess.run(command, check=True)


def page_weights(html_dir: Path) -> list[tuple[str, int, int, int]]:
    """(page name, HTML bytes, bytes of the images it shows, bytes of its sliders' other frames) of every chapter
    page in ``html_dir/book``.

    Figures and each slider's first frame are ``<img>`` files in ``_images``; a slider's other frames are files the
    page loads when the reader first uses the slider. The theme's shared assets are not counted.
    """
    weights = []
    for page in sorted((html_dir / "book").glob("[0-9][0-9]_*.html")):
        text = page.read_text()
        images = set(re.findall(r'<img [^>]*src="(\.\./_images/[^"]+)"', text))
        frames = set(re.findall(r'"(\.\./_images/frames/[^"]+\.png)"', text)) - images
        weights.append((page.name, page.stat().st_size, sum((page.parent / image).stat().st_size for image in images),
                        sum((page.parent / frame).stat().st_size for frame in frames)))
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="execute only chapters whose name contains this (others are copied as is; "
                                       "the build then tolerates warnings)")
    parser.add_argument("--path-output", type=Path, default=ROOT,
                        help="build in PATH_OUTPUT/_build (default: the repository root)")
    parser.add_argument("--smoke", action="store_true", help="execute with SMOKE = True: a quick preview build")
    parser.add_argument("--jobs", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument("--pages-only", action="store_true",
                        help="only run the page pass (tools/page_pass.py) again over the existing build")
    args = parser.parse_args()
    build_dir = args.path_output.resolve() / "_build"
    if not args.pages_only:
        stage(build_dir / "source", args.only, args.smoke, args.jobs)
        build(build_dir / "source", args.path_output.resolve(), strict=not args.only)
    html_dir = build_dir / "html"
    page_pass.process_site(html_dir, CITATION)
    for name, html_bytes, image_bytes, frame_bytes in page_weights(html_dir):
        print(f"{name}: {(html_bytes + image_bytes) / 1e6:.2f} MB ({html_bytes / 1e6:.2f} MB HTML, "
              f"{image_bytes / 1e6:.2f} MB figures and first frames; {frame_bytes / 1e6:.2f} MB more frames loaded "
              "when a slider is used)")
    print(f"book built in {html_dir}")


if __name__ == "__main__":
    main()
