"""The pass over the built HTML that makes every page light, describable and citable (run by ``build_book.py``).

Jupyter Book writes the pages; this pass rewrites them in place, page by page:

* every inlined ``data:`` PNG (slider frames, live-control pictures) becomes a file in ``_images/frames/`` named
  by its content, so a page's first load carries its text and one frame per slider, not every frame;
* MathJax loads when the first formula nears the view, not with the page; the extensions' scripts (and the search
  page's) are deferred, the theme's script preloads dropped;
* code blocks lose the token wrappers that change nothing (names, punctuation: drawn in the block's colour);
* the theme's and extensions' stylesheets keep only the rules some page can use, and the pages link ``basic.css``
  directly instead of through an ``@import`` (a slow phone paints the page after a third of the bytes);
* figure PNGs become palette PNGs where that is smaller (the same look for line art, a third of the bytes);
* pictures get ``loading="lazy"`` (but the first of the page, likely the largest paint) and ``decoding="async"``;
* the theme's Font Awesome script (1.5 MB, render-blocking, it swaps every ``<i class="fa-...">`` for an SVG) is
  dropped and each icon written as that very SVG, taken from the same script at build time;
* figures get alt text from their caption (its leading sentences, up to 250 characters) instead of their file path;
  the fixed size myst-nb writes for a 2x figure becomes width and height attributes (it shrinks on a phone);
* accessibility fixes for the theme's and extensions' markup (see :func:`accessible_markup`) and a skip link to the
  first slider (or figure), so the keyboard reaches it in three key presses;
* the landing page's figure map marked up to read as cards on a phone;
* a ``<meta name="description">`` from the page's first paragraph; a reading-time line under each chapter's title
  and a "cite this chapter" block at its end, from the repository's ``CITATION.cff``.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import os
import re
from pathlib import Path

import yaml

FRAMES_FOLDER = "_images/frames"
WORDS_PER_MINUTE = 200  # technical prose with equations and figures reads slower than the usual 230-250
FONTAWESOME_SCRIPT = re.compile(r'<script src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\s*')
DATA_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
ICON_TAG = re.compile(r'<(i|span) class="((?:[^"]* )?fa-[^"]*)"( [^>]*)?>\s*</\1>')
ICON_STYLES = {"fa-brands": "brands", "fab": "brands", "fa-regular": "regular", "far": "regular",
               "fa-solid": "solid", "fas": "solid"}
ICON_MODIFIERS = {"fa-lg", "fa-xl", "fa-2xl", "fa-sm", "fa-xs", "fa-fw", "fa-spin", "fa-pulse", "fa-border",
                  "fa-2x", "fa-3x", "fa-inverse", "fa-stack", "fa-stack-1x", "fa-stack-2x"}
ICON_PACK_CALLS = {"brands": 'd("fab",p)', "regular": 'd("far",p)', "solid": 'd("fas",p)'}
ICON_ENTRY = re.compile(r'(?:"([\w-]+)"|([A-Za-z_]\w*)|(\d+)):\[(\d+),(\d+),\[([^\]]*)\],"(\w*)","([^"]+)"\]')


def read_icons(fontawesome_js: str) -> dict[str, dict[str, tuple[int, int, str]]]:
    """``{style: {icon name: (width, height, SVG path)}}`` of the free solid, regular and brands packs, read from
    the theme's ``fontawesome.js`` (each pack is one ``var p={...}`` object handed to ``d("fas",p)`` and so on)."""
    packs = {}
    for style, call in ICON_PACK_CALLS.items():
        end = fontawesome_js.find(call)
        start = fontawesome_js.rfind("var p={", 0, end)
        if end < 0 or start < 0:
            raise ValueError(f"the theme's fontawesome.js has no {style} icon pack (looked for {call})")
        icons = {}
        for match in ICON_ENTRY.finditer(fontawesome_js, start, end):
            name = match.group(1) or match.group(2) or match.group(3)
            width, height, aliases, path = int(match.group(4)), int(match.group(5)), match.group(6), match.group(8)
            for alias in [name, *re.findall(r'"([\w-]+)"', aliases)]:
                icons[alias] = (width, height, path)
        packs[style] = icons
    return packs


