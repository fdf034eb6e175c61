"""The book's own Sphinx extension: two languages, offline maths, Chinese search.

Loaded by Jupyter Book through ``_config.yml``::

    sphinx:
      local_extensions:
        dlbook_site: _ext

What it does:

* **Language switch.** Every page ``chapters/en/X`` gets a button "中文" in the
  article header that leads to ``chapters/zh/X``, and the other way round
  ("English"); both pages get ``<link rel="alternate" hreflang=…>`` for
  themselves and their twin.
* **Page language.** Pages under ``chapters/zh/`` say ``<html lang="zh-CN">``;
  the rest keep the book's ``language`` (``en``). The book's CSS uses it to
  show one half of the bilingual outputs (``.dl-en`` / ``.dl-zh``, made by
  ``dlbook.plot.bilingual``).
* **Chinese search.** The search index is built by Sphinx's Chinese splitter
  (jieba; English words are still stemmed). jieba gets a user dictionary made
  from the glossary's Chinese terms, so 激活函数 is indexed as one word; the
  dictionary is written into the build directory and passed to Sphinx by its
  absolute path (a relative path is silently ignored).
* **One label, two pages.** The twins carry the same labels (``(sec-x)=``,
  ``:name: fig-x``, ``$$ … $$ (eq-x)``), which Sphinx would call duplicates.
  Labels on Chinese pages are kept under a ``zh/`` scope, and references
  from a Chinese page go to the Chinese label when there is one: each page
  links within its own language.
* **Offline maths.** MathJax 3.2.2 is vendored in ``_ext/vendor/mathjax`` and
  copied to ``_static/mathjax``; ``mathjax_path`` points there instead of a CDN.
* **Static explorers.** ``DLBOOK_STATIC=1`` is set for the notebook kernels
  of the build, so ``dlbook.widgets.explore`` renders kernel-free HTML.
* **Nothing from the internet.** sphinx-thebe (loaded by Jupyter Book even
  with launch buttons off) is unhooked: its inline script names a CDN. Widget
  JS (``nb_ipywidgets_js``) is off in ``_config.yml``.
* **The theme speaks Chinese on Chinese pages** ("上一章", "目录", the search
  box, "显示代码" on hidden cells), with the themes' own zh_CN catalogs and the
  book's corrections to them in mainland usage (``ZH_SPHINX_WORDS``,
  ``ZH_BOOK_WORDS``: 打印为 PDF, 上一章 / 下一章, a Chinese date). Words the
  themes write without a catalog (``title="Toggle primary sidebar"``,
  ``aria-label="Main"``, "Link to this heading" …) are replaced in the written
  Chinese pages (``ZH_ATTRIBUTES``); the few that scripts create in the
  browser (the copy button's "Copied!", togglebutton's labels) are in
  ``dlbook.js``.
* **Each language reads on its own.** On a Chinese page the sidebar lists the
  中文 part first; previous/next never leave the page's language (the zh
  preface goes back to the landing page, the en glossary has no "next").
* **A Chinese search page.** ``search-zh.html`` (Sphinx's search page in
  Chinese, ``lang="zh-CN"``) is where the search box of Chinese pages
  submits; searchtools' own words come in Chinese there, and on both search
  pages the results in the page's language come first (``dlbook.js`` sets
  ``Scorer.score``).
* **Chinese without a Chinese font.** The CJK subset that ``dlbook.plot``
  uses (Noto Sans CJK SC, SIL OFL 1.1) is copied to ``_static/dlbook-fonts``
  and declared as the last font of the theme's stacks, after ``local()``
  names of common system CJK fonts: only a reader with none downloads it.
* **Style.** ``_ext/static/dlbook.css``: the switch button, the language
  halves, the static explorers, the glossary table and the CJK fallback font.
"""

from __future__ import annotations

import csv
import datetime
import functools
import gettext
import importlib
import json
import os
import posixpath
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.domains.math import MathDomain
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.fileutil import copy_asset_file
from sphinx.util.nodes import make_refnode

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
VENDOR = HERE / "vendor"  # holds mathjax/, copied to _static/mathjax/

