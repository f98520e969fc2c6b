"""Cheap checks of the published book: one repository URL, Colab badges and install cells, toc, API page, pages.

The repository URL and the one ref live in one place, ``_config.yml`` (``repository.url``, ``repository.branch``):
the launch buttons, every notebook's Colab badge and install cell and the install line of README.md and
book/intro.md must agree with it (``python tools/install_cell.py`` rewrites them), and the ref must exist in this
repository. The checks of ``_build/html`` skip when the book has not been built (``make test`` runs before
``make book``).
"""
import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("install_cell", ROOT / "tools" / "install_cell.py")
install_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_cell)
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
HTML_DIR = Path(os.environ.get("SPLINE_BOOK_HTML", ROOT / "_build" / "html"))
PAGE_WEIGHT_LIMIT_MB = 8  # HTML, figures and every slider frame (loaded when a slider is used), per chapter page
HTML_LIMIT_KB = 400  # the HTML alone: text, code, sliders' markup; no picture is inlined
INSTALL_CELL = '''# Colab: install the book's helper package. Does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    %pip install -q "spline_utils @ git+{url}@{ref}"'''
LANDING_FIGURE = ROOT / "book" / "_static" / "landing-partition.png"
LANDING_FIGURE_LIMIT_KB = 300


def repository():
    """(url, owner/name, branch) from ``_config.yml``."""
    url, branch = CONFIG["repository"]["url"].rstrip("/"), CONFIG["repository"]["branch"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    assert match, f"_config.yml repository.url must be https://github.com/OWNER/NAME, got {url}"
    return url, match.group(1), branch


def ref():
    """The ref that the launch buttons open and every install installs: ``_config.yml``'s ``repository.branch``."""
    return str(CONFIG["repository"]["branch"])


def colab_url(notebook):
    _, slug, branch = repository()
    return f"https://colab.research.google.com/github/{slug}/blob/{branch}/book/{notebook.name}"


def cells(notebook):
    return json.loads(notebook.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def test_config_has_launch_buttons():
    repository()
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["launch_buttons"]["binderhub_url"].startswith("https://")
    assert CONFIG["only_build_toc_files"] is True


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_colab_badge_points_at_the_repository(notebook):
    first = source(cells(notebook)[0])
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})"
    assert badge in first, (f"{notebook.name}: the first cell needs the Colab badge for _config.yml's repository "
                            f"and branch, exactly:\n{badge}")
    other_urls = set(re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"]+", first))
    assert other_urls == {colab_url(notebook)}, f"{notebook.name}: Colab links to another place: {other_urls}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_install_cell_installs_from_the_repository(notebook):
    second = cells(notebook)[1]
    expected = INSTALL_CELL.format(url=repository()[0], ref=ref())
    assert second["cell_type"] == "code" and source(second).strip() == expected, (
        f"{notebook.name}: the second cell (first code cell) must be exactly:\n{expected}")


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_ref_exists_in_the_repository():
    """A badge or install cell naming a branch or tag that does not exist fails for every reader (pip stops in half
    a second; the next cell raises ModuleNotFoundError). A fresh clone has the branch; CI checks out all refs."""
    if git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout")
    candidates = [ref(), f"origin/{ref()}", f"refs/tags/{ref()}"]
    found = [name for name in candidates if git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").returncode == 0]
    assert found, (f"_config.yml repository.branch is {ref()!r}, which is neither a branch nor a tag of this "
                   "repository: every Colab badge, launch button and install cell would point at nothing")


@pytest.mark.parametrize("path", [*NOTEBOOKS, ROOT / "README.md", ROOT / "book" / "intro.md", ROOT / "book" / "api.md"],
                         ids=lambda path: path.stem)
def test_every_install_names_the_ref(path):
    installs = re.findall(r"git\+https://github\.com/[\w.-]+/[\w.-]+(@[\w.-]+)?", path.read_text())
    assert installs and set(installs) == {f"@{ref()}"}, (
        f"{path.name} installs {installs}; every git install must name @{ref()} (_config.yml): "
        "run python tools/install_cell.py")


def test_the_install_cell_script_changes_nothing():
    """tools/install_cell.py writes the badges and install lines this file checks: after it ran, nothing is stale."""
    stale = [path.name for path in [*install_cell.chapters(), *install_cell.prose()]
             if install_cell.rewritten(path) != path.read_text(encoding="utf-8")]
    problems = [line for path in install_cell.chapters() for line in install_cell.problems(path, path.read_text())]
    assert not stale and not problems, f"run python tools/install_cell.py: {stale} {problems}"


def test_every_install_and_colab_link_uses_the_repository():
    url, slug, branch = repository()
    texts = [*NOTEBOOKS, *(ROOT / "book").glob("*.md"), ROOT / "README.md", ROOT / "pyproject.toml"]
    wrong = []
    for path in [path for path in texts if path.exists()]:
        text = path.read_text()
        wrong += [(path.name, found) for found in re.findall(r"git\+(https://github\.com/[\w.-]+/[\w.-]+)", text)
                  if found != url]
        wrong += [(path.name, found) for found in
                  re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+/blob/[\w.-]+)", text)
                  if found != f"{slug}/blob/{branch}"]
    assert not wrong, f"links to another repository than _config.yml's {url} (branch {branch}): {wrong}"


