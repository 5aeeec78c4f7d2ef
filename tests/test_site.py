"""The built site, tested as a reader uses it: every page in headless Chromium, served over HTTP.

Runs in the book-build step (`make test-book`) on the book that step builds. Screenshots of
every page at a desktop and a phone width are saved in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import urllib.request

import nbformat
import pytest
import yaml

from book import notebooks, reading
from tests.conftest import ROOT, toc_pages

pytestmark = pytest.mark.book_build

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# Flags that keep Chromium from calling home on a closed machine (its refused connections are noise).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the build without a log line per request (they would bury the test report)."""

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def site(built_book):
    """The built book served on a free loopback port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="install the test extras: make install")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is not installed: run `bash scripts/setup_browser.sh` (make test-book does)"
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One page opened in a fresh tab, with everything the browser complained about."""

    def __init__(self, browser, url: str, viewport: str = "desktop"):
        self.page = browser.new_page(viewport=VIEWPORTS[viewport])
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))
        self.page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        self.page.goto(url, wait_until="networkidle")
        if self.page.evaluate("() => !!(window.MathJax && MathJax.startup)"):
            self.page.evaluate("() => MathJax.startup.promise")

    def scroll_through(self) -> None:
        """Scroll to the bottom in steps so lazily loaded images load."""
        self.page.evaluate("""async () => {
            for (let y = 0; y < document.body.scrollHeight; y += 600) { window.scrollTo(0, y); await new Promise(r => setTimeout(r, 20)); }
            await Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
            window.scrollTo(0, 0);
        }""")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def visit(browser, site):
    opened = []

    def open_page(path: str, viewport: str = "desktop") -> Visit:
        opened.append(Visit(browser, f"{site}/{path}", viewport))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