MATHJAX_PATH = "mathjax/tex-chtml.js"
# The CJK font subset of dlbook.plot, also the web font of last resort (dlbook.css).
FONT_FILES = ("NotoSansCJKsc-subset.otf", "OFL.txt")
FONT_DIR = "dlbook-fonts"  # under _static/
FONT_SOURCE = HERE.parent / "code" / "dlbook" / "fonts"  # the repository's package data
SWITCH_TEMPLATE = "dl-lang-switch.html"
SEARCH_PAGE = "search"  # Sphinx's search page, in English
ZH_SEARCH_PAGE = "search-zh"  # the same page in Chinese: the search box of Chinese pages submits here
ZH_SEARCH_TEMPLATE = "dl-search-zh.html"
USERDICT_NAME = "dlbook-jieba-userdict.txt"

# chapters/<lang>/<name>: the language folder, its html lang and the switch label
LANGUAGES = {
    "en": {"lang": "en", "label": "English", "title": "Read this chapter in English"},
    "zh": {"lang": "zh-CN", "label": "中文", "title": "阅读本章的中文版"},
}
# the language switch of the two search pages
SEARCH_TWINS = {
    SEARCH_PAGE: ("zh", ZH_SEARCH_PAGE, "用中文搜索本书"),
    ZH_SEARCH_PAGE: ("en", SEARCH_PAGE, "Search the book in English"),
}
CHAPTER = re.compile(r"^chapters/(en|zh)/(.+)$")


def page_language(pagename: str | None) -> str | None:
    """``"en"`` or ``"zh"`` for a chapter or a search page; ``None`` for the bilingual rest."""
    if not pagename:
        return None
    if pagename in SEARCH_TWINS:
        return "zh" if pagename == ZH_SEARCH_PAGE else "en"
    match = CHAPTER.match(pagename)
    return match.group(1) if match else None
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")


def glossary_terms(tsv: Path) -> list[str]:
    """The Chinese words of the glossary that jieba should keep whole.

    Each run of two or more Han characters in the ``zh`` column counts: from
    "参数化 ReLU" that is 参数化, from "源语言/目标语言" both halves.
    """
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    terms = {run for row in rows for run in CJK_RUN.findall(row["zh"])}
    return sorted(terms)


