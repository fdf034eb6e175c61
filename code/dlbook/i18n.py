"""Figures in the reader's language: every figure of the book in English and in Chinese.

The English and the Chinese chapter share their code cells, so a figure's
labels are written once, in English, in the code. This module gives each of
them its Chinese version from one table, ``dlbook/resources/figures_zh.tsv``
(columns ``en``, ``zh``), and decides which language a figure is shown in:

* **the book build** (``DLBOOK_STATIC=1``, set by the book's Sphinx extension):
  both. A figure becomes two images, ``<img class="dl-en">`` and
  ``<img class="dl-zh">``, and the book's CSS shows the one that matches the
  page; an explorer draws its frames in both languages;
* **a notebook in JupyterLab**: the language of the chapter's folder
  (a kernel started in ``chapters/zh`` shows Chinese figures);
* anywhere else: English. ``DLBOOK_LANG=en|zh|both`` overrides all of this.

A label is looked up whole (``"training loss"``), then with its numbers as
placeholders (``"seed 3"`` matches the row ``seed {n}``, whose Chinese
``种子 {n}`` gets the same numbers back, in order), then line by line, then
part by part between ``", "`` (``"CNN, training"`` gives ``"CNN，训练"``).
Strings without English words (``"$f(x)$"``, ``"ReLU"``, ``"0.5"``) need no
row. Matplotlib typesets a string with ``$…$`` entirely as mathtext, which has
no Chinese glyphs, so a Chinese row never mixes the two (write ``α``, not
``$\\alpha$``, next to Chinese; ``tests/test_i18n.py`` checks the table).

Examples
--------
>>> from dlbook import i18n
>>> i18n.translate("validation accuracy")
'验证准确率'
>>> i18n.translate("seed 2")
'种子 2'
>>> i18n.translate("ReLU")            # no English word: the same in both
'ReLU'
"""

from __future__ import annotations

import base64
import contextlib
import csv
import functools
import html
import io
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

__all__ = [
    "LANGUAGES",
    "MissingTranslation",
    "figure_html",
    "in_language",
    "language",
    "needs_translation",
    "plain_maths",
    "table",
    "translate",
]

#: The values :func:`language` returns.
LANGUAGES = ("en", "zh", "both")