PAGES = toc_pages()


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_cleanly_and_is_screenshotted(visit, page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for viewport in VIEWPORTS:
        opened = visit(f"{page}.html", viewport)
        opened.scroll_through()
        opened.page.screenshot(path=SCREENSHOTS / f"{page.replace('/', '_')}-{viewport}.png", full_page=True)
        assert opened.problems == [], f"{page} at {viewport} width: {opened.problems}"
        overflow = opened.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{page} is {overflow} px wider than a {viewport} screen: something does not wrap"


def _cells_with_visible_output(notebook) -> int:
    count = 0
    for cell in notebook.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-cell", "remove-output"}:
            continue
        visible = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
        count += bool(visible)
    return count


@pytest.mark.parametrize("page", [p.relative_to(ROOT).with_suffix("").as_posix() for p in notebooks.paired_pages()
                                  if p.relative_to(ROOT).with_suffix("").as_posix() in PAGES])
def test_every_code_cell_output_is_on_the_page(visit, built_book, page):
    executed = nbformat.read(built_book.parent / "jupyter_execute" / f"{page}.ipynb", as_version=4)
    expected = _cells_with_visible_output(executed)
    shown = visit(f"{page}.html").page.evaluate(
        "() => [...document.querySelectorAll('div.cell')].filter(c => c.querySelector('.cell_output')).length")
    assert shown == expected, f"{page}: {expected} cells produced output when executed, {shown} show it"


@pytest.mark.parametrize("page", PAGES)
def test_every_image_loads(visit, page):
    opened = visit(f"{page}.html")
    opened.scroll_through()
    broken = opened.page.evaluate("() => [...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert broken == []


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset(visit, page):
    opened = visit(f"{page}.html")
    counts = opened.page.evaluate("""() => ({
        math: document.querySelectorAll('.math').length,
        typeset: document.querySelectorAll('.math mjx-container').length,
        errors: document.querySelectorAll('mjx-merror').length,
        raw: [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
    })""")
    assert counts["errors"] == 0 and counts["raw"] == [], counts


def test_math_comes_from_the_build_not_a_cdn(built_book):
    html = (built_book / "chapters" / "notation.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in html and "cdn.jsdelivr.net/npm/mathjax" not in html
    assert (built_book / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def test_search_finds_a_term_from_a_chapter(visit):
    opened = visit("search.html?q=tokenizer")
    opened.page.wait_for_selector("#search-results .search-summary", timeout=20_000)
    hits = opened.page.eval_on_selector_all("#search-results li a", "links => links.map(a => a.getAttribute('href'))")
    assert any("chapters/setup" in href for href in hits), hits


def test_next_and_previous_walk_the_table_of_contents(visit):
    opened = visit(f"{PAGES[0]}.html")
    walked = [PAGES[0]]
    while opened.page.locator("a.right-next").count():
        opened.page.locator("a.right-next").first.click()
        opened.page.wait_for_load_state()
        walked.append(opened.page.url.split("/", 3)[3].removesuffix(".html"))
    assert walked == PAGES
    opened.page.locator("a.left-prev").first.click()
    opened.page.wait_for_load_state()
    assert opened.page.url.endswith(f"{PAGES[-2]}.html")


@pytest.mark.parametrize("page", [p.relative_to(ROOT).with_suffix("").as_posix() for p in notebooks.paired_pages()
                                  if p.relative_to(ROOT).with_suffix("").as_posix() in PAGES])
def test_colab_button_and_download_serve_this_pages_notebook(visit, site, page):
    opened = visit(f"{page}.html")
    repository = CONFIG["repository"]
    owner_repo = repository["url"].removeprefix("https://github.com/")
    expected = f"{CONFIG['launch_buttons']['colab_url']}/github/{owner_repo}/blob/{repository['branch']}/{page}.ipynb"
    colab = opened.page.eval_on_selector_all("a[href*='colab.research.google.com']", "links => links.map(a => a.href)")
    assert colab and all(href == expected for href in colab if "/github/" in href), colab
    download = opened.page.eval_on_selector_all("a[href$='.ipynb']", "links => links.map(a => a.href)")
    served = [href for href in download if href.startswith(site)]
    assert served, f"{page} offers no notebook download"
    with urllib.request.urlopen(served[0]) as response:
        notebook = nbformat.reads(response.read().decode(), as_version=4)
    source = nbformat.read(ROOT / f"{page}.ipynb", as_version=4)
    assert [c.source for c in notebook.cells if c.cell_type == "code"] == [c.source for c in source.cells if c.cell_type == "code"]


# Every chapter of "Inside a language model" follows the template of CONTRIBUTING.md; any other page
# that opens with "In this chapter" is held to it too.
ON_TEMPLATE = tuple(reading.chapter_pages())


@pytest.mark.parametrize("page", PAGES)
def test_a_chapter_on_the_template_meets_its_limits(built_book, page):
    measured = reading.measure((built_book / f"{page}.html").read_text(encoding="utf-8"), page)
    if page in ON_TEMPLATE:
        assert measured.in_this_chapter, f"{page} must open with an 'In this chapter' box (CONTRIBUTING.md)"
    if measured.in_this_chapter:
        assert measured.problems() == [], f"{page}: {measured.problems()}"


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("page", PAGES)
def test_diagrams_load_are_not_blank_fit_the_column_and_read_on_a_phone(visit, page, viewport):
    from book.diagrams import core

    opened = visit(f"{page}.html", viewport)
    opened.page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    opened.scroll_through()
    found = opened.page.evaluate("""() => [...document.querySelectorAll('img.diagram')].map(img => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let inked = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3] > 0 && (pixels[i] < 235 || pixels[i + 1] < 235 || pixels[i + 2] < 235)) inked++;
        }
        const box = img.getBoundingClientRect();
        return {alt: img.alt, natural: img.naturalWidth, shown: box.width, right: box.right,
                column: img.closest('article').getBoundingClientRect().right,
                inked: inked / (pixels.length / 4), minFont: parseFloat(img.dataset.minFontPt)};
    })""")
    width = VIEWPORTS[viewport]["width"]
    for diagram in found:
        name = diagram["alt"][:50]
        assert diagram["natural"] > 0, f"{page}: the diagram '{name}' did not load"
        assert diagram["inked"] > 0.01, f"{page}: the diagram '{name}' is blank ({diagram['inked']:.3f} inked)"
        assert diagram["right"] <= min(diagram["column"], width) + 1, f"{page}: '{name}' is wider than the column"
        text_px = diagram["minFont"] * core.PX_PER_PT * diagram["shown"] / diagram["natural"]
        assert text_px >= core.MIN_TEXT_PX, f"{page}: the smallest label of '{name}' is {text_px:.1f} px at {width} px"


@pytest.mark.parametrize("page", PAGES)
def test_going_deeper_blocks_are_folded_until_opened(visit, page):
    opened = visit(f"{page}.html")
    blocks = opened.page.evaluate("""() => [...document.querySelectorAll('details.deeper')].map(d => ({
        open: d.open, title: d.querySelector('summary').textContent, shown: d.querySelector('.deeper-body').checkVisibility()}))""")
    for block in blocks:
        assert not block["open"] and not block["shown"], f"{page}: '{block['title']}' is open on load"
        assert block["title"].startswith("Going deeper: ")


@pytest.mark.parametrize("page", PAGES)
def test_no_raw_tex_is_left_in_the_prose(built_book, page):
    """A formula glued or written where MyST does not parse math shows as raw $...$ to the reader."""
    import re

    from bs4 import BeautifulSoup

    soup = BeautifulSoup((built_book / f"{page}.html").read_text(encoding="utf-8"), "html.parser")
    article = soup.find("article")
    for skip in article.select("pre, code, script, style, .math, div.cell_output"):
        skip.decompose()
    raw = re.findall(r"\$[^$\s][^$\n]{0,60}\$", article.get_text(" "))
    assert raw == [], f"{page} shows raw TeX: {raw[:5]}"