def write_userdict(terms: list[str], path: Path) -> Path:
    """Write jieba's user dictionary: one ``term 1000 n`` per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{term} 1000 n\n" for term in terms)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path.resolve()


def disable_thebe(app: Sphinx) -> None:
    """Unhook sphinx-thebe (Jupyter Book loads it unconditionally).

    With launch buttons off it has nothing to do, but it still puts an inline
    script naming a CDN (unpkg) in every page head and a Binder configuration
    in every page body. The book keeps its pages free of such URLs.
    """
    unwanted = {"init_thebe_core", "update_thebe_context"}
    for listeners in app.events.listeners.values():
        for listener in list(listeners):
            handler = listener.handler
            if (
                getattr(handler, "__module__", "") == "sphinx_thebe"
                and handler.__name__ in unwanted
            ):
                app.disconnect(listener.id)


def on_config_inited(app: Sphinx, config: Config) -> None:
    disable_thebe(app)
    # The kernels MyST-NB starts inherit this: explorers render as kernel-free
    # HTML even when the build was started without DLBOOK_STATIC=1 (widget JS
    # would need a CDN and a kernel).
    os.environ.setdefault("DLBOOK_STATIC", "1")
    # Maths from the vendored copy, never from a CDN.
    config.mathjax_path = MATHJAX_PATH
    config.html_static_path = [*config.html_static_path, str(VENDOR), str(STATIC)]
    config.templates_path = [*config.templates_path, str(TEMPLATES)]
    # Sphinx's search page once more, in Chinese (search-zh.html).
    config.html_additional_pages = {
        **(config.html_additional_pages or {}),
        ZH_SEARCH_PAGE: ZH_SEARCH_TEMPLATE,
    }

    # The switch sits in the article header, before the theme's buttons.
    if config.html_theme in ("sphinx_book_theme", "pydata_sphinx_theme"):
        options = dict(config.html_theme_options or {})
        end = options.get("article_header_end", "article-header-buttons.html")
        end = [s.strip() for s in end.split(",")] if isinstance(end, str) else list(end)
        if SWITCH_TEMPLATE not in end:
            end.insert(0, SWITCH_TEMPLATE)
        options["article_header_end"] = end
        config.html_theme_options = options

    # Chinese search with the glossary as jieba's user dictionary.
    if config.html_search_language != "zh":
        logger.warning(
            "dlbook_site: html_search_language is %r; the book needs 'zh' so that both "
            "languages are searchable",
            config.html_search_language,
            type="dlbook",
        )
    tsv = Path(app.confdir) / config.dlbook_glossary
    if not tsv.is_file():
        logger.warning("dlbook_site: no glossary at %s; Chinese search is unsegmented", tsv)
        return
    userdict = write_userdict(glossary_terms(tsv), Path(app.doctreedir) / USERDICT_NAME)
    config.html_search_options = {**(config.html_search_options or {}), "dict": str(userdict)}


# ---------------------------------------------------------------------------
# Twin-scoped labels
# ---------------------------------------------------------------------------
SCOPE = "zh/"  # prefix of the labels of Chinese pages (internal; HTML ids keep the plain label)


def is_zh(docname: str | None) -> bool:
    return bool(docname) and docname.startswith("chapters/zh/")


def scoped(docname: str | None, label: str) -> str:
    """The label as Sphinx stores it: scoped on Chinese pages, as written elsewhere."""
    return SCOPE + label if is_zh(docname) and not label.startswith(SCOPE) else label


def unscoped(label: str) -> str:
    return label[len(SCOPE) :] if label.startswith(SCOPE) else label


class ScopeTwinLabels(SphinxTransform):
    """Rename the explicit labels of a Chinese page before Sphinx's domains collect them.

    Runs just before ``SphinxDomains`` (priority 850). Only the *names* change
    (``ch-x`` -> ``zh/ch-x``); the node ids, and so the HTML anchors, stay.
    """

    default_priority = 840

    def apply(self, **kwargs: Any) -> None:
        if not is_zh(self.env.docname):
            return
        document = self.document
        for name, explicit in list(document.nametypes.items()):
            labelid = document.nameids.get(name)
            node = document.ids.get(labelid) if labelid else None
            if not explicit or name.startswith(SCOPE):
                continue
            if node is not None and node.tagname in ("footnote", "citation"):
                continue
            new = SCOPE + name
            document.nametypes[new] = document.nametypes.pop(name)
            document.nameids[new] = document.nameids.pop(name)
            if node is not None:
                node["names"] = [new if n == name else n for n in node["names"]]


class ResolveTwinLabels(SphinxPostTransform):
    """Point the references of a Chinese page at the Chinese labels.

    Runs before MyST's and Sphinx's reference resolvers (priorities 9 and 10).
    A reference whose scoped label does not exist (e.g. a label on a page that
    is not a chapter) is left alone and resolves as usual.
    """

    default_priority = 5

    def run(self, **kwargs: Any) -> None:
        if not is_zh(self.env.docname):
            return
        std = self.env.get_domain("std")
        math = self.env.get_domain("math")
        for node in self.document.findall(addnodes.pending_xref):
            target = node.get("reftarget", "")
            kind, domain = node.get("reftype"), node.get("refdomain")
            if not target or target.startswith(SCOPE):
                continue
            if domain == "math" or kind == "eq":
                if SCOPE + target in math.equations:
                    node["reftarget"] = SCOPE + target
            elif kind in ("ref", "numref", "myst") and domain in ("std", "", None):
                key = SCOPE + target.lower()
                if key in std.anonlabels:
                    node["reftarget"] = key
                elif kind in ("numref", "myst") and SCOPE + target in math.equations:
                    node["reftarget"] = SCOPE + target


class TwinMathDomain(MathDomain):
    """Sphinx's math domain with the equation labels of Chinese pages scoped.

    MyST registers ``$$ … $$ (label)`` while it parses, before any transform,
    so the scope is applied here. The HTML anchor stays ``equation-<label>``.
    """

    def note_equation(self, docname: str, labelid: str, location: Any = None) -> None:
        super().note_equation(docname, scoped(docname, labelid), location)

    def get_equation_number_for(self, labelid: str) -> int | None:
        return super().get_equation_number_for(scoped(self.env.docname, labelid))

    def resolve_xref(self, env, fromdocname, builder, typ, target, node, contnode):
        found = self.equations.get(target)
        if found is None:
            return None
        docname, number = found
        node_id = nodes.make_id("equation-" + unscoped(target))
        if env.config.math_numfig and env.config.numfig:
            numbers = env.toc_fignumbers.get(docname, {}).get("displaymath", {}).get(node_id, ())
            dotted = ".".join(str(n) for n in numbers)
            eqno = env.config.math_numsep.join(dotted.rsplit(".", 1)) if dotted else ""
        else:
            eqno = str(number)
        text = (env.config.math_eqref_format or "({number})").format(number=eqno)
        return make_refnode(builder, fromdocname, docname, node_id, nodes.Text(text))


def twin_of(pagename: str) -> tuple[str, str, str] | None:
    """``(this language, twin language, twin pagename)`` for a chapter page."""
    match = CHAPTER.match(pagename)
    if not match:
        return None
    lang, rest = match.groups()
    other = "zh" if lang == "en" else "en"
    return lang, other, f"chapters/{other}/{rest}"


def section_ids(doctree: Any) -> list[str]:
    """The HTML id of every section of a page, in document order."""
    if doctree is None:
        return []
    return [node["ids"][0] for node in doctree.findall(nodes.section) if node["ids"]]


def _is_thebe(asset: Any) -> bool:
    name = getattr(asset, "filename", None) or str(asset)
    body = (getattr(asset, "attributes", None) or {}).get("body", "")
    return "thebe" in name or "THEBE_JS_URL" in body


def drop_thebe(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Remove what is left of sphinx-thebe's assets (its stylesheet) from the page."""
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not _is_thebe(asset)]


