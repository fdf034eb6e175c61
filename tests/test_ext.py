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
    (src / "index.md").write_text(
        "# Book\n\n```{toctree}\nchapters/en/01_intro\nchapters/zh/01_intro\n```\n",
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
    assert 'placeholder="搜索本书……"' in zh and "上一条" in zh
    assert "搜索本书" not in en and "上一条" not in en and "previous" in en


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
