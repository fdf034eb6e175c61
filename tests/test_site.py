"""The built book in headless Chromium: switch, search, maths, explorers, offline.

Needs ``_build/html`` from the book build (``make book-strict``) and a Chromium
(Debian's ``chromium``; Playwright drives it, its own browser download is not
used). Pages are served from 127.0.0.1; every request to another host is
blocked and counted as a failure, so the site is checked to work offline.
"""

from __future__ import annotations

import html
import re
import urllib.parse
import urllib.request
from html.parser import HTMLParser
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


# The fixtures server, browser and offline_context are in conftest.py.
@pytest.fixture
def page(offline_context):
    """A page whose requests may only go to the local server; failures fail the test."""
    pg = offline_context().new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    return pg


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


def test_every_figure_text_has_its_chinese_version(server):
    """No figure or explorer of the book was drawn with an English text on a Chinese page.

    ``dlbook.i18n`` flags a text without a row in ``figures_zh.tsv`` with a
    ``data-dl-missing`` attribute in the output HTML.
    """
    _served(server)
    found = {}
    for path in _pages():
        for m in re.finditer(r'data-dl-missing="([^"]*)"', path.read_text(encoding="utf-8")):
            found.setdefault(path.relative_to(HTML).as_posix(), set()).update(
                html.unescape(m.group(1)).split(" | "))
    assert not found, f"figure texts without a row in dlbook/resources/figures_zh.tsv: {found}"


def test_every_figure_is_drawn_in_both_languages(server):
    """A figure output is the bilingual pair of dlbook.i18n, never a plain PNG (the
    same, English, picture on both pages)."""
    _served(server)
    plain = {}
    for path in sorted((HTML / "chapters").glob("*/*.html")):
        text = path.read_text(encoding="utf-8")
        outputs = re.findall(r'<div class="cell_output docutils container">(.*?)</div>\s*</div>', text, re.S)
        count = sum(len(re.findall(r"<img [^>]*src=\"[^\"]*_images/", out)) for out in outputs)
        if count:
            plain[path.relative_to(HTML).as_posix()] = count
    assert not plain, f"figures shown as one PNG (not in both languages): {plain}"


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


def test_chinese_explorer_borrowing_english_frames_changes_picture(page, server):
    """On a Chinese page, an explorer whose pictures are the same in both languages
    takes them from the (hidden) English explorer, and still flips through them."""
    _served(server)
    borrowing = [p for p in sorted((HTML / "chapters" / "zh").glob("*.html"))
                 if "typeof f==='number'?base[f]:f" in p.read_text(encoding="utf-8")]
    assert borrowing, "no Chinese explorer borrows its frames"
    page.goto(server + borrowing[0].relative_to(HTML).as_posix())
    explorer = page.locator(".dl-zh .dl-explorer").first
    explorer.scroll_into_view_if_needed()
    assert explorer.is_visible()
    image = explorer.locator("img.dl-frame")
    seen = {image.get_attribute("src")}
    controls = explorer.locator("input.dl-slider, select.dl-select")
    for i in range(controls.count()):
        controls.nth(i).evaluate(
            "el => { el.value = el.tagName === 'SELECT' ? el.options.length - 1 : el.max;"
            " el.dispatchEvent(new Event('input', {bubbles: true})); }"
        )
        seen.add(image.get_attribute("src"))
    assert len(seen) > 1, "the picture did not change"
    assert all(src and src.startswith("data:image/png;base64,") for src in seen), "a frame was not found"


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


# ---------------------------------------------------------------- the Chinese reading experience
ZH_SEARCH = "search-zh.html"
# The themes' English tooltips and labels that Chinese pages must not show (review of the zh site, §5).
EN_TOOLTIPS = (
    "Color mode",
    "System Settings",
    "Light",
    "Dark",
    "Toggle primary sidebar",
    "Toggle secondary sidebar",
    "Link to this heading",
    "Download this page",
    "Toggle hidden content",
    "Main",
    "Page",
    "Copy",
    "Copy to clipboard",
    "Print to PDF",
    "previous page",
    "next page",
)
_ATTRIBUTE = re.compile(r'\b(title|aria-label|data-bs-title|data-tooltip)="([^"]*)"')


def _language(path: Path) -> str | None:
    """``en``/``zh`` for a chapter or search page of the build, ``None`` for the rest."""
    rel = path.resolve().relative_to(HTML.resolve()).as_posix()
    if rel.startswith(("chapters/en/", "chapters/zh/")):
        return rel.split("/")[1]
    return {"search.html": "en", ZH_SEARCH: "zh"}.get(rel)


def _zh_pages() -> list[Path]:
    pages = sorted((HTML / "chapters" / "zh").glob("*.html"))
    assert pages, "no Chinese pages were built"
    return [*pages, HTML / ZH_SEARCH]