# ---------------------------------------------------------------------------
# The theme's own words in Chinese on Chinese pages
# ---------------------------------------------------------------------------
ZH_SEARCH_TEXT = "搜索本书……"


@functools.cache
def zh_catalogs() -> tuple[gettext.NullTranslations, gettext.NullTranslations]:
    """``(sphinx, booktheme)`` message catalogs for zh_CN.

    ``sphinx``: pydata-sphinx-theme's catalog over Sphinx's own (the templates'
    ``_()``); ``booktheme``: sphinx-book-theme's (its ``translate()``).
    Missing packages or catalogs fall back to the English strings.
    """

    def catalog(module: str, subdir: str, domain: str) -> gettext.NullTranslations:
        try:
            root = Path(importlib.import_module(module).__file__).parent / subdir
        except ImportError:
            return gettext.NullTranslations()
        return gettext.translation(domain, root, ["zh_CN", "zh"], fallback=True)

    sphinx_words = catalog("pydata_sphinx_theme", "locale", "sphinx")
    sphinx_words.add_fallback(catalog("sphinx", "locale", "sphinx"))
    book_words = catalog("sphinx_book_theme", "theme/sphinx_book_theme/static/locales", "booktheme")
    return Words(ZH_SPHINX_WORDS, sphinx_words), Words(ZH_BOOK_WORDS, book_words)