def icon_svg(classes: str, extra: str, packs: dict) -> str | None:
    """The inline SVG for ``<i class="classes">``, or None when the icon is not in the packs."""
    names = classes.split()
    style = next((ICON_STYLES[name] for name in names if name in ICON_STYLES), "solid")
    icon = next((name[3:] for name in names if name.startswith("fa-") and name not in ICON_STYLES
                 and name not in ICON_MODIFIERS), None)
    found = packs[style].get(icon) or packs["solid"].get(icon)
    if found is None:
        return None
    width, height, path = found
    title = re.search(r'\btitle="([^"]*)"', extra or "")
    label = f'<title>{title.group(1)}</title>' if title else ""
    return (f'<svg class="su-icon {classes}" viewBox="0 0 {width} {height}" aria-hidden="true" focusable="false"'
            f' style="width:{width / height:.3f}em">{label}<path d="{path}"/></svg>')


def inline_icons(page: str, packs: dict) -> tuple[str, list[str]]:
    """``page`` with every Font Awesome ``<i>`` or ``<span>`` icon as an inline SVG and the script dropped; the icons
    not found."""
    missing = []

    def replace(match):
        svg = icon_svg(match.group(2), match.group(3), packs)
        if svg is None:
            missing.append(match.group(2))
            return match.group(0)
        return svg

    return FONTAWESOME_SCRIPT.sub("", ICON_TAG.sub(replace, page)), missing


def extract_frames(page: str, page_path: Path, html_dir: Path) -> str:
    """``page`` with every inlined ``data:`` PNG written to ``FRAMES_FOLDER`` (named by its hash) and linked."""
    folder = html_dir / FRAMES_FOLDER
    prefix = os.path.relpath(folder, page_path.parent).replace(os.sep, "/")

    def replace(match):
        data = base64.b64decode(match.group(1))
        name = hashlib.sha256(data).hexdigest()[:20] + ".png"
        target = folder / name
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return f"{prefix}/{name}"

    return DATA_PNG.sub(replace, page)


def lazy_images(page: str) -> str:
    """Every ``<img>`` but the page's first gets ``loading="lazy"``; every one ``decoding="async"``."""
    seen = []

    def replace(match):
        tag = match.group(0)
        seen.append(tag)
        if len(seen) > 1 and "loading=" not in tag:
            tag = tag.replace("<img ", '<img loading="lazy" ', 1)
        if "decoding=" not in tag:
            tag = tag.replace("<img ", '<img decoding="async" ', 1)
        return tag

    start = page.find("<article")
    if start < 0:
        return page
    return page[:start] + re.sub(r"<img [^>]*>", replace, page[start:])


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment: tags dropped, entities decoded, white space collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def leading_sentences(text: str, limit: int = 250) -> str:
    """As many whole sentences from the start of ``text`` as fit ``limit`` characters (at least the first, cut at a
    word and marked "..." if it alone is longer). TeX's inline delimiters are dropped."""
    text = re.sub(r"\\[()\[\]]", "", text).strip()
    sentences = re.findall(r".+?[.!?](?=\s+[A-Z(]|\s*$)|.+$", text)
    shown = sentences[0].strip() if sentences else text
    for sentence in sentences[1:]:
        if len(shown) + 1 + len(sentence.strip()) > limit:
            break
        shown += " " + sentence.strip()
    if len(shown) > limit:
        shown = shown[:limit].rsplit(" ", 1)[0] + "..."
    return shown


def captioned_alt(page: str) -> str:
    """Images in a ``<figure>`` get the leading sentences of its caption as alt text (not their file path)."""
    def figure(match):
        block = match.group(0)
        caption = re.search(r"<figcaption>(.*?)</figcaption>", block, re.S)
        if not caption:
            return block
        text = re.sub(r'<span class="caption-number">.*?</span>|<a class="headerlink".*?</a>', "", caption.group(1),
                      flags=re.S)
        alt = html.escape(leading_sentences(plain_text(text)), quote=True)
        return re.sub(r'(<img [^>]*?)alt="[^"]*"', lambda image: f'{image.group(1)}alt="{alt}"', block)

    return re.sub(r"<figure\b.*?</figure>", figure, page, flags=re.S)


