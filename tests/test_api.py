"""The API reference (``chapters/*/93_api.md``, made by ``_ext/dlbook_api.py``).

Without a build: the extension's scan of chapters and tests sees every form
of import, every public module declares ``__all__`` with names it defines, the
two pages are twins in the table of contents. On the built book (``book``
mark): the English page has an entry (an element with the name as its id) for
every name of every module's ``__all__``, the Chinese page the same entries
without ids and with links to the English ones, and both maps list every
module; in Chromium, in light and dark mode, both pages load offline and the
map and the entries are visible.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import autocorrect_py
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
PAGES = {lang: ROOT / "chapters" / lang / "93_api.md" for lang in ("en", "zh")}


def _extension():
    name = "dlbook_api"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "_ext" / "dlbook_api.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


api = _extension()
MODULES = api.public_modules()


@functools.cache
def _usage() -> dict:
    return api.usage_map(MODULES)


def _names(modname: str) -> list[str]:
    return list(importlib.import_module(modname).__all__)


# ---------------------------------------------------------------- the package
def test_public_modules_are_the_files():
    files = sorted(p.stem for p in (ROOT / "code" / "dlbook").glob("*.py") if not p.stem.startswith("_"))
    assert MODULES == ["dlbook", *(f"dlbook.{stem}" for stem in files)]


@pytest.mark.parametrize("modname", MODULES)
def test_every_module_declares_what_it_exports(modname):
    module = importlib.import_module(modname)
    assert hasattr(module, "__all__"), f"{modname} has no __all__ (the API page lists __all__)"
    names = module.__all__
    assert len(names) == len(set(names)), f"{modname}.__all__ repeats a name"
    missing = []
    for name in names:
        try:
            getattr(module, name)
        except AttributeError:
            missing.append(name)
    assert not missing, f"{modname}.__all__ names what it does not define: {missing}"


# ---------------------------------------------------------------- who uses what
def test_modules_used_sees_every_import_form():
    code = "\n".join(
        [
            "%matplotlib inline",  # a magic is skipped, not a syntax error
            "import dlbook as dl",
            "from dlbook import regions as R, gradcheck",
            "from dlbook.recurrent import RNN",
            "import dlbook.conv",
            "x = dl.losses.mse(a, b)",
            "m = dl.Sequential()",
            "def f():",
            "    from dlbook import glossary",
        ]
    )
    assert api.modules_used(code) == {
        "dlbook",  # the shortcuts gradcheck and Sequential
        "dlbook.core",  # their home
        "dlbook.regions",
        "dlbook.recurrent",
        "dlbook.conv",
        "dlbook.losses",
        "dlbook.glossary",
    }


def test_modules_used_ignores_other_packages():
    assert api.modules_used("import numpy as np\nnp.linalg.norm(x)\nimport dlbookish") == set()
    assert api.modules_used("dl.losses.mse(a, b)") == set()  # no import: dl is something else
    assert api.modules_used("this is not python (") == set()


def test_usage_map_finds_known_uses():
    found = _usage()
    assert "02_relu_approximation" in found["dlbook.regions"].chapters
    assert "06_recurrent" in found["dlbook.recurrent"].chapters
    assert "test_core.py" in found["dlbook.core"].tests
    assert "test_api.py" not in found["dlbook.core"].tests  # it reads the package, tests no layer


@pytest.mark.parametrize("modname", MODULES[1:])
def test_every_module_has_a_test_file(modname):
    """The map's test column is never empty: each module is imported by some test."""
    assert _usage()[modname].tests, f"no test file imports {modname}"


# ---------------------------------------------------------------- the generated text
def test_chinese_copy_is_not_indexed():
    en, zh = api.generate(zh=False), api.generate(zh=True)
    assert ":no-index:" not in en
    directives = re.findall(r"^\.\. (auto\w+|py:\w+)::.*\n((?:   :.*\n)*)", zh, re.M)
    assert directives
    unindexed = [d for d, options in directives if d != "autosummary" and ":no-index:" not in options]
    assert not unindexed, f"zh entries that would be indexed twice: {unindexed[:5]}"


def test_split_equations():
    split = api.split_equations
    assert split(r"a = b, \quad c = d,\qquad e") == ["a = b,", "c = d,", "e"]
    assert split(r"f(x) \quad \text{(ReLU)}") == [r"f(x) \quad \text{(ReLU)}"]  # no comma
    assert split(r"\begin{cases} a, \quad b \end{cases}") == [r"\begin{cases} a, \quad b \end{cases}"]
    assert split(r"x = {a, \quad b}") == [r"x = {a, \quad b}"]
    assert split(r"a &= b, \quad c") == [r"a &= b, \quad c"]  # already aligned


# ---------------------------------------------------------------- the pages
def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_pages_are_twins_in_the_toc():
    files = _toc_files()
    for lang, path in PAGES.items():
        assert path.is_file(), f"{path} is missing"
        assert f"chapters/{lang}/93_api" in files, f"chapters/{lang}/93_api is not in _toc.yml"
        text = path.read_text(encoding="utf-8")
        assert text.count("```{dlbook-api}") == 1, f"{path.name} ({lang}) must ask for the reference once"
    # after the glossary in both parts
    for lang in PAGES:
        own = [f for f in files if f.startswith(f"chapters/{lang}/")]
        assert own.index(f"chapters/{lang}/93_api") > own.index(f"chapters/{lang}/90_glossary")