class Words(gettext.NullTranslations):
    """The book's own translations in front of a catalog (which answers the rest)."""

    def __init__(self, words: dict[str, str], fallback: gettext.NullTranslations) -> None:
        super().__init__()
        self.words = dict(words)
        self.add_fallback(fallback)

    def gettext(self, message: str) -> str:
        return self.words[message] if message in self.words else super().gettext(message)


# The themes' catalogs corrected to mainland usage, and what they lack. Keys are
# the themes' msgids (templates' ``_()`` / ``{% trans %}``; sphinx-book-theme's
# ``translate()``).
ZH_SPHINX_WORDS = {
    "previous": "上一章",  # pydata: 上一条
    "next": "下一章",  # pydata: 下一条
    "previous page": "上一章",
    "next page": "下一章",
    "Color mode": "颜色模式",
    "System Settings": "跟随系统",
    "Light": "亮色",
    "Dark": "暗色",
    "Last updated on %(last_updated)s.": "最后更新于 %(last_updated)s。",
    "Breadcrumb": "导航路径",
    "Home": "首页",
    "Search": "搜索",
    "Error": "错误",
    "Please activate JavaScript to enable the search functionality.": "请启用 JavaScript 以使用搜索功能。",
}
ZH_BOOK_WORDS = {
    "Print to PDF": "打印为 PDF",  # the catalog's 列印成 PDF is Taiwanese usage
    "Download this page": "下载本页",
    "Download source file": "下载源文件",
    "Download notebook file": "下载笔记本文件",
    "Fullscreen mode": "全屏模式",
}
# Words the themes write without a catalog (hard-coded in their templates, or
# by Sphinx's HTML writer and MyST-NB in the page body): replaced in the written
# Chinese pages, in these attributes only.
ZH_ATTRIBUTES = {
    "Toggle primary sidebar": "显示或隐藏目录栏",
    "Toggle secondary sidebar": "显示或隐藏本页目录",
    "Link to this heading": "链接到此标题",
    "Download this page": "下载本页",
    "Toggle hidden content": "显示或隐藏内容",
    "Main": "全书目录",
    "Page": "本页目录",
}
LOCALISED_ATTRIBUTE = re.compile(r'\b(title|aria-label|data-bs-title)="([^"]*)"')
# searchtools.js and sphinx_highlight.js translate with Documentation.gettext;
# Sphinx ships no catalog for them when the book's language is en.
ZH_SCRIPT_WORDS = {
    "Searching": "正在搜索",
    "Search Results": "搜索结果",
    "Preparing search...": "正在准备搜索……",
    "Search finished, found ${resultCount} page(s) matching the search query.": (
        "搜索完成，共找到 ${resultCount} 个相关页面。"
    ),
    "Your search did not match any documents. Please make sure that all words are spelled "
    "correctly and that you've selected enough categories.": (
        "没有找到相关页面。请检查拼写，或换一个词再试。"
    ),
    ", in ": "，位于 ",
    "Hide Search Matches": "隐藏搜索高亮",
}


def localise_attributes(html: str, words: dict[str, str] | None = None) -> str:
    """``title``/``aria-label``/``data-bs-title`` values found in ``words`` translated."""
    words = ZH_ATTRIBUTES if words is None else words

    def swap(match: re.Match[str]) -> str:
        attribute, value = match.groups()
        return f'{attribute}="{words[value]}"' if value in words else match.group(0)

    return LOCALISED_ATTRIBUTE.sub(swap, html)


def zh_date(when: datetime.datetime | None = None) -> str:
    """The build date as Sphinx takes it (``SOURCE_DATE_EPOCH`` or now), in Chinese."""
    if when is None:
        epoch = os.getenv("SOURCE_DATE_EPOCH")
        when = (
            datetime.datetime.fromtimestamp(float(epoch), tz=datetime.UTC)
            if epoch is not None
            else datetime.datetime.now(tz=datetime.UTC).astimezone()
        )
    return f"{when.year} 年 {when.month} 月 {when.day} 日"


