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
* **Offline maths.** MathJax 3.2.2 is vendored in ``_ext/vendor/mathjax`` and
  copied to ``_static/mathjax``; ``mathjax_path`` points there instead of a CDN.
* **Nothing from the internet.** sphinx-thebe (loaded by Jupyter Book even
  with launch buttons off) is unhooked: its inline script names a CDN. Widget
  JS (``nb_ipywidgets_js``) is off in ``_config.yml``.
* **Chinese without a Chinese font.** The CJK subset that ``dlbook.plot``
  uses (Noto Sans CJK SC, SIL OFL 1.1) is copied to ``_static/dlbook-fonts``
  and declared as the last font of the theme's stacks, after ``local()``
  names of common system CJK fonts: only a reader with none downloads it.
* **Style.** ``_ext/static/dlbook.css``: the switch button, the language
  halves, the static explorers, the glossary table and the CJK fallback font.
"""

from __future__ import annotations

import csv
import posixpath
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging
from sphinx.util.fileutil import copy_asset_file

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
VENDOR = HERE / "vendor"  # holds mathjax/, copied to _static/mathjax/

MATHJAX_PATH = "mathjax/tex-chtml.js"
# The CJK font subset of dlbook.plot, also the web font of last resort (dlbook.css).
FONT_FILES = ("NotoSansCJKsc-subset.otf", "OFL.txt")
FONT_DIR = "dlbook-fonts"  # under _static/
SWITCH_TEMPLATE = "dl-lang-switch.html"
USERDICT_NAME = "dlbook-jieba-userdict.txt"

# chapters/<lang>/<name>: the language folder, its html lang and the switch label
LANGUAGES = {
    "en": {"lang": "en", "label": "English", "title": "Read this chapter in English"},
    "zh": {"lang": "zh-CN", "label": "中文", "title": "阅读本章的中文版"},
}
CHAPTER = re.compile(r"^chapters/(en|zh)/(.+)$")
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
            if getattr(handler, "__module__", "") == "sphinx_thebe" and handler.__name__ in unwanted:
                app.disconnect(listener.id)


def on_config_inited(app: Sphinx, config: Config) -> None:
    disable_thebe(app)
    # Maths from the vendored copy, never from a CDN.
    config.mathjax_path = MATHJAX_PATH
    config.html_static_path = [*config.html_static_path, str(VENDOR), str(STATIC)]
    config.templates_path = [*config.templates_path, str(TEMPLATES)]

    # The switch sits in the article header, before the theme's buttons.
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
    tsv = Path(app.confdir) / "code" / "dlbook" / "data" / "glossary.tsv"
    if not tsv.is_file():
        logger.warning("dlbook_site: no glossary at %s; Chinese search is unsegmented", tsv)
        return
    userdict = write_userdict(glossary_terms(tsv), Path(app.doctreedir) / USERDICT_NAME)
    config.html_search_options = {**(config.html_search_options or {}), "dict": str(userdict)}


def twin_of(pagename: str) -> tuple[str, str, str] | None:
    """``(this language, twin language, twin pagename)`` for a chapter page."""
    match = CHAPTER.match(pagename)
    if not match:
        return None
    lang, rest = match.groups()
    other = "zh" if lang == "en" else "en"
    return lang, other, f"chapters/{other}/{rest}"


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


def on_html_page_context(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
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
    self_url = posixpath.basename(app.builder.get_target_uri(pagename))
    links = [
        f'<link rel="alternate" hreflang="{LANGUAGES[lang]["lang"]}" href="{self_url}" />',
        f'<link rel="alternate" hreflang="{LANGUAGES[other]["lang"]}" href="{url}" />',
    ]
    context["metatags"] = context.get("metatags", "") + "\n" + "\n".join(links) + "\n"


def copy_cjk_font(app: Sphinx, exception: Exception | None) -> None:
    """Ship the CJK subset (and its licence) with the site, for readers without a CJK font.

    ``dlbook.css`` declares it with ``local()`` sources first, so a reader's
    own Chinese font is used when there is one and the file is never fetched.
    """
    if exception is not None or app.builder.format != "html":
        return
    source = Path(app.confdir) / "code" / "dlbook" / "fonts"
    target = Path(app.outdir) / "_static" / FONT_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in FONT_FILES:
        if not (source / name).is_file():
            logger.warning("dlbook_site: %s is missing; Chinese may not render offline", source / name)
            continue
        copy_asset_file(str(source / name), str(target))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    app.connect("html-page-context", on_html_page_context)
    app.connect("html-page-context", drop_thebe, priority=900)
    app.connect("build-finished", copy_cjk_font)
    app.add_css_file("dlbook.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