def sized_images(page: str) -> str:
    """The fixed ``style="width: Wpx; height: Hpx;"`` myst-nb writes for a 2x figure becomes ``width`` and ``height``
    attributes: the same size on a desktop, and the page's CSS can shrink it to a phone's column without distortion."""
    return re.sub(r'(<img [^>]*?)style="width: (\d+)px; height: (\d+)px;"',
                  lambda match: f'{match.group(1)}width="{match.group(2)}" height="{match.group(3)}"', page)


def article_words(page: str) -> int:
    """Words of the article's prose: code, outputs in ``<pre>``, scripts and styles not counted."""
    start, end = page.find("<article"), page.find("</article>")
    article = page[start:end]
    for pattern in (r"<script\b.*?</script>", r"<style\b.*?</style>", r"<pre\b.*?</pre>"):
        article = re.sub(pattern, " ", article, flags=re.S)
    return len(re.findall(r"[A-Za-z0-9][\w'-]*", plain_text(article)))


def reading_time(page: str) -> str:
    """``page`` with "About N min to read" under its title (chapter pages)."""
    if "su-reading-time" in page:
        return page
    words = article_words(page)
    minutes = max(1, math.ceil(words / WORDS_PER_MINUTE))
    line = (f'<p class="su-reading-time">About {minutes} min to read ({words:,} words of prose; the code cells and '
            f"sliders take longer)</p>")
    return re.sub(r"(<article\b.*?</h1>)", lambda match: match.group(1) + line, page, count=1, flags=re.S)


def chapter_title(page: str) -> str:
    """The text of the article's ``<h1>`` (without its section number or link marker)."""
    heading = re.search(r"<article\b.*?<h1[^>]*>(.*?)</h1>", page, re.S)
    text = re.sub(r'<a class="headerlink".*?</a>', "", heading.group(1), flags=re.S) if heading else ""
    return re.sub(r"^\d+\.\s*", "", plain_text(text).rstrip("#").strip())


def cite_block(page: str, page_name: str, citation: dict) -> str:
    """``page`` with a "Cite this chapter" section at the end of its article, from ``citation`` (CITATION.cff)."""
    if 'id="cite-this-chapter"' in page:
        return page
    title, book, version = chapter_title(page), citation["title"], citation["version"]
    authors = " and ".join(author.get("name") or f"{author['family-names']}, {author['given-names']}"
                           for author in citation["authors"])
    url = f"{citation['repository-code'].rstrip('/')}/blob/v{version}/book/{page_name}.ipynb"
    year = citation.get("year") or str(citation.get("date-released", ""))[:4] or "2026"
    key = re.sub(r"\W", "", authors.split()[1] if authors.startswith("The ") else authors.split(",")[0]).lower()
    bibtex = (f"@incollection{{{key}{year}{page_name[:2]},\n  author    = {{{{{authors}}}}},\n"
              f"  title     = {{{title}}},\n  booktitle = {{{book}}},\n  year      = {{{year}}},\n"
              f"  version   = {{{version}}},\n  url       = {{{url}}}\n}}")
    paper = next((ref for ref in citation.get("references", []) if ref.get("type") == "article"), None)
    also = (f" Please cite the paper it reproduces too: {html.escape(paper['title'])} "
            f"(<em>{html.escape(paper['journal'])}</em>, {paper['year']}), in the <a href=\"references.html\">"
            "references</a>.") if paper else ""
    section = (f'<section class="su-cite" id="cite-this-chapter" aria-labelledby="cite-this-chapter-title">'
               f'<h2 id="cite-this-chapter-title">Cite this chapter</h2>'
               f"<p>{html.escape(authors)} ({year}). {html.escape(title)}. In <em>{html.escape(book)}</em>, version "
               f'{html.escape(version)}. <a href="{html.escape(url)}">{html.escape(url)}</a>.{also}</p>'
               f"<pre>{html.escape(bibtex)}</pre></section>")
    return page.replace("</article>", section + "</article>", 1)


