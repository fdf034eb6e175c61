"""The built book in headless Chromium: switch, search, maths, explorers, offline.

Needs ``_build/html`` from the book build (``make book-strict``) and a Chromium
(Debian's ``chromium``; Playwright drives it, its own browser download is not
used). Pages are served from 127.0.0.1; every request to another host is
blocked and counted as a failure, so the site is checked to work offline.
"""

from __future__ import annotations

import functools
import shutil
import threading
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
EN_CH1 = "chapters/en/01_activations.html"
ZH_CH1 = "chapters/zh/01_activations.html"
MAX_PAGE_BYTES = 2_000_000
TIMEOUT_MS = 15_000


def _pages() -> list[Path]:
    return sorted(HTML.rglob("*.html"))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        pytest.skip("no built book: _build/html/index.html is missing (run `make book-strict`)")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A page whose requests may only go to the local server; failures are recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    broken: list[str] = []

    def route(route):
        host = urllib.parse.urlsplit(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    def response(resp):
        if resp.status >= 400 and not resp.url.endswith("favicon.ico"):
            broken.append(f"{resp.status} {resp.url}")

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("response", response)
    pg.set_default_timeout(TIMEOUT_MS)
    yield pg
    context.close()
    assert not outside, f"requests to the internet: {outside}"
    assert not broken, f"failed requests: {broken}"


# ---------------------------------------------------------------- static checks of the HTML
class _Resources(HTMLParser):
    """Collects src/href of the elements that load something, and <a> links."""

    def __init__(self):
        super().__init__()
        self.loads: list[tuple[str, str]] = []
        self.links: list[tuple[dict, str]] = []
        self._a: dict | None = None
        self._text: list[str] = []
        self.html_lang: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        for key in ("src", "href", "data", "poster"):
            if key in a and tag in {
                "script",
                "link",
                "img",
                "iframe",
                "source",
                "embed",
                "object",
                "video",
                "audio",
                "track",
                "input",
            }:
                self.loads.append((tag, a[key] or ""))
        if tag == "a":
            self._a, self._text = a, []

    def handle_data(self, data):
        if self._a is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._a is not None:
            self.links.append((self._a, "".join(self._text).strip()))
            self._a = None


def _parse(path: Path) -> _Resources:
    parser = _Resources()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _served(server) -> None:  # the fixture skips when there is no build
    assert server


def test_no_page_loads_anything_from_the_internet(server):
    _served(server)
    offenders = []
    for path in _pages():
        for tag, url in _parse(path).loads:
            if url.startswith(("http:", "https:", "//")):
                offenders.append(f"{path.relative_to(HTML)}: <{tag}> {url}")
    assert not offenders, "\n".join(offenders)


def test_pages_are_small(server):
    _served(server)
    sizes = {p.relative_to(HTML).as_posix(): p.stat().st_size for p in _pages()}
    big = {name: size for name, size in sizes.items() if size >= MAX_PAGE_BYTES}
    assert not big, f"pages of 2 MB or more: {big}"


def test_every_chapter_links_to_its_twin(server):
    _served(server)
    chapters = sorted((HTML / "chapters" / "en").glob("*.html"))
    assert chapters, "no English chapter pages were built"
    for en in chapters:
        zh = HTML / "chapters" / "zh" / en.name
        assert zh.is_file(), f"{en.name}: no Chinese page"
        for path, other, label, lang in ((en, zh, "中文", "en"), (zh, en, "English", "zh-CN")):
            parsed = _parse(path)
            assert parsed.html_lang == lang, f"{path.relative_to(HTML)}: lang={parsed.html_lang}"
            switches = [
                (a, text) for a, text in parsed.links if "dl-lang-switch" in a.get("class", "")
            ]
            assert len(switches) == 1, f"{path.relative_to(HTML)}: {len(switches)} switches"
            attrs, text = switches[0]
            assert text == label
            assert (path.parent / attrs["href"]).resolve() == other.resolve()


def test_landing_page_links_both_languages(server):
    parsed = _parse(HTML / "index.html")
    targets = {}
    for attrs, text in parsed.links:
        if text in ("English", "中文") and "href" in attrs:
            targets[text] = attrs["href"]
    assert targets.keys() == {"English", "中文"}, f"language links on the landing page: {targets}"
    assert targets["English"].endswith("chapters/en/00_preface.html")
    assert targets["中文"].endswith("chapters/zh/00_preface.html")
    for href in targets.values():
        with urllib.request.urlopen(urllib.parse.urljoin(server, href)) as response:
            assert response.status == 200


# ---------------------------------------------------------------- in the browser
def test_language_switch_round_trip(page, server):
    page.goto(server + EN_CH1)
    assert page.locator("html").get_attribute("lang") == "en"
    switch = page.locator("a.dl-lang-switch")
    assert switch.inner_text().strip() == "中文"
    assert switch.is_visible()
    switch.click()
    page.wait_for_url("**/" + ZH_CH1)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    back = page.locator("a.dl-lang-switch")
    assert back.inner_text().strip() == "English"
    back.click()
    page.wait_for_url("**/" + EN_CH1)


def test_switch_keeps_the_position_in_the_chapter(page, server):
    """Reading a section in English, the switch lands on the same section in Chinese."""
    page.goto(server + EN_CH1)
    sections = page.locator("main section[id]")
    n = sections.count()
    assert n > 10
    # the 6th section of the page: its heading scrolled to the top of the window
    target = sections.nth(5)
    title_en = target.locator("h2, h3").first.inner_text()
    target.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    # click as a reader does, without Playwright's scroll-into-view of the target
    page.locator("a.dl-lang-switch").evaluate(
        "el => { el.dispatchEvent(new MouseEvent('mousedown', {bubbles: true})); el.click(); }"
    )
    page.wait_for_url("**/" + ZH_CH1 + "#*")
    anchor = page.evaluate("location.hash.slice(1)")
    zh_sections = page.locator("main section[id]")
    ids = [zh_sections.nth(i).get_attribute("id") for i in range(zh_sections.count())]
    assert len(ids) == n
    assert ids.index(anchor) == 5, (title_en, anchor, ids)


def test_switch_sits_in_the_header_row(page, server):
    page.goto(server + EN_CH1)
    switch = page.locator("a.dl-lang-switch").bounding_box()
    buttons = page.locator(".article-header-buttons").bounding_box()
    assert switch and buttons
    middle = switch["y"] + switch["height"] / 2
    assert buttons["y"] <= middle <= buttons["y"] + buttons["height"], (switch, buttons)
    assert switch["x"] + switch["width"] <= buttons["x"] + 1


def _search(page, server, query: str) -> list[str]:
    page.goto(server + "search.html?q=" + urllib.parse.quote(query))
    page.wait_for_selector("#search-results p.search-summary, .search-summary")
    page.wait_for_function(  # the summary changes once the index is loaded and searched
        "() => { const s = document.querySelector('.search-summary');"
        " return s && s.textContent.trim() && !/Searching|Preparing/i.test(s.textContent); }"
    )
    return page.eval_on_selector_all("ul.search li a", "els => els.map(e => e.href)")


def test_search_in_english(page, server):
    hits = _search(page, server, "activation")
    assert any(h.split("#")[0].endswith(EN_CH1) for h in hits), hits


def test_search_in_chinese(page, server):
    hits = _search(page, server, "激活函数")
    assert any(h.split("#")[0].endswith(ZH_CH1) for h in hits), hits


def test_maths_is_typeset_offline(page, server):
    with_maths = [p for p in _pages() if 'class="math' in p.read_text(encoding="utf-8")]
    assert with_maths, "no page with maths was built"
    page.goto(server + with_maths[0].relative_to(HTML).as_posix())
    page.wait_for_selector("mjx-container", state="attached")
    assert page.locator("mjx-container").count() > 0


def test_static_explorer_changes_picture(page, server):
    page.goto(server + EN_CH1)
    explorer = page.locator(".dl-explorer").first
    assert explorer.count() == 1, "chapter 1 has no static explorer"
    slider = explorer.locator("input.dl-slider").first
    image = explorer.locator("img.dl-frame")
    before = image.get_attribute("src")
    slider.evaluate(
        "el => { el.value = el.max; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    after = image.get_attribute("src")
    assert after != before
    assert after.startswith("data:image/png;base64,")
    shown = explorer.locator("output.dl-value").first.inner_text()
    assert shown.strip(), "the slider's value is not shown"


def test_bilingual_outputs_show_the_page_language(page, server):
    for path, visible, hidden in (
        ("chapters/en/90_glossary.html", ".dl-en", ".dl-zh"),
        ("chapters/zh/90_glossary.html", ".dl-zh", ".dl-en"),
    ):
        page.goto(server + path)
        assert page.locator(f"{visible} table.dl-glossary").is_visible()
        assert not page.locator(f"{hidden} table.dl-glossary").is_visible()


def test_theme_words_follow_the_page_language(server):
    _served(server)
    zh = (HTML / "chapters" / "zh" / "90_glossary.html").read_text(encoding="utf-8")
    en = (HTML / "chapters" / "en" / "90_glossary.html").read_text(encoding="utf-8")
    assert "显示代码" in zh and "Show code cell source" not in zh
    assert "Show code cell source" in en and "显示代码" not in en
    # the hint on folded boxes (exercise solutions), set by sphinx-togglebutton
    assert "let toggleHintShow = '点击显示';" in zh and "Click to show" not in zh
    assert "let toggleHintShow = 'Click to show';" in en and "点击显示" not in en


# Measures the layout of every displayed formula, code block and printed output: what
# sticks out of its box (the reader would have to scroll sideways to see it).
_OVERFLOW_JS = """() => {
  const wide = [];
  for (const m of document.querySelectorAll('mjx-container[display="true"]')) {
    const inner = m.querySelector('mjx-math');
    const extra = inner.getBoundingClientRect().width - m.getBoundingClientRect().width;
    if (extra > 1) wide.push(['maths', Math.round(extra), m.textContent.slice(0, 40)]);
  }
  for (const pre of document.querySelectorAll('div.cell_input pre')) {
    const extra = pre.scrollWidth - pre.clientWidth;
    if (extra > 1) wide.push(['code', extra, pre.textContent.slice(0, 40)]);
  }
  for (const pre of document.querySelectorAll('div.cell_output pre')) {
    const extra = pre.scrollWidth - pre.clientWidth;
    if (extra > 1) wide.push(['printed output', extra, pre.textContent.slice(0, 40)]);
  }
  return wide;
}"""


def test_formulas_and_code_fit_the_column(page, server):
    # 1280 px is a common laptop width, where the theme shows both sidebars.
    chapters = [p for p in _pages() if p.parent.parent.name == "chapters"]
    assert chapters, "no chapter pages were built"
    for path in chapters:
        page.goto(server + path.relative_to(HTML).as_posix())
        if "class=\"math" in path.read_text(encoding="utf-8"):
            page.wait_for_selector("mjx-container", state="attached")
            page.wait_for_function(
                "() => !document.querySelector('.MathJax_Processing, mjx-container:empty')"
            )
        too_wide = page.evaluate(_OVERFLOW_JS)
        assert not too_wide, f"{path.relative_to(HTML)}: wider than the column: {too_wide}"


def test_no_chapter_shows_a_warning(server):
    # A warning printed while a chapter ran (stderr) ends up on the page, e.g.
    # matplotlib's "Font 'default' does not have a glyph" for Chinese inside $...$.
    _served(server)
    chapters = [p for p in _pages() if p.parent.parent.name == "chapters"]
    assert chapters, "no chapter pages were built"
    for path in chapters:
        html = path.read_text(encoding="utf-8")
        assert 'class="output stderr' not in html, (
            f"{path.relative_to(HTML)} shows text its code printed to stderr (a warning)"
        )
