"""Point every Colab badge, Colab install cell and git install line at the one ref of ``_config.yml``.

The ref is ``repository.branch`` (with ``repository.url``): Jupyter Book builds the launch buttons (Colab, Binder)
from it, the Colab badge of each chapter opens the chapter from it, and the chapter's first code cell installs
``spline_utils`` from it; README.md and the book's Markdown pages give practitioners the same install line. This script rewrites
only those lines, in place, keeping each file's own JSON formatting (so a diff shows just them), and is idempotent:
run it after changing ``_config.yml`` or after merging a branch whose notebooks name another ref.

Usage: ``python tools/install_cell.py`` (rewrite) or ``python tools/install_cell.py --check`` (exit 1 and list the
files that disagree; ``tests/test_site.py`` runs the same check).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INSTALL_CELL = '''# Colab: install the book's helper package. Does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    %pip install -q "spline_utils @ git+{url}@{ref}"'''
COLAB_BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url})"
# A git install of the package, as written in a notebook's JSON (quotes escaped) or in Markdown.
GIT_INSTALL = re.compile(r"spline_utils @ git\+[^\s\"\\'`]+")
# A Colab link to a chapter of some repository at some ref; group 1 is the chapter's path, which is kept.
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w./-]+?/(book/[\w.-]+\.ipynb)")


def repository(root: Path = ROOT) -> tuple[str, str, str]:
    """``(url, owner/name, ref)`` from ``_config.yml``'s ``repository.url`` and ``repository.branch``."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    url, ref = config["repository"]["url"].rstrip("/"), str(config["repository"]["branch"])
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    if not match:
        raise ValueError(f"_config.yml repository.url must be https://github.com/OWNER/NAME, got {url!r}")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", ref):
        raise ValueError(f"_config.yml repository.branch is not a plain git ref: {ref!r}")
    return url, match.group(1), ref


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks ``book/NN_*.ipynb``, in order."""
    return sorted((root / "book").glob("[0-9][0-9]_*.ipynb"))


def colab_url(notebook: Path, root: Path = ROOT) -> str:
    """The Colab address that opens ``notebook`` from the repository at the ref."""
    return colab_url_of(f"book/{notebook.name}", root)


def colab_url_of(path: str, root: Path = ROOT) -> str:
    _, slug, ref = repository(root)
    return f"https://colab.research.google.com/github/{slug}/blob/{ref}/{path}"


def prose(root: Path = ROOT) -> list[Path]:
    """README.md and the book's Markdown pages: the install lines practitioners copy."""
    return [root / "README.md", *sorted((root / "book").glob("*.md"))]


def install_requirement(root: Path = ROOT) -> str:
    """``spline_utils @ git+URL@REF``: the requirement every install names."""
    url, _, ref = repository(root)
    return f"spline_utils @ git+{url}@{ref}"


def expected_install_cell(root: Path = ROOT) -> str:
    url, _, ref = repository(root)
    return INSTALL_CELL.format(url=url, ref=ref)


def rewritten(path: Path, root: Path = ROOT) -> str:
    """The text of ``path`` with its Colab links and git installs pointing at the ref (other bytes unchanged)."""
    text = path.read_text(encoding="utf-8")
    text = GIT_INSTALL.sub(install_requirement(root), text)
    return COLAB_LINK.sub(lambda match: colab_url_of(match.group(1), root), text)


def problems(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """What is still wrong with a chapter after the rewrite: a missing badge or an install cell that differs."""
    cells = json.loads(text)["cells"]
    found = []
    badge = COLAB_BADGE.format(colab_url=colab_url(path, root))
    if not cells or cells[0]["cell_type"] != "markdown" or badge not in "".join(cells[0]["source"]):
        found.append(f"{path.name}: the first cell (Markdown) has no Colab badge; add one:\n{badge}")
    expected = expected_install_cell(root)
    if len(cells) < 2 or cells[1]["cell_type"] != "code" or "".join(cells[1]["source"]).strip() != expected:
        found.append(f"{path.name}: the second cell must be the install cell, exactly:\n{expected}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any file disagrees")
    args = parser.parse_args(argv)
    stale, remaining = [], []
    for path in [*chapters(), *prose()]:
        if not path.exists():
            continue
        text = rewritten(path)
        if text != path.read_text(encoding="utf-8"):
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(text, encoding="utf-8")
        if path.suffix == ".ipynb":
            remaining += problems(path, text)
    for line in remaining:
        print(line, file=sys.stderr)
    verb = "disagree with" if args.check else "now point at"
    if stale:
        print(f"{len(stale)} files {verb} {install_requirement()}: " + ", ".join(map(str, stale)))
    return 1 if remaining or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