ZH_CELL_PROMPTS = {
    "source": ("显示代码", "隐藏代码"),
    "output": ("显示输出", "隐藏输出"),
    "outputs": ("显示输出", "隐藏输出"),
    "content": ("显示单元格", "隐藏单元格"),
}


class LocaliseCellPrompts(SphinxPostTransform):
    """ "Show code cell source" and friends (MyST-NB's hidden cells) in Chinese on Chinese pages.

    Runs after MyST-NB's ``HideInputCells`` (priority 199), which has filled
    in the English words.
    """

    default_priority = 210
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        if not is_zh(self.env.docname):
            return
        for node in self.document.findall(nodes.Element):
            if type(node).__name__ != "HideCodeCellNode":
                continue
            kind = str(node.get("prompt_show", "")).rsplit(" ", 1)[-1]
            if kind in ZH_CELL_PROMPTS:
                node["prompt_show"], node["prompt_hide"] = ZH_CELL_PROMPTS[kind]


# sphinx-togglebutton's hint on folded boxes (the exercise solutions) is a
# global set by one inline script per page; Chinese pages get their own.
ZH_TOGGLE_HINTS = {"toggleHintShow": "点击显示", "toggleHintHide": "点击隐藏"}


def _localise_toggle_hints(context: dict[str, Any]) -> None:
    from sphinx.builders.html._assets import _JavaScript

    files = []
    for asset in context.get("script_files", []):
        body = getattr(asset, "attributes", {}).get("body", "")
        for name, words in ZH_TOGGLE_HINTS.items():
            if body.startswith(f"let {name} ="):
                attributes = {**asset.attributes, "body": f"let {name} = '{words}';"}
                asset = _JavaScript(asset.filename, priority=asset.priority, **attributes)
        files.append(asset)
    context["script_files"] = files


def _add_script_words(context: dict[str, Any]) -> None:
    """Sphinx's scripts (search, highlighting) in Chinese: a catalog right after doctools.js."""
    from sphinx.builders.html._assets import _JavaScript

    files = list(context.get("script_files", []))
    names = [str(getattr(asset, "filename", asset) or "") for asset in files]
    after = [i for i, name in enumerate(names) if name.endswith("doctools.js")]
    if not after:
        return
    catalog = {"locale": "zh_CN", "messages": ZH_SCRIPT_WORDS, "plural_expr": "0"}
    body = f"Documentation.addTranslations({json.dumps(catalog, ensure_ascii=False)});"
    files.insert(after[0] + 1, _JavaScript(None, body=body))
    context["script_files"] = files


def _search_in_chinese(context: dict[str, Any]) -> None:
    """The search box (and the Ctrl+K dialog) of a Chinese page submit to search-zh.html."""
    pathto = context.get("pathto")
    if pathto is None:
        return

    @functools.wraps(pathto)
    def zh_pathto(otheruri: str, *args: Any, **kwargs: Any) -> str:
        resource = args[0] if args else kwargs.get("resource", False)
        if otheruri == SEARCH_PAGE and not resource:
            otheruri = ZH_SEARCH_PAGE
        return pathto(otheruri, *args, **kwargs)

    context["pathto"] = zh_pathto