def committed(pattern):
    """Files matching ``pattern`` that git tracks (work in progress of others is not checked yet); all matching
    files where git is not at hand."""
    try:
        listed = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return sorted(ROOT.glob(pattern))
    return sorted(ROOT / path for path in listed)


def test_every_chapter_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    listed = set(re.findall(r"file:\s*book/(\S+)", toc))
    missing = [n.stem for n in committed("book/[0-9][0-9]_*.ipynb") if n.stem not in listed and n.name not in listed]
    assert not missing, f"chapters missing from _toc.yml (they would not be built): {missing}"


API_PAGES = sorted((ROOT / "book").glob("api*.md"))  # api.md and one api_*.md page per layer of the package


def test_api_page_documents_every_module():
    api = "\n".join(page.read_text() for page in API_PAGES)
    documented = set(re.findall(r"\.\. automodule:: spline_utils\.([\w.]+)", api))
    modules = sorted({".".join(path.relative_to(ROOT / "spline_utils").with_suffix("").parts)
                      for pattern in ("spline_utils/*.py", "spline_utils/experiments/*.py")
                      for path in committed(pattern) if not path.stem.startswith("_")})
    missing = [module for module in modules if module not in documented]
    assert not missing, ("no book/api*.md page documents " + ", ".join(missing) + "; add to its layer's page, e.g.\n"
                         + "\n".join(f".. automodule:: spline_utils.{m}\n   :members:" for m in missing))
    listed = set(re.findall(r"file:\s*book/(\S+)", (ROOT / "_toc.yml").read_text()))
    unlisted = [page.name for page in API_PAGES if page.stem not in listed]
    assert not unlisted, f"API pages missing from _toc.yml (they would not be built): {unlisted}"


CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def test_site_footer_names_the_version_and_the_source():
    spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    footer = build_book.provenance(ref())
    assert footer.startswith(f"spline_utils {version}, built from ")
    commit = git("rev-parse", "--short", "HEAD").stdout.strip()
    assert commit in footer or "release v" in footer, footer