def meta_description(page: str) -> str:
    """``page`` with a ``<meta name="description">`` from its article's first paragraph (if it has none)."""
    if 'name="description"' in page:
        return page
    start = page.find("<article")
    paragraph = re.search(r"<p>(.*?)</p>", page[start:], re.S) if start >= 0 else None
    text = re.sub(r"\s*Open In Colab\s*", " ", plain_text(paragraph.group(1)) if paragraph else "").strip()
    if not text:
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        text = plain_text(title.group(1)) if title else ""
    if not text:  # the site's root page, which only forwards to the landing page
        return page
    if len(text) > 160:
        text = text[:157].rsplit(" ", 1)[0] + "..."
    return page.replace("<meta charset=\"utf-8\" />",
                        f'<meta charset="utf-8" />\n    <meta name="description" content="{html.escape(text)}" />', 1)


def accessible_markup(page: str) -> str:
    """The theme's and extensions' markup, fixed where axe-core finds a violation.

    * myst-nb names every folded cell's ``<summary>`` "Toggle hidden content" while it shows "Show code cell source",
      and the theme its search field "Search" while it shows "Search Ctrl+K": names that differ from the visible
      label (WCAG 2.5.3); without the attribute the visible text is the name.
    * The menu folds a page's sub-pages (the API reference's) under a ``<summary>`` that shows only a chevron: it
      gets a name, "API reference pages" (axe: summary-name).
    * sphinxcontrib-bibtex marks its list ``role="list"`` and each entry with the deprecated ``doc-biblioentry``
      role, which is no list item: each entry becomes a ``listitem``.
    * The book's title (the logo link) and search field sit in the menu sidebar outside any landmark: the sidebar
      becomes a ``complementary`` landmark named "Book navigation" (its table of contents is a ``<nav>`` in it).
    """
    page = page.replace('<summary aria-label="Toggle hidden content">', "<summary>")
    page = page.replace('title="Search" aria-label="Search" data-bs-placement', 'title="Search" data-bs-placement')
    page = page.replace('role="doc-biblioentry"', 'role="listitem"')
    page = re.sub(r'(<li class="[^"]*\bhas-children\b[^"]*"><a [^>]*>(.*?)</a><details[^>]*>)<summary>',
                  lambda match: f'{match.group(1)}<summary aria-label="{html.escape(plain_text(match.group(2)))} '
                                f'pages">', page, flags=re.S)
    return page.replace('<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar">',
                        '<div id="pst-primary-sidebar" class="bd-sidebar-primary bd-sidebar" role="complementary" '
                        'aria-label="Book navigation">')


def figure_map_cards(page: str) -> str:
    """The landing page's figure map (the table headed "paper figure") gets the class ``su-figure-map`` and each cell
    its column's name as ``data-label``: on a phone book.css shows each row as a card, every cell labelled."""
    def table(match):
        block = match.group(0)
        names = [plain_text(name) for name in re.findall(r"<th[^>]*>(.*?)</th>", block, re.S)]
        if not names or names[0] != "paper figure" or "su-figure-map" in block:
            return block

        def row(row_match):
            cells = iter(names)
            return re.sub(r"<td>", lambda _: f'<td data-label="{html.escape(next(cells, ""))}">', row_match.group(0))

        block = block.replace('<table class="table">', '<table class="table su-figure-map">', 1)
        return re.sub(r"<tr\b.*?</tr>", row, block, flags=re.S)

    return re.sub(r"<table\b.*?</table>", table, page, flags=re.S)


def skip_link(page: str) -> str:
    """A second skip link, after the theme's "Skip to main content": to the first slider, else the first figure."""
    slider = re.search(r'<div class="su-slider" id="([\w-]+)"', page)
    figure = re.search(r'<figure class="[^"]*" id="([\w-]+)"', page)
    target, what = (slider.group(1), "slider") if slider else (figure.group(1), "figure") if figure else (None, None)
    if target is None or "su-skip-link" in page:
        return page
    link = f'<a class="su-skip-link" href="#{target}">Skip to the first {what}</a>'
    return re.sub(r'(<div id="pst-skip-link" class="skip-link[^"]*">.*?</div>)', lambda match: match.group(1) + link,
                  page, count=1, flags=re.S)