def localise_theme(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Chinese pages get the theme's words in Chinese ("上一页", "目录", "搜索").

    Sphinx renders with one language; the template environment's gettext is
    swapped for each page just before it is rendered (and swapped back).
    """
    environment = getattr(getattr(app.builder, "templates", None), "environment", None)
    if environment is None or not hasattr(environment, "install_gettext_translations"):
        return
    if page_language(pagename) == "zh":
        sphinx_words, book_words = zh_catalogs()
        environment.install_gettext_translations(sphinx_words)
        context["translate"] = book_words.gettext
        context["theme_search_bar_text"] = ZH_SEARCH_TEXT
        if context.get("last_updated"):
            context["last_updated"] = zh_date()
        _localise_toggle_hints(context)
        _add_script_words(context)
        _search_in_chinese(context)
    else:
        environment.install_gettext_translations(app.translator)


def on_html_page_context(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    if pagename in SEARCH_TWINS:
        other, twin, title = SEARCH_TWINS[pagename]
        context["language"] = LANGUAGES[page_language(pagename)]["lang"]
        context["dl_twin_url"] = app.builder.get_relative_uri(pagename, twin)
        context["dl_twin_label"] = LANGUAGES[other]["label"]
        context["dl_twin_title"] = title
        context["dl_twin_lang"] = LANGUAGES[other]["lang"]
        context["dl_twin_query"] = True  # dlbook.js carries the query over
        return
    pair = twin_of(pagename)
    if pair is None:
        return
    lang, other, twin = pair
    context["language"] = LANGUAGES[lang]["lang"]  # <html lang=…>
    if twin not in app.env.found_docs:
        return
    url = app.builder.get_relative_uri(pagename, twin)
    context["dl_twin_url"] = url
    context["dl_twin_label"] = LANGUAGES[other]["label"]
    context["dl_twin_title"] = LANGUAGES[other]["title"]
    context["dl_twin_lang"] = LANGUAGES[other]["lang"]
    # Same position in the twin: the twins' sections pair in order (the tests
    # check the heading structure), so the switch's script can map the section
    # the reader is in to the twin's anchor for it.
    own, theirs = section_ids(doctree), section_ids(app.env.get_doctree(twin))
    if own and len(own) == len(theirs):
        context["dl_own_anchors"] = " ".join(own)
        context["dl_twin_anchors"] = " ".join(theirs)
    self_url = posixpath.basename(app.builder.get_target_uri(pagename))
    links = [
        f'<link rel="alternate" hreflang="{LANGUAGES[lang]["lang"]}" href="{self_url}" />',
        f'<link rel="alternate" hreflang="{LANGUAGES[other]["lang"]}" href="{url}" />',
    ]
    context["metatags"] = context.get("metatags", "") + "\n" + "\n".join(links) + "\n"


# ---------------------------------------------------------------------------
# Each language reads on its own: sidebar order, previous/next
# ---------------------------------------------------------------------------
def language_parts(app: Sphinx) -> dict[str, str]:
    """``{caption: language}`` of the root's toctrees whose chapters are all in one language.

    For the book: ``{"English": "en", "中文": "zh"}`` (the parts of ``_toc.yml``).
    """
    cached = getattr(app.builder, "_dl_language_parts", None)
    if cached is not None:
        return cached
    parts: dict[str, str] = {}
    root = app.config.root_doc
    if root in app.env.all_docs:
        for toctree in app.env.get_doctree(root).findall(addnodes.toctree):
            languages = {page_language(docname) for _title, docname in toctree["entries"]}
            if toctree.get("caption") and len(languages) == 1 and None not in languages:
                parts[toctree["caption"]] = languages.pop()
    app.builder._dl_language_parts = parts
    return parts


def lead_with(html: str, captions: set[str]) -> str:
    """The sidebar's toctree HTML with the parts captioned ``captions`` moved to the top.

    A part is a ``<p class="caption">`` and the ``<ul>`` after it (or the
    ``<li class="toctree-l0">`` holding both, when the theme folds parts).
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    heads = soup.find_all("p", class_="caption")

    def part(head: Any) -> list[Any]:
        parent = head.parent
        if parent is not None and parent.name == "li" and "toctree-l0" in parent.get("class", []):
            return [parent]
        following = head.find_next_sibling("ul")
        return [head, following] if following is not None else [head]

    others = [i for i, head in enumerate(heads) if head.get_text(strip=True) not in captions]
    if not others:
        return html
    anchor = part(heads[others[0]])[0]
    moved = [head for head in heads[others[0] :] if head.get_text(strip=True) in captions]
    if not moved:
        return html
    for head in moved:
        for element in part(head):
            anchor.insert_before(element.extract())
    return str(soup)


def _own_language_first(app: Sphinx, context: dict[str, Any], language: str) -> None:
    """The sidebar of a page lists its language's part first (wraps the theme's generator)."""
    generate = context.get("generate_toctree_html")
    captions = {caption for caption, lang in language_parts(app).items() if lang == language}
    if generate is None or not captions:
        return

    @functools.wraps(generate)
    def own_first(kind: str, *args: Any, **kwargs: Any) -> Any:
        html = generate(kind, *args, **kwargs)
        return lead_with(str(html), captions) if kind == "sidebar" else html

    context["generate_toctree_html"] = own_first


def _prev_next_within(app: Sphinx, pagename: str, context: dict[str, Any], language: str) -> None:
    """Previous/next stay in the page's language.

    Where the toctree's sequence crosses from one part to the other (en glossary
    -> zh preface), "next" is dropped and "previous" leads to the landing page.
    """
    related = getattr(app.builder, "relations", {}).get(pagename)
    if not related:
        return
    _parent, prev_doc, next_doc = related
    root = app.config.root_doc
    for key, docname in (("prev", prev_doc), ("next", next_doc)):
        other = page_language(docname)
        if other is None or other == language:
            continue
        context["rellinks"] = [link for link in context.get("rellinks", []) if link[0] != docname]
        context[key] = None
        if key == "prev" and root != pagename and root in app.env.titles:
            title = app.builder.render_partial(app.env.titles[root])["title"]
            context["prev"] = {"link": app.builder.get_relative_uri(pagename, root), "title": title}


def keep_to_the_language(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    language = page_language(pagename)
    if language is None:
        return
    _prev_next_within(app, pagename, context, language)
    if language == "zh":
        _own_language_first(app, context, language)


def localise_written_pages(app: Sphinx, exception: Exception | None) -> None:
    """Translate the hard-coded English attributes (``ZH_ATTRIBUTES``) in the Chinese pages."""
    if exception is not None or app.builder.format != "html":
        return
    names = [name for name in app.env.found_docs if page_language(name) == "zh"]
    for name in [*sorted(names), ZH_SEARCH_PAGE]:
        path = Path(app.builder.get_outfilename(name))
        if not path.is_file():
            continue
        html = path.read_text(encoding="utf-8")
        localised = localise_attributes(html)
        if localised != html:
            path.write_text(localised, encoding="utf-8")


def copy_cjk_font(app: Sphinx, exception: Exception | None) -> None:
    """Ship the CJK subset (and its licence) with the site, for readers without a CJK font.

    ``dlbook.css`` declares it with ``local()`` sources first, so a reader's
    own Chinese font is used when there is one and the file is never fetched.
    """
    if exception is not None or app.builder.format != "html":
        return
    source = FONT_SOURCE
    target = Path(app.outdir) / "_static" / FONT_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in FONT_FILES:
        if not (source / name).is_file():
            logger.warning(
                "dlbook_site: %s is missing; Chinese may not render offline", source / name
            )
            continue
        copy_asset_file(str(source / name), str(target))


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("dlbook_glossary", "code/dlbook/resources/glossary.tsv", "env", [str])
    app.add_domain(TwinMathDomain, override=True)
    app.add_transform(ScopeTwinLabels)
    app.add_post_transform(ResolveTwinLabels)
    app.add_post_transform(LocaliseCellPrompts)
    app.connect("config-inited", on_config_inited)
    app.add_js_file("dlbook.js", loading_method="defer")
    app.connect("html-page-context", on_html_page_context)
    app.connect("html-page-context", drop_thebe, priority=900)
    # after sphinx-book-theme's own handler (priority 500), which sets "translate"
    app.connect("html-page-context", localise_theme, priority=600)
    # after pydata-sphinx-theme's (priority 500), which adds generate_toctree_html
    app.connect("html-page-context", keep_to_the_language, priority=600)
    app.connect("build-finished", copy_cjk_font)
    app.connect("build-finished", localise_written_pages)
    app.add_css_file("dlbook.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