_COLUMNS = ("en", "zh")
#: A number in a label: an integer, a decimal, scientific notation, with its sign.
_NUMBER = re.compile(r"(?<![A-Za-z_\\])[-−+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_PLACEHOLDER = "{n}"
_MATHS = re.compile(r"\$[^$]*\$")
#: An English word: three or more letters, lower case after the first
#: ("loss", "Training"); "ReLU", "GELU", "MLP", "x", "Wx" are not words here.
_WORD = re.compile(r"\b[A-Za-z][a-z]{2,}\b")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


class MissingTranslation(KeyError):
    """A figure text that needs a Chinese version and has no row in the table."""

    def __str__(self) -> str:
        return str(self.args[0])


def language() -> str:
    """``"en"``, ``"zh"`` or ``"both"``: the language(s) figures are drawn in here."""
    chosen = os.environ.get("DLBOOK_LANG", "").strip().lower()
    if chosen:
        if chosen not in LANGUAGES:
            raise ValueError(f"DLBOOK_LANG must be one of {LANGUAGES}, got {chosen!r}")
        return chosen
    if os.environ.get("DLBOOK_STATIC", "") not in ("", "0"):
        return "both"
    try:
        here = Path.cwd()
    except OSError:  # the working directory was removed
        return "en"
    return "zh" if here.name == "zh" else "en"


@functools.cache
def _rows() -> tuple[tuple[str, str], ...]:
    text = resources.files("dlbook").joinpath("resources", "figures_zh.tsv").read_text("utf-8")
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = tuple(next(reader))
    if header != _COLUMNS:
        raise ValueError(f"figures_zh.tsv: expected columns {_COLUMNS}, got {header}")
    rows = []
    for lineno, row in enumerate(reader, start=2):
        if len(row) != 2 or not row[0] or not row[1]:
            raise ValueError(f"figures_zh.tsv line {lineno}: expected en<TAB>zh, got {row!r}")
        en, zh = (cell.replace("\\n", "\n") for cell in row)
        if en.count(_PLACEHOLDER) != zh.count(_PLACEHOLDER):
            raise ValueError(f"figures_zh.tsv line {lineno}: {en!r} and {zh!r} differ in {{n}}")
        rows.append((en, zh))
    return tuple(rows)


@functools.cache
def _index() -> dict[str, str]:
    index: dict[str, str] = {}
    for en, zh in _rows():
        if en in index:
            raise ValueError(f"figures_zh.tsv: {en!r} appears twice")
        index[en] = zh
    return index


def table() -> list[dict[str, str]]:
    """Every row of the figure table, as dicts with keys ``en`` and ``zh`` (a copy)."""
    return [dict(zip(_COLUMNS, row, strict=True)) for row in _rows()]


@functools.cache
def _names() -> frozenset[str]:
    """Words that stay as they are: names and data, not English to translate.

    Single words the table keeps unchanged (``Adam``, ``tanh``), and the words
    of English numbers, the source language of the translation task in
    chapters 7-9 (``"three hundred and two"`` on an axis is data).
    """
    from dlbook import numbers

    kept = {en for en, zh in _rows() if en == zh and re.fullmatch(r"[A-Za-z][\w-]*", en)}
    spelled = [numbers.english(n) for n in (*range(1, 102), 10**3, 10**6, 10**9)]
    kept.update(word.group() for text in spelled for word in _WORD.finditer(text))
    return frozenset(kept)


def needs_translation(text: str) -> bool:
    """Whether ``text`` holds an English word outside ``$…$`` and has no Chinese yet.

    Names that the table keeps unchanged (a row ``Adam<TAB>Adam``) are not
    English words: ``"Adam, $\\eta = 0.1$"`` needs no row of its own.
    """
    if _CJK.search(text):
        return False
    names = _names()
    return any(word.group() not in names for word in _WORD.finditer(_MATHS.sub(" ", text)))


def _fill(template: str, numbers: list[str]) -> str:
    parts = template.split(_PLACEHOLDER)
    out = [parts[0]]
    for number, part in zip(numbers, parts[1:], strict=True):
        out += [number, part]
    return "".join(out)


_TEX = {
    r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\delta": "δ", r"\eta": "η",
    r"\theta": "θ", r"\lambda": "λ", r"\mu": "μ", r"\rho": "ρ", r"\sigma": "σ",
    r"\tau": "τ", r"\varepsilon": "ε", r"\epsilon": "ε", r"\phi": "φ", r"\omega": "ω",
    r"\times": "×", r"\cdot": "·", r"\le": "≤", r"\ge": "≥", r"\infty": "∞",
    r"\partial": "∂", r"\ln": "ln", r"\log": "log", r"\|": "‖", r"\,": " ", r"\ ": " ",
}


def plain_maths(text: str) -> str:
    """``text`` with its ``$…$`` written as plain Unicode (``$\\eta = 0.1$`` -> ``η = 0.1``).

    Matplotlib typesets a string that contains ``$`` entirely as mathtext, which
    has no Chinese glyphs; a Chinese label keeps its maths as plain text instead.
    """

    def plain(match: re.Match) -> str:
        tex = match.group()[1:-1]
        for command in sorted(_TEX, key=len, reverse=True):
            space = r"(?:\s(?=[A-Za-z]))?" if command[-1].isalpha() else ""  # \partial L: ∂L
            tex = re.sub(re.escape(command) + r"(?![A-Za-z])" + space, _TEX[command], tex)
        tex = re.sub(r"\\(?:mathrm|text|operatorname|mathbf|boldsymbol)\{([^{}]*)\}", r"\1", tex)
        return tex.replace("{", "").replace("}", "")

    return _MATHS.sub(plain, text)


def translate(text: str, *, strict: bool = True) -> str | None:
    """The Chinese version of one figure text.

    Returns ``text`` itself when it needs no translation. For a text that needs
    one and has no row: raises :class:`MissingTranslation` (``strict=True``)
    or returns ``None``.
    """
    if not isinstance(text, str):
        raise TypeError(f"translate expects str, got {type(text).__name__}")
    if not needs_translation(text):
        return text
    index = _index()
    if text in index:
        return index[text]
    numbers = _NUMBER.findall(text)
    if numbers:
        template = index.get(_NUMBER.sub(_PLACEHOLDER, text))
        if template is not None and template.count(_PLACEHOLDER) == len(numbers):
            return _fill(template, numbers)
    for separator in ("\n", ", "):  # line by line, then part by part ("CNN, training")
        if separator in text:
            parts = [translate(part, strict=False) for part in text.split(separator)]
            if all(part is not None for part in parts):
                joined = (separator if separator == "\n" else "，").join(parts)
                return plain_maths(joined) if _CJK.search(joined) else joined
    if strict:
        raise MissingTranslation(
            f"no Chinese version of the figure text {text!r}: add a row to "
            "dlbook/resources/figures_zh.tsv (numbers as {n})"
        )
    return None


# ------------------------------------------------------------------ figures
def _formatters(fig):
    """The tick formatters of ``fig`` that hold their own strings (fixed, function, categorical)."""
    from matplotlib.category import StrCategoryFormatter
    from matplotlib.ticker import FixedFormatter, FuncFormatter

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if isinstance(formatter, (FixedFormatter, FuncFormatter, StrCategoryFormatter)):
                    yield formatter


@contextlib.contextmanager
def in_language(fig, lang: str, missing: set[str] | None = None) -> Iterator[None]:
    """Within the block, every text of ``fig`` is in ``lang``; restored afterwards.

    Titles, axis labels, legend entries, annotations, fixed or categorical tick
    labels. A text without a row stays English and is added to ``missing``
    (if given). Text drawn in a monospace font is data (a model's sample,
    code) and stays as it is.
    """
    if lang not in ("en", "zh"):
        raise ValueError(f"in_language: lang must be 'en' or 'zh', got {lang!r}")
    if lang == "en":
        yield
        return
    from matplotlib.category import StrCategoryFormatter
    from matplotlib.text import Text
    from matplotlib.ticker import FuncFormatter

    def zh(text: str) -> str:
        found = translate(text, strict=False)
        if found is None:
            if missing is not None:
                missing.add(text)
            return text
        return found

    texts = []
    for artist in fig.findobj(Text):
        original = artist.get_text()
        if original and "monospace" not in artist.get_fontfamily():
            texts.append((artist, original))
            artist.set_text(zh(original))
    formatters = []
    for formatter in _formatters(fig):
        if isinstance(formatter, StrCategoryFormatter):
            units = formatter._units  # {label: position}; no public setter
            formatters.append((formatter, "_units", units))
            formatter._units = {zh(str(k)): v for k, v in units.items()}
        elif isinstance(formatter, FuncFormatter):  # also what set_ticklabels makes
            func = formatter.func
            formatters.append((formatter, "func", func))
            formatter.func = lambda x, pos=None, func=func: zh(str(func(x, pos)))
        else:
            formatters.append((formatter, "seq", formatter.seq))
            formatter.seq = [zh(s) for s in formatter.seq]
    try:
        yield
    finally:
        for artist, original in texts:
            artist.set_text(original)
        for formatter, attribute, value in formatters:
            setattr(formatter, attribute, value)


def _png(fig) -> bytes:
    """The PNG a notebook shows for ``fig`` (IPython's own rendering when available)."""
    try:
        from IPython.core.pylabtools import print_figure
    except ImportError:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight", dpi=fig.dpi)
        return buffer.getvalue()
    return print_figure(fig, "png", bbox_inches="tight")


# The book inlines both languages' images of every figure in the page; a
# 256-colour palette (no dithering) keeps lines and colour maps as they look and
# roughly halves each page.
_PALETTE_COLORS = 256


def _compact(png: bytes) -> bytes:
    """``png`` with a 256-colour palette, or unchanged when that is not smaller."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=_PALETTE_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    smaller = buffer.getvalue()
    return smaller if len(smaller) < len(png) else png


def figure_html(fig) -> str:
    """Both language versions of ``fig`` as HTML: two ``<img>``, one shown per page.

    Texts without a Chinese row are listed in the ``data-dl-missing``
    attribute (the book's tests fail on it) and stay English.
    """
    missing: set[str] = set()
    images = []
    for lang, attrs in (("en", 'class="dl-en" lang="en"'), ("zh", 'class="dl-zh" lang="zh-CN"')):
        with in_language(fig, lang, missing):
            data = base64.b64encode(_compact(_png(fig))).decode("ascii")
        images.append(f'<img {attrs} alt="" src="data:image/png;base64,{data}">')
    flag = ""
    if missing:
        flag = f' data-dl-missing="{html.escape(" | ".join(sorted(missing)), quote=True)}"'
    return f'<div class="dl-figure"{flag}>{"".join(images)}</div>'


def _display_png(fig) -> bytes | None:
    """IPython's PNG formatter for a figure, in the language of this notebook.

    None in the book build, where the HTML holds both languages' images.
    """
    lang = language()
    if lang == "both" or (not fig.axes and not fig.lines):
        return None
    with in_language(fig, lang):
        return _png(fig)


def _display_html(fig) -> str | None:
    """IPython's HTML formatter for a figure: both languages in the book build only."""
    if language() != "both" or (not fig.axes and not fig.lines):
        return None
    return figure_html(fig)


def _load_pyplot_backend() -> None:
    """Load pyplot's backend now rather than at the first figure.

    matplotlib-inline sets itself up when its module is first imported, and
    drops every figure formatter then; a chapter's first figure, shown in the
    middle of a cell, would otherwise miss ours.
    """
    import matplotlib.pyplot as plt

    try:
        plt._get_backend_mod()
    except AttributeError:  # pragma: no cover - older matplotlib
        plt.close(plt.figure())


def register(shell=None) -> bool:
    """Show every figure of this IPython session in the reader's language.

    Called by :func:`dlbook.plot.setup`. Returns ``False`` outside IPython.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    _load_pyplot_backend()

    def install(*_args) -> None:
        from matplotlib.figure import Figure

        formatters["image/png"].for_type(Figure, _display_png)
        formatters["text/html"].for_type(Figure, _display_html)

    install()
    # matplotlib-inline drops every figure formatter when the backend is first
    # used (and on %matplotlib), possibly in the middle of a cell: install ours
    # again before each cell and after it, before matplotlib-inline's own
    # post_execute hook (registered later, so run later) shows the figures.
    if not getattr(shell, "_dlbook_i18n", False):
        shell.events.register("pre_run_cell", install)
        shell.events.register("post_execute", install)
        shell._dlbook_i18n = True
    return True