MATHJAX_SCRIPT = re.compile(r'<script defer="defer" src="([^"]*_static/mathjax/startup\.js[^"]*)"></script>')
# MathJax (about 0.8 MB with its fonts) loads when a formula comes within a tenth of a screen of the view, or the page is
# printed; ``window.suLoadMath()`` loads it at once (the browser tests call it). "su-math-loaded" tells book.js.
MATHJAX_LOADER = """<script>(function () {
  var source = "MATHJAX_SOURCE", loaded = false;
  function load() {
    if (loaded) return;
    loaded = true;
    var script = document.createElement("script");
    script.src = source;
    script.onload = function () { document.dispatchEvent(new Event("su-math-loaded")); };
    document.head.appendChild(script);
  }
  window.suLoadMath = load;
  window.addEventListener("beforeprint", load);
  document.addEventListener("DOMContentLoaded", function () {
    var formulas = document.querySelectorAll(".math");
    if (!formulas.length) return;
    if (!("IntersectionObserver" in window)) return load();
    var near = new IntersectionObserver(function (entries) {
      if (entries.some(function (entry) { return entry.isIntersecting; })) { near.disconnect(); load(); }
    }, {rootMargin: "10% 0px"});
    formulas.forEach(function (formula) { near.observe(formula); });
  });
})();</script>"""


def lazy_mathjax(page: str) -> str:
    """MathJax's script tag replaced by a loader that fetches it when the first formula nears the view."""
    return MATHJAX_SCRIPT.sub(lambda match: MATHJAX_LOADER.replace("MATHJAX_SOURCE", match.group(1)), page, count=1)


# Scripts Sphinx and its extensions put in <head> without `defer`, though they only act once the page is parsed:
# deferred (in order, before DOMContentLoaded) they no longer hold up the first paint. documentation_options.js stays
# as it is: an inline script right after it reads its DOCUMENTATION_OPTIONS. The search page's own three (the search
# code, the stemmer, and the 185 kB index) are deferred too: Sphinx's search starts from doctools.js's `_ready` and
# queues the query until the index has called `Search.setIndex`.
DEFERRABLE_SCRIPTS = ["_static/doctools.js", "_static/sphinx_highlight.js", "_static/clipboard.min.js",
                      "_static/copybutton.js", "_static/scripts/sphinx-book-theme.js", "_static/togglebutton.js",
                      "_static/searchtools.js", "_static/language_data.js", "searchindex.js"]


def defer_scripts(page: str) -> str:
    """The ``DEFERRABLE_SCRIPTS`` of ``page`` loaded with ``defer``."""
    for name in DEFERRABLE_SCRIPTS:
        page = re.sub(rf'<script src="((?:\.\./)*{re.escape(name)}[^"]*)"></script>',
                      lambda match: f'<script defer="defer" src="{match.group(1)}"></script>', page)
    return page


# pydata-sphinx-theme's first stylesheet, which only imports Sphinx's basic.css: a chain of two requests before the
# first paint. The pages link basic.css itself (process_site checks that theme.css still only imports it).
THEME_CSS_LINK = re.compile(r'<link href="([^"]*_static/)styles/theme\.css\?digest=\w+" rel="stylesheet" />')
THEME_CSS_TEXT = re.compile(r'\s*(/\*.*?\*/\s*)?@import "\.\./basic\.css";\s*', re.S)


# The theme preloads its two deferred scripts (93 kB) from <head>: on a slow phone line they share the bandwidth with the
# page and its stylesheets before the first paint, though they only run once the page is parsed. Without the hint they
# load from their own (deferred) tags at the end of the page.
SCRIPT_PRELOADS = re.compile(r'(?:\s*<!-- Pre-loaded scripts that we\'ll load fully later -->)?'
                             r'(?:\s*<link rel="preload" as="script" href="[^"]*_static/scripts/[\w.-]+\.js[^"]*" />)+')


