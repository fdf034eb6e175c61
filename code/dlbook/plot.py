"""One plotting style for the whole book, Chinese glyphs included.

Importing this module changes nothing; a chapter calls :func:`setup` once::

    import dlbook as dl
    from dlbook import plot
    plot.setup()

:func:`setup` sets a small set of matplotlib ``rcParams`` (figure size, grid,
colour cycle, fonts) and registers the bundled subset of Noto Sans CJK SC
(``dlbook/fonts``, SIL Open Font License 1.1), so a label such as ``"激活函数"``
renders without a system CJK font. Latin text keeps DejaVu Sans; matplotlib
falls back to the CJK font per character.

:func:`bilingual` wraps the two language versions of a table or a printed
result: the code cells of the English and the Chinese chapter are identical,
and the book's CSS shows the version that matches the page.
"""

from __future__ import annotations

import html as _html
import re
from importlib import resources
from pathlib import Path

__all__ = ["CJK_FONT_FAMILY", "COLORS", "Bilingual", "bilingual", "font_path", "setup"]

#: Family name of the bundled CJK font, as matplotlib reports it.
CJK_FONT_FAMILY = "Noto Sans CJK SC"

#: The colour cycle: Okabe & Ito's palette for colour-blind readers (without its
#: yellow, too pale on white), then a neutral grey.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000", "#999999")

_FONT_FILE = "NotoSansCJKsc-subset.otf"


def font_path() -> Path:
    """Path of the bundled CJK font subset (an OpenType/CFF file)."""
    return Path(str(resources.files("dlbook").joinpath("fonts", _FONT_FILE)))


def _register_font() -> None:
    from matplotlib import font_manager

    path = font_path()
    if not path.is_file():
        raise FileNotFoundError(f"the book's CJK font is missing: expected {path}")
    known = {Path(entry.fname).resolve() for entry in font_manager.fontManager.ttflist}
    if path.resolve() not in known:
        font_manager.fontManager.addfont(str(path))


def style() -> dict[str, object]:
    """The book's rcParams, as a dict (what :func:`setup` applies)."""
    from cycler import cycler

    return {
        "figure.figsize": (7.0, 3.2),
        "figure.dpi": 100,
        "figure.facecolor": "white",
        "savefig.dpi": 110,
        "savefig.bbox": "tight",
        "savefig.facecolor": "white",
        "font.family": ["DejaVu Sans", CJK_FONT_FAMILY],  # per-glyph fallback needs names
        "font.sans-serif": ["DejaVu Sans", CJK_FONT_FAMILY],
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "axes.prop_cycle": cycler(color=list(COLORS)),
        "axes.grid": True,
        "axes.axisbelow": True,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#444444",
        "axes.unicode_minus": True,
        "grid.color": "#dddddd",
        "grid.linewidth": 0.6,
        "lines.linewidth": 1.8,
        "legend.frameon": False,
        "legend.fontsize": 9,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "mathtext.fontset": "dejavusans",
        "image.cmap": "viridis",
    }


def setup() -> None:
    """Apply the book's matplotlib style and make Chinese labels render.

    Call it once near the top of a chapter (calling it again is harmless).

    Ordinary text falls back from DejaVu Sans to the CJK font glyph by glyph.
    Mathtext does not: a string with ``$…$`` in it is typeset by mathtext
    as a whole, so keep maths and Chinese in separate strings (e.g. the
    formula as the axis label, the Chinese in the title).
    """
    import matplotlib as mpl

    _register_font()
    mpl.rcParams.update(style())


class Bilingual:
    """The same content in English and in Chinese; shows the page's language.

    In a notebook front end the HTML representation holds both versions,
    ``<div class="dl-en">…</div><div class="dl-zh">…</div>``; the book's CSS
    hides the version that does not match the page's ``lang``. In a terminal
    both versions print, English first.
    """

    __slots__ = ("en", "zh", "_html_input")

    def __init__(self, en: str, zh: str, *, html: bool | None = None) -> None:
        for name, value in (("en", en), ("zh", zh)):
            if not isinstance(value, str):
                raise TypeError(f"bilingual: {name} must be str, got {type(value).__name__}")
        self.en, self.zh = en, zh
        if html is None:  # treat markup as markup, anything else as plain text
            html = all(re.match(r"\s*<[A-Za-z!]", s) for s in (en, zh))
        self._html_input = bool(html)

    def _as_html(self, text: str) -> str:
        if self._html_input:
            return text
        return f'<pre class="dl-text">{_html.escape(text)}</pre>'

    def _repr_html_(self) -> str:
        return (
            f'<div class="dl-en" lang="en">{self._as_html(self.en)}</div>'
            f'<div class="dl-zh" lang="zh-CN">{self._as_html(self.zh)}</div>'
        )

    def __repr__(self) -> str:
        return f"{self.en}\n{self.zh}"


def bilingual(en: str, zh: str, *, html: bool | None = None) -> Bilingual:
    """Wrap an English and a Chinese version of one output (text or HTML).

    Parameters
    ----------
    en, zh : str
        The two versions. Plain text is escaped and shown preformatted;
        strings that start with an HTML tag are inserted as HTML.
    html : bool, optional
        Force one reading (``True``: both are HTML; ``False``: both are text).

    Examples
    --------
    >>> bilingual("3 dead units", "3 个死亡单元")
    3 dead units
    3 个死亡单元
    """
    return Bilingual(en, zh, html=html)
