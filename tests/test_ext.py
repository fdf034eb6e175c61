"""The book's Sphinx extension (_ext/dlbook_site.py) on a tiny two-language project.

A strict Sphinx build (warnings are errors) of twin pages that share labels,
a figure name and an equation label: each page must link within its own
language, the Chinese page must say ``lang="zh-CN"`` and carry the switch,
MathJax must come from the vendored copy, and the search index must keep a
glossary term whole. Takes a few seconds; needs no notebook execution.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import warnings
from pathlib import Path

import pytest
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parents[1]

PAGE = {
    "en": """(sec-intro)=
# Introduction

An activation function is applied elementwise; see {ref}`sec-more`,
{numref}`fig-curve` and equation {eq}`eq-relu`.

$$
f(x) = \\max(0, x)
$$ (eq-relu)

```{figure} ../curve.png
:name: fig-curve

The curve.
```

(sec-more)=
## More

Back to [the start](#sec-intro).
""",
    "zh": """(sec-intro)=
# 引言

激活函数逐元素作用；参见 {ref}`sec-more`、{numref}`fig-curve` 和公式 {eq}`eq-relu`。

$$
f(x) = \\max(0, x)
$$ (eq-relu)

```{figure} ../curve.png
:name: fig-curve

曲线。
```

(sec-more)=
## 更多

回到[开头](#sec-intro)。
""",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    src = tmp_path_factory.mktemp("book")
    out = src / "_build"
    (src / "chapters" / "en").mkdir(parents=True)
    (src / "chapters" / "zh").mkdir(parents=True)
    for lang, text in PAGE.items():
        (src / "chapters" / lang / "01_intro.md").write_text(text, encoding="utf-8")
    # a 1x1 PNG for the figure
    (src / "chapters" / "curve.png").write_bytes(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
        )
    )
    (src / "glossary.tsv").write_text("en\tzh\tnote\nactivation function\t激活函数\t\n", "utf-8")
    (src / "index.md").write_text(  # two parts, as in the book's _toc.yml
        "# Book\n\n```{toctree}\n:caption: English\n\nchapters/en/01_intro\n```\n\n"
        "```{toctree}\n:caption: 中文\n\nchapters/zh/01_intro\n```\n",
        encoding="utf-8",
    )
    (src / "conf.py").write_text(
        "extensions = ['myst_parser', 'dlbook_site']\n"
        "myst_enable_extensions = ['dollarmath', 'amsmath']\n"
        "html_theme = 'sphinx_book_theme'\n"
        "html_search_language = 'zh'\n"
        "numfig = True\n"
        "dlbook_glossary = 'glossary.tsv'\n",
        encoding="utf-8",
    )
    # Load the extension from its file (it is not part of the installed package).
    spec = importlib.util.spec_from_file_location("dlbook_site", ROOT / "_ext" / "dlbook_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = sys.modules.get("dlbook_site")
    saved_static = os.environ.get("DLBOOK_STATIC")
    sys.modules["dlbook_site"] = module
    try:
        app = Sphinx(
            str(src),
            str(src),
            str(out / "html"),
            str(out / "doctrees"),
            "html",
            warningiserror=True,
            freshenv=True,
            status=None,
        )
        with warnings.catch_warnings():
            # jieba opens the user dictionary and never closes it (its bug, harmless)
            warnings.simplefilter("ignore", ResourceWarning)
            app.build()
    finally:
        if saved is None:
            sys.modules.pop("dlbook_site", None)
        else:
            sys.modules["dlbook_site"] = saved
        assert os.environ.get("DLBOOK_STATIC") == (saved_static or "1")
        if saved_static is None:  # the extension sets it for the build's kernels
            os.environ.pop("DLBOOK_STATIC", None)
    return out / "html"


def _hrefs(html: str) -> list[str]:
    return re.findall(r'<a class="reference internal" href="([^"]+)"', html)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_references_stay_in_their_language(built, lang):
    html = (built / "chapters" / lang / "01_intro.html").read_text(encoding="utf-8")
    links = [h for h in _hrefs(html) if "#" in h]
    assert links, "no cross-references were resolved"
    for href in links:
        page = href.split("#")[0]
        assert page in ("", "01_intro.html"), f"{lang} page links to another page: {href}"
    assert "#sec-more" in " ".join(links)
    assert "#equation-eq-relu" in " ".join(links)
    assert "#fig-curve" in " ".join(links)


def test_chinese_page_language_and_switch(built):
    zh = (built / "chapters" / "zh" / "01_intro.html").read_text(encoding="utf-8")
    en = (built / "chapters" / "en" / "01_intro.html").read_text(encoding="utf-8")
    assert re.search(r'<html[^>]* lang="zh-CN"', zh)
    assert re.search(r'<html[^>]* lang="en"', en)
    assert 'class="btn btn-sm dl-lang-switch" href="../en/01_intro.html"' in zh
    assert 'class="btn btn-sm dl-lang-switch" href="../zh/01_intro.html"' in en
    assert '<link rel="alternate" hreflang="en" href="../en/01_intro.html" />' in zh
    index = (built / "index.html").read_text(encoding="utf-8")
    assert "dl-lang-switch" not in index
    # the theme's own words follow the page's language
    assert 'placeholder="搜索本书……"' in zh and "上一章" in zh and "上一条" not in zh
    assert "搜索本书" not in en and "上一章" not in en and "previous" in en


def _captions(html: str) -> list[str]:
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', html, re.S)
    assert nav, "no sidebar navigation"
    return re.findall(r'<span class="caption-text">(.*?)</span>', nav[0])


def test_each_language_reads_on_its_own(built):
    zh = (built / "chapters" / "zh" / "01_intro.html").read_text(encoding="utf-8")
    en = (built / "chapters" / "en" / "01_intro.html").read_text(encoding="utf-8")
    # the sidebar of a Chinese page starts with the Chinese part
    assert _captions(zh) == ["中文", "English"]
    assert _captions(en) == ["English", "中文"]
    # previous/next never cross into the other language
    assert 'class="right-next"' not in en and 'rel="next"' not in en
    assert re.search(r'<a class="left-prev"\s+href="../../index.html"', zh)
    assert "../en/01_intro.html" not in re.findall(r'<link rel="prev"[^>]*>', zh)[0]


def test_chinese_search_page(built):
    page = (built / "search-zh.html").read_text(encoding="utf-8")
    assert re.search(r'<html[^>]* lang="zh-CN"', page)
    assert "<h1>搜索</h1>" in page and "请启用 JavaScript" in page
    assert page.count("searchtools.js") == 1
    assert _captions(page) == ["中文", "English"]
    # the English search page switches to it, keeping the query (dlbook.js)
    english = (built / "search.html").read_text(encoding="utf-8")
    assert re.search(r'dl-lang-switch" href="search-zh.html"[^>]*data-dl-query', english)
    zh = (built / "chapters" / "zh" / "01_intro.html").read_text(encoding="utf-8")
    en = (built / "chapters" / "en" / "01_intro.html").read_text(encoding="utf-8")
    assert re.search(r'<form class="bd-search[^"]*"\s+action="../../search-zh.html"', zh)
    assert re.search(r'<form class="bd-search[^"]*"\s+action="../../search.html"', en)


def test_theme_words_in_mainland_chinese(built):
    zh = (built / "chapters" / "zh" / "01_intro.html").read_text(encoding="utf-8")
    en = (built / "chapters" / "en" / "01_intro.html").read_text(encoding="utf-8")
    assert "打印为 PDF" in zh and "列印" not in zh
    for english in ("Link to this heading", "Toggle primary sidebar", "Color mode", "Main"):
        assert f'="{english}"' not in zh, english
    assert 'title="链接到此标题"' in zh and 'aria-label="全书目录"' in zh
    assert 'title="Link to this heading"' in en and 'aria-label="Main"' in en


def test_localise_attributes_touches_only_the_listed_attributes():
    module = _extension()
    html = '<a title="Main" class="Main">Main</a><nav aria-label="Main"></nav><p title="Mainly">'
    assert module.localise_attributes(html) == (
        '<a title="全书目录" class="Main">Main</a><nav aria-label="全书目录"></nav><p title="Mainly">'
    )


def test_lead_with_moves_the_part_and_its_list():
    module = _extension()
    html = (
        '<p class="caption"><span class="caption-text">English</span></p><ul><li>a</li></ul>'
        '<p class="caption"><span class="caption-text">中文</span></p><ul><li>甲</li></ul>'
    )
    moved = module.lead_with(html, {"中文"})
    assert moved.index("中文") < moved.index("甲") < moved.index("English") < moved.index(">a<")
    assert module.lead_with(moved, {"中文"}) == moved  # already first: unchanged
    assert module.lead_with(html, {"English"}) == html


def test_zh_date():
    module = _extension()
    import datetime

    assert module.zh_date(datetime.datetime(2026, 12, 5)) == "2026 年 12 月 5 日"


def _extension():
    spec = importlib.util.spec_from_file_location("dlbook_site_unit", ROOT / "_ext" / "dlbook_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mathjax_is_local(built):
    html = (built / "chapters" / "en" / "01_intro.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert any("_static/mathjax/tex-chtml.js" in s for s in scripts), scripts
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    assert (built / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert "thebe" not in html.lower()


def test_search_index_keeps_glossary_terms_whole(built):
    text = (built / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    assert "激活函数" in index["terms"]
    assert "activ" in index["terms"]  # English is still stemmed
    assert (built / "_static" / "dlbook-fonts" / "OFL.txt").is_file()