# The theme's first script names the colour theme before the first paint, but a first visit gets "auto", which no
# stylesheet rule matches: the page paints without the theme's colours and code blocks' line height until the theme's
# deferred script resolves "auto" to the reader's light or dark preference, and then shifts. The pass resolves it the
# same way at once.
THEME_GUESS = 'document.documentElement.dataset.theme = localStorage.getItem("theme") || "auto";'
THEME_RESOLVED = ('document.documentElement.dataset.theme = localStorage.getItem("theme") || '
                  '(matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");')


def direct_stylesheets(page: str) -> str:
    """``page`` linking ``basic.css`` where it linked ``styles/theme.css`` (which only imports it), without the
    theme's script preloads (:data:`SCRIPT_PRELOADS`), and with its colour theme resolved before the first paint
    (:data:`THEME_RESOLVED`)."""
    page = SCRIPT_PRELOADS.sub("", page, count=1).replace(THEME_GUESS, THEME_RESOLVED, 1)
    return THEME_CSS_LINK.sub(lambda match: f'<link href="{match.group(1)}basic.css" rel="stylesheet" />', page)


def plain_token_classes(pygments_css: str) -> set[str]:
    """The Pygments token classes that every colour theme of ``pygments.css`` draws in its code blocks' own colour,
    and styles no other way (names, punctuation and white space in the book's accessible styles)."""
    themes = re.findall(r'html\[data-theme="(\w+)"\] \.highlight \{[^}]*?\bcolor:\s*(#\w+)', pygments_css)
    rules = re.findall(r'html\[data-theme="(\w+)"\] \.highlight \.([\w-]+)\s*\{([^}]*)\}', pygments_css)
    plain = None
    for theme, colour in themes:
        styles = {}
        for rule_theme, token, body in rules:
            if rule_theme == theme:
                styles.setdefault(token, []).append(body.strip().rstrip(";").replace(" ", "").lower())
        same = {token for token, bodies in styles.items() if set(bodies) == {f"color:{colour.lower()}"}}
        plain = same if plain is None else plain & same
    return plain or set()


def plain_code(page: str, classes: set[str]) -> str:
    """``page`` without the ``<span class="T">`` wrappers of Python code blocks' tokens whose class ``T`` is in
    ``classes``: a quarter of a chapter's HTML. The same look: book.css gives those blocks' text the block's own
    colour, the colour of the dropped wrappers (the Python lexer leaves only white space unwrapped)."""
    if not classes:
        return page
    token = re.compile(rf'<span class="(?:{"|".join(map(re.escape, sorted(classes)))})">([^<]*)</span>')
    return re.sub(r'<div class="highlight-(?:ipython3|python) notranslate"><div class="highlight"><pre>.*?</pre>',
                  lambda block: token.sub(r"\1", block.group(0)), page, flags=re.S)


def process_page(page: str, path: Path, html_dir: Path, packs: dict, citation: dict,
                 plain_tokens: set[str] = frozenset()) -> tuple[str, list[str]]:
    """Every rewrite of this module on one page (``plain_tokens``: see :func:`plain_code`); returns the page and the
    Font Awesome icons it could not inline."""
    page = extract_frames(page, path, html_dir)
    page = plain_code(page, plain_tokens)
    page, missing = inline_icons(page, packs)
    page = lazy_mathjax(page)
    page = defer_scripts(page)
    page = direct_stylesheets(page)
    page = captioned_alt(page)
    page = sized_images(page)
    page = accessible_markup(page)
    page = lazy_images(page)
    page = meta_description(page)
    page = figure_map_cards(page)
    page = skip_link(page)
    if re.fullmatch(r"\d\d_\w+\.html", path.name) and path.parent == html_dir / "book":
        page = reading_time(page)
        page = cite_block(page, path.stem, citation)
    return page, missing