def test_publishing_workflow_runs_the_ci_checks_before_it_deploys():
    """The Pages workflow runs .ci/run itself (make test, make book, make browser-check), before the upload."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = [step.get("run", "").strip() for step in build["steps"]]
    uses = [step.get("uses", "").split("@")[0] for step in build["steps"]]
    assert ".ci/run" in runs, "the workflow must run the same checks as .ci/run: run .ci/run"
    assert runs.index(".ci/run") < uses.index("actions/upload-pages-artifact"), "checks first, then the upload"
    ci = (ROOT / ".ci" / "run").read_text()
    for command in ("make test", "make book", "make browser-check"):
        assert command in ci, f".ci/run no longer runs {command}"
    upload = build["steps"][uses.index("actions/upload-pages-artifact")]
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and deploy["steps"][0]["uses"].startswith("actions/deploy-pages")
    checkout = build["steps"][uses.index("actions/checkout")]
    assert checkout.get("with", {}).get("fetch-depth") == 0, "fetch all refs: the test of the install cells' ref"


def test_publishing_workflow_never_cancels_a_deployment():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    cancel = workflow["concurrency"]["cancel-in-progress"]
    assert cancel is False or cancel == "${{ github.event_name == 'pull_request' }}", (
        f"the workflow's cancel-in-progress {cancel!r} would cancel a run on main while it deploys")
    assert workflow["jobs"]["deploy"]["concurrency"] == {"group": "pages", "cancel-in-progress": False}


def test_publishing_workflow_installs_the_cpu_torch():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    assert workflow["jobs"]["build"]["env"]["TORCH_INDEX"] == CPU_TORCH_INDEX
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"--index-url \$\(TORCH_INDEX\) \"\$\$\(grep -E '\^torch==' requirements\.txt\)\"", makefile), (
        "the Makefile's setup must install requirements.txt's torch pin from $(TORCH_INDEX) first")


def test_browser_check_runs_every_browser_test():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^browser-check:.*?(?=^\S)", makefile + "\nend", re.MULTILINE | re.DOTALL).group(0)
    browser_tests = [path.name for path in sorted((ROOT / "tests").glob("test_*.py"))
                     if "pytest.mark.browser" in path.read_text()]
    missing = [name for name in browser_tests if f"tests/{name}" not in recipe]
    assert browser_tests and not missing, f"make browser-check (and so CI and the Pages workflow) skips {missing}"


def built_page(notebook):
    page = HTML_DIR / "book" / f"{notebook.stem}.html"
    if not page.exists():
        pytest.skip(f"{page} is not built: run `make book` first")
    return page


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_built_page_has_launch_buttons(notebook):
    text = built_page(notebook).read_text()
    _, slug, branch = repository()
    assert f'href="{colab_url(notebook)}"' in text, "the Colab launch button is missing or points elsewhere"
    assert f"https://mybinder.org/v2/gh/{slug}/{branch}?urlpath=tree/book/{notebook.name}" in text, (
        "the Binder launch button is missing or points elsewhere")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_built_page_weight(notebook):
    page = built_page(notebook)
    text = page.read_text()
    files = set(re.findall(r'"(\.\./_images/[^"]+\.png)"', text))  # figures and every slider frame
    weight = page.stat().st_size + sum((page.parent / file).stat().st_size for file in files)
    assert weight < PAGE_WEIGHT_LIMIT_MB * 1e6, (f"{page.name} weighs {weight / 1e6:.1f} MB: fewer slider values or a "
                                                 "lower frame_slider(dpi=...) keep it under "
                                                 f"{PAGE_WEIGHT_LIMIT_MB} MB")
    assert "data:image/png" not in text, f"{page.name} inlines pictures: the build's page pass (tools/page_pass.py) " \
                                         "moves them into files"
    assert page.stat().st_size < HTML_LIMIT_KB * 1e3, f"{page.name}: {page.stat().st_size / 1e3:.0f} kB of HTML"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_built_page_is_light_and_described(notebook):
    """The page pass ran: no Font Awesome script, figures described by their captions, a description, a favicon."""
    text = built_page(notebook).read_text()
    assert "fontawesome.js" not in text and not re.search(r'<(i|span) class="[^"]*\bfa-', text), \
        "Font Awesome icons are not inlined"
    images = re.findall(r"<img [^>]*>", text)
    alts = [re.search(r'alt="([^"]*)"', image).group(1) for image in images if "su-slider-frame" not in image]
    wrong = [alt for alt in alts if alt.endswith(".png") or "_images/" in alt or len(alt) < 10]
    assert alts and not wrong, f"pictures whose alt text is a file path or says nothing: {wrong}"
    assert re.search(r'<meta name="description" content="[^"]{40,}"', text), "no meta description"
    assert 'rel="icon"' in text, "no favicon link"
    assert 'class="su-reading-time"' in text and 'id="cite-this-chapter"' in text


# Lighthouse's mobile profile (1.6 Mbit/s, 150 ms round trips, a 4x slower CPU) paints a page once its HTML and every
# stylesheet and synchronous script of its <head> have arrived, and whatever <head> preloads shares the line with them;
# `python -m http.server` (and so the book served locally) sends them uncompressed. Measured on this book (Lighthouse
# 12.8, `make lighthouse`): 306 kB of such bytes painted at 2.7 s, 383 kB at 3.0 s (performance 87), 580 kB at
# 4.1 s and 1.8 MB at 10 s (33); the score falls under 80 as the first paint nears 3.5 s.
FIRST_PAINT_LIMIT_KB = 450
RENDER_BLOCKING_LIMIT_KB = 150  # the stylesheets and synchronous scripts every page shares (407 kB before page_pass)


def first_paint_resources(page_path):
    """{path: bytes} of what ``page_path`` loads before its first paint: itself, the stylesheets (but print ones) and
    synchronous scripts of its <head>, and what <head> preloads; and the stylesheets among them that ``@import``
    another (a second round trip before the first paint)."""
    text = page_path.read_text(encoding="utf-8")
    head = text[:text.find("</head>")]
    tags = [tag for tag in re.findall(r"<link\b[^>]*>", head)
            if re.search(r'rel="(stylesheet|preload)"', tag) and not re.search(r'media="print"', tag)]
    tags += [tag for tag in re.findall(r"<script\b[^>]*>", head)
             if "src=" in tag and not re.search(r"\b(defer|async)\b|type=\"module\"", tag)]
    resources, imports = {page_path: page_path.stat().st_size}, []
    for tag in tags:
        link = re.search(r'(?:href|src)="([^"?#]+)', tag).group(1)
        path = (page_path.parent / link).resolve()
        resources[path] = path.stat().st_size
        if path.suffix == ".css" and "@import" in path.read_text(encoding="utf-8"):
            imports.append(path.name)
    return resources, imports


def test_built_pages_paint_early():
    """Every page of the built site paints early on a slow phone line: its render-blocking stylesheets and scripts
    stay under RENDER_BLOCKING_LIMIT_KB, none imports another, and with the HTML they stay under
    FIRST_PAINT_LIMIT_KB (the causes of Lighthouse mobile scores of 33-79 before the build trimmed the theme's CSS
    and split the API reference)."""
    pages = sorted(path for path in HTML_DIR.rglob("*.html")
                   if not {"_static", "_sources"} & set(path.relative_to(HTML_DIR).parts))
    if not pages:
        pytest.skip(f"no built book in {HTML_DIR}: run `make book` first")
    problems = []
    for page in pages:
        resources, imports = first_paint_resources(page)
        blocking = sum(size for path, size in resources.items() if path != page.resolve() and path != page) / 1e3
        total = sum(resources.values()) / 1e3
        name = page.relative_to(HTML_DIR)
        if blocking > RENDER_BLOCKING_LIMIT_KB:
            problems.append(f"{name}: {blocking:.0f} kB of render-blocking stylesheets and scripts "
                            f"(limit {RENDER_BLOCKING_LIMIT_KB})")
        if total > FIRST_PAINT_LIMIT_KB:
            problems.append(f"{name}: {total:.0f} kB before the first paint, HTML included (limit "
                            f"{FIRST_PAINT_LIMIT_KB})")
        if imports:
            problems.append(f"{name}: render-blocking stylesheets that @import another: {imports}")
    assert not problems, "\n".join(problems)


def test_citation_agrees_with_the_config_and_the_package():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert citation["version"] == version, "CITATION.cff's version is not pyproject.toml's"
    assert citation["repository-code"] == repository()[0], "CITATION.cff's repository-code is not _config.yml's url"
    assert citation["title"] == CONFIG["title"], "CITATION.cff's title is not the book's (_config.yml)"


def test_built_api_page_has_the_fixed_entry_points():
    pages = [HTML_DIR / "book" / f"{page.stem}.html" for page in API_PAGES]
    if not all(page.exists() for page in pages):
        pytest.skip(f"the API pages {[page.name for page in pages]} are not all built: run `make book` first")
    text = "\n".join(page.read_text() for page in pages)
    for name in ("spline_utils.engine.partition2d.partition2d", "spline_utils.reading.oracle.activation_codes",
                 "spline_utils.pages.interact.frame_slider"):
        assert f'id="{name}"' in text, f"no API page documents {name}"


def test_landing_figure_is_committed_and_small():
    assert LANDING_FIGURE.exists(), f"{LANDING_FIGURE} is missing: run `python tools/landing_figure.py`"
    assert LANDING_FIGURE.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{LANDING_FIGURE.name} is not a PNG"
    size_kb = LANDING_FIGURE.stat().st_size / 1e3
    assert size_kb < LANDING_FIGURE_LIMIT_KB, f"{LANDING_FIGURE.name} is {size_kb:.0f} kB (limit {LANDING_FIGURE_LIMIT_KB})"


def figure_map_rows():
    """(paper figure, chapter link target) of every row of the landing page's figure map, in page order."""
    intro = (ROOT / "book" / "intro.md").read_text()
    table = intro[intro.index("## Figure map"):].split("\n## ")[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| Fig") or line.startswith("| Sec")]
    return [(row[0], re.fullmatch(r"\[([^\]]*)\]\(([\w.]+)\)", row[2])) for row in rows]


def paper_order(figure):
    """Sort key of a figure-map row: the first figure number and panel letter ('Figs. 4(a), 14' -> (4, 'a')); rows
    that are sections, not figures, come after every figure."""
    match = re.match(r"Figs?\. (\d+)(?:\((\w)\))?", figure)
    return (int(match.group(1)), match.group(2) or "") if match else (float("inf"), figure)


def test_figure_map_is_in_paper_order_and_links_every_chapter():
    rows = figure_map_rows()
    figures = [figure for figure, _ in rows]
    assert figures == sorted(figures, key=paper_order), f"the figure map is not in the paper's order: {figures}"
    assert all(link for _, link in rows), "every row's chapter cell must be one link to a chapter"
    assert all(link.group(1) == "" for _, link in rows), "chapter links are written [](NN_name.ipynb): the chapter " \
                                                         "title is filled in by the build and cannot go stale"
    linked = {link.group(2) for _, link in rows}
    assert linked == {notebook.name for notebook in NOTEBOOKS}, f"chapters missing from the figure map: " \
                                                                f"{ {n.name for n in NOTEBOOKS} - linked}"


def test_built_figure_map_names_the_chapters():
    page = HTML_DIR / "book" / "intro.html"
    if not page.exists():
        pytest.skip(f"{page} is not built: run `make book` first")
    tables = [table for table in re.findall(r"<table.*?</table>", page.read_text(), re.S) if "paper figure" in table]
    assert len(tables) == 1, f"{page.name} has {len(tables)} figure maps"
    for notebook in NOTEBOOKS:
        title = source(cells(notebook)[0]).splitlines()[0].lstrip("# ").strip()
        link = re.search(rf'<a class="reference internal" href="{notebook.stem}\.html">(.*?)</a>', tables[0], re.S)
        assert link, f"the built figure map does not link {notebook.stem}.html"
        shown = re.sub(r"<[^>]+>", "", link.group(1)).strip()
        assert shown == title, f"the link to {notebook.stem} reads {shown!r}, not the chapter's title {title!r}"


# The build's page pass (tools/page_pass.py) on small pages whose answer is known by construction.
sys.path.insert(0, str(ROOT / "tools"))
import page_pass  # noqa: E402

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
FAKE_FONTAWESOME = ('var p={github:[496,512,[],"f09b","M1 2z"]};d("fab",p),d("fa-brands",p)'
                    'var p={file:[384,512,[128196],"f15b","M3 4z"]};d("far",p),d("fa-regular",p)'
                    'var p={bars:[448,512,["navicon"],"f0c9","M5 6z"],file:[384,512,[],"f15b","M7 8z"]};'
                    'd("fas",p),d("fa-solid",p)')


def test_page_pass_moves_inlined_pictures_into_files(tmp_path):
    page_path = tmp_path / "book" / "chapter.html"
    encoded = base64.b64encode(PNG).decode()
    page = f'<img src="data:image/png;base64,{encoded}"><script>frames = ["data:image/png;base64,{encoded}"]</script>'
    moved = page_pass.extract_frames(page, page_path, tmp_path)
    files = list((tmp_path / "_images" / "frames").iterdir())
    assert len(files) == 1 and files[0].read_bytes() == PNG, "one file per distinct picture, the same bytes"
    assert moved == f'<img src="../_images/frames/{files[0].name}"><script>frames = ' \
                    f'["../_images/frames/{files[0].name}"]</script>'


def test_page_pass_inlines_the_icons_of_each_style():
    packs = page_pass.read_icons(FAKE_FONTAWESOME)
    assert packs["solid"]["navicon"] == packs["solid"]["bars"] == (448, 512, "M5 6z"), "aliases are kept"
    page = ('<script src="../_static/scripts/fontawesome.js?digest=1"></script><i class="fa-brands fa-github"></i>'
            '<i class="far fa-file"></i><span class="fa-solid fa-file fa-lg"></span>')
    inlined, missing = page_pass.inline_icons(page, packs)
    assert missing == [] and "fontawesome" not in inlined and "<i " not in inlined and "<span" not in inlined
    paths = re.findall(r'<path d="([^"]+)"/>', inlined)
    assert paths == ["M1 2z", "M3 4z", "M7 8z"], "brands, regular and solid each from their own pack"
    assert 'class="su-icon fa-solid fa-file fa-lg"' in inlined, "the theme's classes stay on the icon"
    assert page_pass.inline_icons('<i class="fa-solid fa-unknown"></i>', packs)[1] == ["fa-solid fa-unknown"]


def test_page_pass_describes_figures_by_their_caption():
    page = ('<figure class="align-default" id="fig-a"><img alt="../_images/abc.png" src="../_images/abc.png" />'
            '<figcaption><p><span class="caption-number">Fig. 1.1 </span><span class="caption-text">The partition '
            'of a <em>2-8-8-2</em> net, layer by layer. Grey lines are older splines.</span><a class="headerlink" '
            'href="#fig-a" title="Link to this image">#</a></p></figcaption></figure>')
    described = page_pass.captioned_alt(page)
    assert 'alt="The partition of a 2-8-8-2 net, layer by layer. Grey lines are older splines."' in described
    assert page_pass.leading_sentences("Fig. 2 shows the net. More.", limit=25) == "Fig. 2 shows the net."
    assert page_pass.leading_sentences("On \\([-2, 2]^2\\). B.") == "On [-2, 2]^2. B.", "no TeX delimiters"
    assert page_pass.leading_sentences("word " * 100).endswith("...")
    sized = page_pass.sized_images('<img alt="x" src="a.png" style="width: 745px; height: 1147px;" />')
    assert sized == '<img alt="x" src="a.png" width="745" height="1147" />', "a 2x figure keeps its size, not fixed"


def test_page_pass_lazy_loads_all_but_the_first_picture_and_counts_prose_words():
    page = ('<header><img src="logo.png"></header><article><h1>Title</h1><img src="a.png"><p>one two three</p>'
            '<pre>code words not counted</pre><img src="b.png"><script>var x = 1;</script></article>')
    lazy = page_pass.lazy_images(page)
    assert '<img decoding="async" src="a.png">' in lazy and '<img decoding="async" loading="lazy" src="b.png">' in lazy
    assert '<img src="logo.png">' in lazy, "pictures outside the article are left alone"
    assert page_pass.article_words(page) == 4, "Title one two three"
    timed = page_pass.reading_time(page)
    assert '</h1><p class="su-reading-time">About 1 min to read (4 words' in timed


def test_page_pass_drops_the_css_no_page_can_use():
    import tinycss2

    names = {"a", "b"}
    assert page_pass.selector_used(".a .b", names) and not page_pass.selector_used(".a .gone", names)
    assert page_pass.selector_used(".a:not(.gone, .other)", names), "what :not() names need not be on a page"
    assert page_pass.selector_used("html[data-theme=dark] #b > p", names), "attributes and tags are not judged"
    assert page_pass.selector_used(".tooltip-inner", names), "Bootstrap adds its tooltips' classes at run time"
    css = ("/*! licence */ /* note */ .a, .gone { color: red } .gone { color: blue } "
           "@media (min-width: 9px) { .gone { x: 1 } } @media print { .b:not(.gone, .c) { x: 2 } } "
           "@font-face { font-family: f }")
    rules = page_pass.used_rules(tinycss2.parse_stylesheet(css, skip_comments=False, skip_whitespace=True), names)
    kept = re.sub(r"\s+", " ", "".join(tinycss2.serialize([rule]) for rule in rules))
    assert kept == ("/*! licence */.a{ color: red }@media print {.b:not(.gone, .c) { x: 2 } }"
                    "@font-face { font-family: f }")


def test_page_pass_unwraps_only_the_code_tokens_drawn_in_the_blocks_colour():
    pygments = ('html[data-theme="light"] .highlight { background: #fff; color: #080808 }\n'
                'html[data-theme="light"] .highlight .n { color: #080808 }\n'
                'html[data-theme="light"] .highlight .p { color: #080808 }\n'
                'html[data-theme="light"] .highlight .k { color: #7928A1 }\n'
                'html[data-theme="light"] .highlight .w { color: #080808; font-weight: bold }\n'
                'html[data-theme="light"] .highlight .nx { color: #080808 }\n'
                'html[data-theme="light"] .highlight .nx { font-style: italic }\n'
                'html[data-theme="dark"] .highlight .nx { color: #F8F8F2 }\n'
                'html[data-theme="dark"] .highlight { background: #222; color: #F8F8F2 }\n'
                'html[data-theme="dark"] .highlight .n { color: #f8f8f2 }\n'
                'html[data-theme="dark"] .highlight .p { color: #FF0000 }\n'
                'html[data-theme="dark"] .highlight .w { color: #F8F8F2 }\n')
    assert page_pass.plain_token_classes(pygments) == {"n"}, "plain in every theme, and styled no other way"
    code = '<span class="k">import</span><span class="w"> </span><span class="n">torch</span>'
    page = (f'<div class="highlight-ipython3 notranslate"><div class="highlight"><pre>{code}</pre></div></div>'
            f'<div class="highlight-myst-ansi notranslate"><div class="highlight"><pre>{code}</pre></div></div>'
            '<dt class="sig"><span class="n">torch</span></dt>')
    plain = page_pass.plain_code(page, {"n", "w"})
    assert plain == page.replace(code, '<span class="k">import</span> torch', 1), \
        "only Python code blocks, only the given classes; outputs and signatures keep their markup"


def test_page_pass_names_the_menus_folding_toggle():
    menu = ('<li class="toctree-l1 current active has-children"><a class="reference internal" href="api.html">API '
            '<em>reference</em></a><details open="open"><summary><span class="toctree-toggle" role="presentation">'
            '<svg aria-hidden="true"></svg></span></summary><ul><li class="toctree-l2">...</li></ul></details></li>')
    named = page_pass.accessible_markup(menu)
    assert '<summary aria-label="API reference pages">' in named, "a summary showing only a chevron needs a name"
    assert page_pass.accessible_markup(named) == named