def _sidebar_parts(path: Path) -> list[tuple[str, list[str]]]:
    """The captions of the primary sidebar's parts, in order, with the links under each."""
    html = path.read_text(encoding="utf-8")
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', html, re.S)
    assert nav, f"{path.relative_to(HTML)}: no sidebar navigation"
    pieces = re.split(r'<p[^>]*class="caption"[^>]*>\s*<span class="caption-text">(.*?)</span>', nav[0])
    link = re.compile(r'<a class="[^"]*reference internal" href="([^"#]*)')
    return [  # the current page's own entry links to "#"
        (caption.strip(), [href or path.name for href in link.findall(links)])
        for caption, links in zip(pieces[1::2], pieces[2::2], strict=True)
    ]


def _toc_part(lang: str) -> list[str]:
    """The pages of one language's part of the book, in the order of ``_toc.yml``."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(rf"^\s*- file: (chapters/{lang}/\S+)", toc, re.M)


def test_sidebar_lists_the_page_language_first(server):
    _served(server)
    for page, first in (
        (HTML / ZH_CH1, "中文"),
        (HTML / "chapters/zh/00_preface.html", "中文"),
        (HTML / ZH_SEARCH, "中文"),
        (HTML / EN_CH1, "English"),
        (HTML / "search.html", "English"),
    ):
        parts = _sidebar_parts(page)
        assert [caption for caption, _ in parts] == [first, ({"中文", "English"} - {first}).pop()], (
            f"{page.relative_to(HTML)}: sidebar parts {[c for c, _ in parts]}"
        )
        lang = "zh" if first == "中文" else "en"
        links = [(page.parent / href).resolve() for href in parts[0][1]]
        expected = len(_toc_part(lang))
        assert len(links) == expected, (
            f"{page.relative_to(HTML)}: {len(links)} pages in the first part, not {expected}"
        )
        assert all(_language(link) == lang for link in links), (page.relative_to(HTML), parts[0][1])


def _prev_next(path: Path) -> dict[str, list[Path]]:
    html = path.read_text(encoding="utf-8")
    found: dict[str, list[Path]] = {"prev": [], "next": []}
    for key, pattern in (
        ("prev", r'<a class="left-prev"\s+href="([^"]*)"'),
        ("next", r'<a class="right-next"\s+href="([^"]*)"'),
        ("prev", r'<link rel="prev"[^>]*href="([^"]*)"'),
        ("next", r'<link rel="next"[^>]*href="([^"]*)"'),
    ):
        found[key] += [(path.parent / href.split("#")[0]).resolve() for href in re.findall(pattern, html)]
    return found


def test_previous_and_next_stay_in_the_language(server):
    _served(server)
    crossings = []
    for path in _pages():
        lang = _language(path)
        for key, targets in _prev_next(path).items():
            crossings += [
                f"{path.relative_to(HTML)} {key} -> {t.relative_to(HTML.resolve())}"
                for t in targets
                if lang and _language(t) not in (None, lang)
            ]
    assert not crossings, "\n".join(crossings)
    # where the toctree's sequence crosses: no next after the last en page, back home from the zh preface
    last_en = _toc_part("en")[-1]
    assert not _prev_next(HTML / f"{last_en}.html")["next"], last_en
    assert set(_prev_next(HTML / "chapters/zh/00_preface.html")["prev"]) <= {(HTML / "index.html").resolve()}
    # and inside one language the sequence is intact
    inside = _prev_next(HTML / ZH_CH1)
    assert inside["prev"][0] == (HTML / "chapters/zh/00_preface.html").resolve()
    assert inside["next"][0] == (HTML / "chapters/zh/02_relu_approximation.html").resolve()


def test_previous_and_next_read_in_chinese(server):
    _served(server)
    for path in sorted((HTML / "chapters" / "zh").glob("*.html")):
        html = path.read_text(encoding="utf-8")
        area = re.search(r'<div class="prev-next-area">.*?</div>\s*</footer>', html, re.S)
        assert area, f"{path.relative_to(HTML)}: no previous/next area"
        words = re.findall(r'<p class="prev-next-subtitle">(.*?)</p>', area[0])
        assert words and set(words) <= {"上一章", "下一章"}, f"{path.relative_to(HTML)}: {words}"
        assert "上一条" not in html and "下一条" not in html
    assert "下一章" in (HTML / ZH_CH1).read_text(encoding="utf-8")
    en = (HTML / EN_CH1).read_text(encoding="utf-8")
    assert '<p class="prev-next-subtitle">next</p>' in en and "下一章" not in en


def test_no_taiwanese_print_to_pdf(server):
    _served(server)
    offenders = [p.relative_to(HTML).as_posix() for p in _pages() if "列印" in p.read_text(encoding="utf-8")]
    assert not offenders, f"列印 (Taiwanese usage) on: {offenders}"
    assert "打印为 PDF" in (HTML / ZH_CH1).read_text(encoding="utf-8")


def test_zh_pages_have_no_english_tooltips(server):
    _served(server)
    for path in _zh_pages():
        html = path.read_text(encoding="utf-8")
        english = sorted({f"{a}={v}" for a, v in _ATTRIBUTE.findall(html) if v in EN_TOOLTIPS})
        assert not english, f"{path.relative_to(HTML)}: {english}"
        last = re.search(r'<p class="last-updated">(.*?)</p>', html, re.S)
        if last:  # the footer's date in Chinese
            assert re.search(r"最后更新于 \d{4} 年 \d{1,2} 月 \d{1,2} 日", last[1]), last[1]
    # the English pages keep the theme's English words
    en = (HTML / EN_CH1).read_text(encoding="utf-8")
    assert 'title="Link to this heading"' in en and 'title="Toggle primary sidebar"' in en


def test_zh_search_page_is_chinese(server):
    _served(server)
    parsed = _parse(HTML / ZH_SEARCH)
    assert parsed.html_lang == "zh-CN"
    html = (HTML / ZH_SEARCH).read_text(encoding="utf-8")
    assert re.search(r"<title>搜索 - ", html), "the page title is not Chinese"
    assert "<h1>搜索</h1>" in html
    assert "请启用 JavaScript" in html and "Please activate JavaScript" not in html
    assert '"Searching": "正在搜索"' in html  # searchtools' words, via Documentation.addTranslations
    assert html.count("searchtools.js") == 1, "searchtools.js is loaded twice"
    # every search box of a Chinese page submits there; the English pages keep search.html
    for path, target in (
        (HTML / ZH_CH1, ZH_SEARCH),
        (HTML / ZH_SEARCH, ZH_SEARCH),
        (HTML / EN_CH1, "search.html"),
    ):
        html = path.read_text(encoding="utf-8")
        actions = re.findall(r'<form class="bd-search[^"]*"\s+action="([^"]*)"', html)
        assert actions, f"{path.relative_to(HTML)}: no search form"
        # on the search page itself the theme writes "#": the page submits to itself
        targets = {path.resolve() if a == "#" else (path.parent / a).resolve() for a in actions}
        assert targets == {(HTML / target).resolve()}, actions


def _search_at(page, server, search_page: str, query: str) -> list[str]:
    page.goto(server + search_page + "?q=" + urllib.parse.quote(query))
    page.wait_for_function(  # the summary is written once the index is loaded and searched
        "() => { const s = document.querySelector('.search-summary');"
        " return s && s.textContent.trim() && !/Searching|Preparing|正在/.test(s.textContent); }"
    )
    return page.eval_on_selector_all("ul.search li a", "els => els.map(e => e.href)")


def _languages(hits: list[str]) -> list[str]:
    return [h.split("/chapters/")[1][:2] if "/chapters/" in h else "-" for h in hits]


@pytest.mark.parametrize(
    ("query", "chapter"),
    [
        ("激活函数", ZH_CH1),
        ("批归一化", "chapters/zh/03_training.html"),
        ("残差连接", "chapters/zh/09_transformer.html"),
    ],
)
def test_zh_search_finds_chinese_chapters_first(page, server, query, chapter):
    hits = _search_at(page, server, ZH_SEARCH, query)
    assert any(h.split("#")[0].endswith(chapter) for h in hits), hits
    langs = _languages(hits)
    assert langs[0] == "zh" and langs == sorted(langs, key=["zh", "-", "en"].index), langs
    assert page.locator("#search-results h2").inner_text().startswith("搜索结果")
    assert page.locator(".search-summary").inner_text().startswith("搜索完成")
    assert page.locator("h1").first.inner_text() == "搜索"


def test_each_search_page_lists_its_language_first(page, server):
    """A word of both editions: the Chinese search page lists the zh pages first, the English one en."""
    for search_page, first in ((ZH_SEARCH, "zh"), ("search.html", "en")):
        langs = _languages(_search_at(page, server, search_page, "Transformer"))
        assert {"zh", "en"} <= set(langs), langs
        order = [first, "-", ({"zh", "en"} - {first}).pop()]
        assert langs == sorted(langs, key=order.index), (search_page, langs)


def test_zh_search_box_submits_to_the_chinese_search_page(page, server):
    page.goto(server + ZH_CH1)
    page.locator("button.search-button-field").first.click()
    box = page.locator("#pst-search-dialog input[name=q]")
    box.fill("激活函数")
    box.press("Enter")
    page.wait_for_url("**/" + ZH_SEARCH + "?q=*")
    assert page.locator("html").get_attribute("lang") == "zh-CN"


def test_zh_pages_speak_chinese_in_the_browser(page, server):
    """After the scripts ran (togglebutton and copybutton write labels in the browser)."""
    page.goto(server + ZH_CH1)
    page.wait_for_selector("button.copybtn", state="attached")
    english = page.evaluate(
        """(words) => [...document.querySelectorAll('[title],[aria-label],[data-bs-title],[data-tooltip]')]
             .flatMap(el => ['title', 'aria-label', 'data-bs-title', 'data-tooltip']
               .map(a => el.getAttribute(a)).filter(v => words.includes(v)))""",
        list(EN_TOOLTIPS),
    )
    assert not english, english
    assert page.evaluate("messages['zh-CN'].copy_success") == "复制成功！"
    assert page.locator("button.copybtn").first.get_attribute("data-tooltip") == "复制"