def process_site(html_dir: Path, citation_file: Path) -> None:
    """Rewrite every page of the built site ``html_dir`` (see the module's docstring); drop the Font Awesome script.

    The icons come from the theme's own copy of the script. A second pass over processed pages changes nothing.

    Raises
    ------
    ValueError
        When a page shows a Font Awesome icon the packs do not have (the page would show an empty ``<i>``).
    """
    import pydata_sphinx_theme

    theme_script = Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static" / "scripts"
    packs = read_icons((theme_script / "fontawesome.js").read_text(encoding="utf-8"))
    citation = yaml.safe_load(citation_file.read_text(encoding="utf-8"))
    theme_css = html_dir / "_static" / "styles" / "theme.css"
    if not THEME_CSS_TEXT.fullmatch(theme_css.read_text(encoding="utf-8")):
        raise ValueError(f"{theme_css} does more than import ../basic.css: the pages cannot link basic.css instead")
    plain_tokens = plain_token_classes((html_dir / "_static" / "pygments.css").read_text(encoding="utf-8"))
    missing = {}
    for path in sorted(html_dir.rglob("*.html")):
        if "_static" in path.relative_to(html_dir).parts:
            continue
        page, not_found = process_page(path.read_text(encoding="utf-8"), path, html_dir, packs, citation,
                                       plain_tokens)
        path.write_text(page, encoding="utf-8")
        if not_found:
            missing[str(path.relative_to(html_dir))] = not_found
    if missing:
        raise ValueError(f"Font Awesome icons not found in the theme's packs: {missing}")
    for copied in (html_dir / "_static" / "scripts").glob("fontawesome.js*"):
        copied.unlink()
    trim_theme_assets(html_dir)
    drop_unused_css(html_dir)
    compact_figures(html_dir)


FONT_AWESOME_FACES = ["fa-solid-900", "fa-regular-400", "fa-brands-400"]
ICON_CLASS_RULES = re.compile(r'(?:\.fa-[\w-]+:{1,2}(?:before|after),?)+\{content:"[^"]*"\}')


def trim_theme_assets(html_dir: Path) -> None:
    """The theme's stylesheet without the Font Awesome icon-class rules (the icons are inline SVG now: 86 kB), and its
    icon fonts cut down to the glyphs its stylesheets still draw (admonition and link icons: about 150 kB less).

    Each face is written as a subset WOFF next to the original and the ``@font-face`` points at it."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    static = html_dir / "_static"
    theme_css = static / "styles" / "pydata-sphinx-theme.css"
    css = ICON_CLASS_RULES.sub("", theme_css.read_text(encoding="utf-8"))
    drawn = set()
    for sheet in [css, *(path.read_text(encoding="utf-8") for path in static.rglob("*.css") if path != theme_css)]:
        for content in re.findall(r'(?:content|--[\w-]+):\s*"([^"]*)"', sheet):
            drawn |= {ord(char) for char in content.encode().decode("unicode_escape" if "\\" in content else "utf-8")
                      if 0xE000 <= ord(char) <= 0xF8FF or ord(char) >= 0xF0000}
    fonts = static / "vendor" / "fontawesome" / "webfonts"
    for face in FONT_AWESOME_FACES:
        font = TTFont(fonts / f"{face}.ttf")
        options = subset.Options()
        options.flavor = "woff"
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=sorted(drawn & set(font.getBestCmap())) or [0x20])
        subsetter.subset(font)
        font.flavor = "woff"
        font.save(fonts / f"{face}-subset.woff")
        css = re.sub(rf'url\(\.\./vendor/fontawesome/webfonts/{face}\.woff2\) format\("woff2"\),'
                     rf'url\(\.\./vendor/fontawesome/webfonts/{face}\.ttf\) format\("truetype"\)',
                     f'url(../vendor/fontawesome/webfonts/{face}-subset.woff) format("woff")', css)
    theme_css.write_text(css, encoding="utf-8")


# Classes Bootstrap's script gives the pages' dropdowns, tooltips and scroll spy while they are used, some of them put
# together from parts (``bs-${name}-auto``): kept though no page names them. bootstrap.js itself is not read for
# class names: it names every component (modal, toast, carousel...), which the pages do not use.
BOOTSTRAP_RUNTIME_CLASSES = re.compile(r"(show|showing|hiding|fade|collapsing|active|disabled|dropdown-menu-\w+"
                                       r"|tooltip(-inner|-arrow)?|bs-tooltip-[\w-]+)")
OWN_STYLESHEETS = {"book.css", "playground.css"}  # book/_static: every rule of these is meant


def site_names(html_dir: Path) -> set[str]:
    """Every word that could be a class or id of a page: the words of every page and of the scripts that build or
    change markup (not MathJax, whose styles are its own, nor the search index, nor bootstrap.js)."""
    sources = [path for path in html_dir.rglob("*.html") if "_static" not in path.relative_to(html_dir).parts]
    sources += [path for path in (html_dir / "_static").rglob("*.js")
                if "mathjax" not in path.parts and path.name not in ("bootstrap.js", "searchindex.js")]
    names = set()
    for path in sources:
        names |= set(re.findall(r"[A-Za-z_][\w-]*", path.read_text(encoding="utf-8", errors="replace")))
    return names


def selector_used(selector: str, names: set[str]) -> bool:
    """Whether every class and id ``selector`` requires is in ``names`` (or added by Bootstrap at run time).

    What a pseudo-class's argument names is not required: ``.a:not(.b)`` matches where there is no ``b``."""
    required = re.sub(r"\((?:[^()]|\([^()]*\))*\)", "", selector)
    return all(name in names or BOOTSTRAP_RUNTIME_CLASSES.fullmatch(name)
               for name in re.findall(r"[.#](-?[A-Za-z_][\w-]*)", required))