def test_pages_have_the_same_headings():
    def headings(text):
        return [len(m.group(1)) for m in re.finditer(r"^(#{1,6})\s", text, re.M)]

    en, zh = (PAGES[lang].read_text(encoding="utf-8") for lang in ("en", "zh"))
    assert headings(en) == headings(zh)


def test_chinese_page_is_clean_chinese():
    text = PAGES["zh"].read_text(encoding="utf-8")
    assert re.search(r"[\u4e00-\u9fff]{20}", text), "the Chinese page has no Chinese introduction"
    lines = autocorrect_py.lint_for(text, "md").lines
    assert not lines, [(line.old, line.new) for line in lines]


# ---------------------------------------------------------------- the built pages
class _Page(HTMLParser):
    """Ids, links, signature names and the rows of the map of one built page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.signatures: list[str] = []  # the full name of each <dt class="sig">
        self.map_rows: list[list[str]] = []
        self._sig: list[str] | None = None
        self._table = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        classes = (a.get("class") or "").split()
        if tag == "dt" and "sig" in classes:
            self._sig = []
        if tag == "table" and "dl-api-map" in classes:
            self._table = 1
        elif self._table:
            if tag == "tr":
                self.map_rows.append([])
            elif tag in ("td", "th"):
                self._cell = []

    def handle_endtag(self, tag):
        if tag == "dt" and self._sig is not None:
            text = "".join(self._sig)
            self.signatures.append(re.split(r"[(:\s]", text.replace("class ", "", 1).strip())[0])
            self._sig = None
        if self._table and tag in ("td", "th") and self._cell is not None:
            self.map_rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if self._table and tag == "table":
            self._table = 0

    def handle_data(self, data):
        if self._sig is not None:
            self._sig.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _built(lang: str) -> _Page:
    path = HTML / "chapters" / lang / "93_api.html"
    if not path.is_file():
        pytest.skip(f"no built book: {path} is missing (run `make book-strict`)")
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _all_names() -> list[str]:
    """Every public name; a module's entry is the module's own (``module-dlbook.core``)."""
    return [
        f"module-{modname}.{name}" if f"{modname}.{name}" in MODULES else f"{modname}.{name}"
        for modname in MODULES
        for name in _names(modname)
    ]


@pytest.mark.book
def test_english_page_has_an_entry_for_every_public_name():
    page = _built("en")
    missing = [full for full in _all_names() if full not in page.ids]
    assert not missing, f"names of __all__ with no entry on the API page: {missing}"
    modules = [m for m in MODULES if f"module-{m}" not in page.ids]
    assert not modules, f"modules with no entry: {modules}"


@pytest.mark.book
def test_chinese_page_has_every_entry_linked_to_the_english_one():
    page = _built("zh")
    indexed = [i for i in page.ids if i.startswith(("dlbook.", "module-dlbook"))]
    assert not indexed, f"the zh copy must not be indexed: {indexed[:5]}"
    shown = set(page.signatures)
    missing = [full for full in _all_names() if full not in shown and not full.startswith("module-")]
    assert not missing, f"names with no entry on the Chinese API page: {missing}"
    # the summary tables link to the English entries
    targets = {href.split("#", 1)[1] for href in page.links if href.startswith("../en/93_api.html#")}
    en = _built("en")
    assert targets and targets <= en.ids, sorted(targets - en.ids)[:5]
    summarised = [f for f in _all_names() if f in targets]
    assert len(summarised) > len(_all_names()) // 2


@pytest.mark.book
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_map_lists_every_module(lang):
    page = _built(lang)
    rows = page.map_rows
    assert rows, "no module -> chapters -> tests table"
    listed = [row[0] for row in rows[1:]]
    assert listed == MODULES
    found = _usage()
    for row, modname in zip(rows[1:], MODULES, strict=True):
        for test in found[modname].tests:
            assert test in row[2], f"{modname}: {test} missing from the map"
    # chapter links stay in the page's language
    chapter_links = [h for h in page.links if re.match(r"^\d\d_\w+\.html$", h)]
    assert chapter_links, "the map links no chapter"


# ---------------------------------------------------------------- in the browser
@pytest.mark.book
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_api_page_in_the_browser(offline_context, server, lang, scheme):
    page = offline_context(color_scheme=scheme).new_page()
    page.goto(f"{server}chapters/{lang}/93_api.html")
    page.wait_for_selector("table.dl-api-map", state="visible")
    assert page.locator("table.dl-api-map tbody tr").count() == len(MODULES)
    # the page's theme follows the reader's colour scheme
    mode = page.evaluate("() => document.documentElement.dataset.theme")
    assert mode == scheme, f"theme {mode!r} in a {scheme} browser"
    entry = page.locator("dl.py.class > dt.sig").first
    entry.scroll_into_view_if_needed()
    assert entry.is_visible()
    # text and background of an entry differ (readable in both schemes)
    colours = entry.evaluate(
        "e => [getComputedStyle(e).color, getComputedStyle(document.body).backgroundColor]"
    )
    assert colours[0] != colours[1]