def used_rules(rules: list, names: set[str]) -> list:
    """``rules`` (tinycss2 nodes) without the selectors no page can match, and without the rules, ``@media`` and
    ``@supports`` blocks left empty; comments go but for ``/*! ... */`` (licences)."""
    import tinycss2

    kept = []
    for rule in rules:
        if rule.type == "qualified-rule":
            selectors = [selector.strip() for selector in
                         re.split(r",(?![^()]*\))", tinycss2.serialize(rule.prelude))]  # not the commas of :not(a, b)
            used = [selector for selector in selectors if selector_used(selector, names)]
            if not used:
                continue
            if len(used) < len(selectors):
                rule.prelude = tinycss2.parse_component_value_list(",".join(used))
        elif rule.type == "at-rule" and rule.at_keyword in ("media", "supports") and rule.content is not None:
            inner = used_rules(tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True), names)
            if not inner:
                continue
            rule.content = [node for inner_rule in inner for node in (inner_rule, tinycss2.ast.WhitespaceToken(
                rule.source_line, rule.source_column, "\n"))]
        elif rule.type == "comment" and not rule.value.startswith("!"):
            continue
        kept.append(rule)
    return kept


def drop_unused_css(html_dir: Path) -> None:
    """The theme's and extensions' stylesheets without the rules no page of the site can use (Bootstrap's modals,
    toasts, carousels, utility classes, sphinx-design's cards...): pydata-sphinx-theme.css alone is 305 kB, render-
    blocking on every page, a third of it used. A selector is kept when every class and id it names occurs in a page
    or in a script that writes markup (:func:`site_names`), so what a script adds later is kept too.

    ``styles/theme.css`` only imports ``basic.css`` (a second round trip before the first paint): the pages link
    ``basic.css`` itself (:func:`direct_stylesheets`)."""
    import tinycss2

    names = site_names(html_dir)
    for sheet in sorted((html_dir / "_static").rglob("*.css")):
        if "mathjax" in sheet.parts or sheet.name in OWN_STYLESHEETS:
            continue
        rules = tinycss2.parse_stylesheet(sheet.read_text(encoding="utf-8"), skip_comments=False,
                                          skip_whitespace=True)
        sheet.write_text("\n".join(tinycss2.serialize([rule]) for rule in used_rules(rules, names)) + "\n",
                         encoding="utf-8")


def compact_figures(html_dir: Path) -> None:
    """Every full-colour figure PNG in ``_images`` as a 256-colour palette PNG where that is smaller, as
    :func:`spline_utils.plot.figure_png` stores slider frames: line art looks the same at a third of the bytes (the
    2x figures of the build would otherwise weigh up to 1 MB each). Transparency is flattened onto white, the page's
    figure background."""
    from PIL import Image

    for path in sorted((html_dir / "_images").glob("*.png")):
        with Image.open(path) as image:
            if image.mode == "P":
                continue
            rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        buffer = io.BytesIO()
        flat.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True)
        if buffer.tell() < path.stat().st_size:
            path.write_bytes(buffer.getvalue())
