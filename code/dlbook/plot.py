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

from . import i18n

__all__ = [
    "CJK_FONT_FAMILY",
    "COLORS",
    "Bilingual",
    "activation_explorer",
    "activation_grid",
    "bilingual",
    "font_path",
    "properties_at",
    "properties_table",
    "setup",
]

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
    i18n.register()  # in a notebook: figures in the chapter's language (both in the book)


class Bilingual:
    """The same content in English and in Chinese; shows the page's language.

    In the book build (:func:`dlbook.i18n.language` is ``"both"``) the HTML
    representation holds both versions,
    ``<div class="dl-en">…</div><div class="dl-zh">…</div>``, and the book's
    CSS hides the version that does not match the page's ``lang``; a notebook
    in JupyterLab shows the version of its chapter's language. In a terminal
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
        lang = i18n.language()
        if lang == "en":
            return self._as_html(self.en)
        if lang == "zh":
            return self._as_html(self.zh)
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


# ---------------------------------------------------------------------------
# Helpers for the activation functions (Chapter 1)
# ---------------------------------------------------------------------------
_PROPERTY_COLUMNS = (
    # key in a row of dlbook.activations.properties_table(), English, Chinese
    ("bounded", "Bounded", "有界"),
    ("monotonic", "Monotonic", "单调"),
    ("smooth", "Smooth", "平滑"),
    ("zero_centred", "Zero-centred", "以零为中心"),
    ("saturating", "Saturating", "饱和"),
    ("identity_near_0", "≈ identity at 0", "零点附近≈恒等"),
)


def _short_reference(reference: str) -> str:
    """``"Nair & Hinton (2010). Rectified …"`` -> ``"Nair & Hinton (2010)"``."""
    match = re.match(r"^(.*?)\s*\((\d{4})\)", reference)
    if match:
        authors = re.split(r",\s*|\s+&\s+|\s+and\s+", match.group(1).strip())
        if len(authors) > 2:  # "Clevert, Unterthiner & Hochreiter" -> "Clevert et al."
            return f"{authors[0]} et al. ({match.group(2)})"
        return f"{match.group(1).strip()} ({match.group(2)})"
    if reference.startswith("("):
        return "–"
    return reference.split(",")[0].rstrip(".")


#: Authors cited in the properties table who publish in Chinese.
_AUTHORS_ZH = {"Su Jianlin": "苏剑林"}

_SIDES = {"left": ("x→−∞", "左侧"), "right": ("x→+∞", "右侧"), "both": ("both", "两侧")}


def _flag(value: object, en: bool) -> str:
    """✓ / ✗ for a boolean; for saturation ("none", "left", "right", "both") the side."""
    if isinstance(value, str):
        if value == "none":
            return "✗"
        side = _SIDES.get(value)
        return _html.escape(side[0 if en else 1] if side else value)
    return "✓" if value else "✗"


def _inline_math(tex: str) -> str:
    """Inline maths as Sphinx writes it, so MathJax typesets it in the book."""
    return f'<span class="math notranslate nohighlight">\\({_html.escape(tex)}\\)</span>'


def properties_table(rows: list[dict]) -> Bilingual:
    """The properties of activation functions as a bilingual HTML table.

    ``rows`` is what :func:`dlbook.activations.properties_table` returns: one
    dict per function with ``title``, ``name_zh``, ``latex``, ``range``, the
    boolean properties and ``reference``. Formulas are typeset by MathJax in
    the book (``\\(…\\)``). Chapter 1, "Desirable properties".
    """
    needed = {"title", "name_zh", "latex", "range", "reference"} | {
        k for k, _, _ in _PROPERTY_COLUMNS
    }
    if not isinstance(rows, list) or not rows:
        raise ValueError("properties_table expects a non-empty list of rows")
    for i, row in enumerate(rows):
        missing = needed - set(row)
        if missing:
            raise ValueError(f"properties_table: row {i} lacks {sorted(missing)}")

    def table(lang: str) -> str:
        en = lang == "en"
        # No formula column: each formula is in the chapter's text, and a wide
        # column would push the flags out of view.
        head = ["Function", "Range"] if en else ["函数", "值域"]
        head += [e if en else z for _, e, z in _PROPERTY_COLUMNS]
        head += ["Reference"] if en else ["文献"]
        lines = ['<table class="dl-properties"><thead><tr>']
        lines += [f"<th>{_html.escape(h)}</th>" for h in head]
        lines.append("</tr></thead><tbody>")
        for row in rows:
            name = row["title"] if en else row["name_zh"]
            if "{" in name:  # a formula as its name, e.g. max(x, x·e^{−|x|})
                head_tex, _, rest = name.partition(")")
                name_html = _inline_math(_title_tex(head_tex + ")")) + _html.escape(rest)
            else:
                name_html = _html.escape(name)
            cells = [
                f'<td class="dl-name">{name_html}</td>',
                f'<td class="dl-range">{_inline_math(row["range"])}</td>',
            ]
            cells += [
                f'<td class="dl-flag">{_flag(row[key], en)}</td>' for key, _, _ in _PROPERTY_COLUMNS
            ]
            ref = _short_reference(str(row["reference"]))
            if not en:  # authors who write in Chinese keep their Chinese name
                ref = _AUTHORS_ZH.get(ref, ref)
            cells.append(f'<td class="dl-ref">{_html.escape(ref)}</td>')
            lines.append("<tr>" + "".join(cells) + "</tr>")
        lines.append("</tbody></table>")
        return "".join(lines)

    return bilingual(table("en"), table("zh"), html=True)


def _title_tex(title: str) -> str:
    """``"max(x, x·e^{−|x|})"`` -> TeX for a title that is a formula."""
    return title.replace("−", "-").replace("·", r"\cdot ").replace("max", r"\max")


def _axes_title(spec, params: dict) -> str:
    title = spec.title
    if "{" in title:  # e.g. "max(x, x·e^{−|x|})": typeset it as maths
        title = "$" + _title_tex(title) + "$"
    if params:
        title += ", " + ", ".join(f"{k}={float(v):g}" for k, v in params.items())
    return title


def activation_grid(
    names: list[str],
    *,
    xlim: tuple[float, float] = (-4.0, 4.0),
    ncols: int | None = None,
    derivative: bool = True,
    **params: dict,
):
    """Small multiples: each activation ``f`` (solid) and its derivative ``f'`` (dashed).

    Parameters
    ----------
    names : list of str
        Registry names from :mod:`dlbook.activations` (elementwise ones).
    xlim : the x range drawn.
    ncols : panels per row (default: up to 4).
    derivative : also draw ``f'``.
    **params : dict
        Parameters per activation, e.g. ``leaky_relu={"negative_slope": 0.1}``.

    Returns the matplotlib figure (created with pyplot, so a notebook shows it).
    Chapter 1, "A zoo of activation functions".
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from . import activations

    if isinstance(names, str) or not names:
        raise ValueError("activation_grid expects a non-empty list of activation names")
    specs = [activations.get(name) for name in names]
    unknown = set(params) - set(names)
    if unknown:
        raise ValueError(f"activation_grid: parameters given for {sorted(unknown)}, not drawn")
    for spec in specs:
        if spec.fn is None:
            raise ValueError(
                f"activation_grid: {spec.name!r} is a layer, not an elementwise function"
            )
    ncols = ncols or min(4, len(specs))
    nrows = -(-len(specs) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(7.0, 1.9 * nrows + 0.4),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    x = np.linspace(xlim[0], xlim[1], 801)
    for ax, spec in zip(axes.flat, specs, strict=False):
        p = dict(params.get(spec.name, {}))
        ax.axhline(0, color="#999999", lw=0.6)
        ax.axvline(0, color="#999999", lw=0.6)
        ax.plot(x, spec(x, **p), color=COLORS[0], label="$f(x)$")
        if derivative:
            ax.plot(x, spec.derivative(x, **p), "--", color=COLORS[1], lw=1.4, label="$f'(x)$")
        ax.set_title(_axes_title(spec, p), fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(specs) :]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="upper left", fontsize=8, handlelength=1.6)
    return fig


_PARAM_SYMBOLS = {"alpha": "α", "beta": "β", "negative_slope": "a", "lambda": "λ"}


def properties_at(activation, **params) -> list[tuple[str, str]]:
    """The properties that hold for one activation at given parameters, measured.

    Checked numerically on a grid over [-1e4, 1e4] and at the joins of the pieces
    (``kink_points``): monotonic (f' >= 0), smooth (f and f' continuous at
    every join), zero-centred (:math:`|E f(z)| <` ``ZERO_CENTRED_TOL`` for
    :math:`z \\sim N(0, 1)`, by :func:`dlbook.activations.gaussian_mean`), identity near 0
    (f(0) = 0, f'(0) = 1 from both sides), bounded below (f(-1e6) > -1e3)
    and saturating for x -> -inf (``|f'(-1e3)| < 1e-3``). Returns ``(English,
    Chinese)`` names of those that hold. Chapter 1, "Explorer".
    """
    import numpy as np

    from . import activations

    act = activations.get(activation) if isinstance(activation, str) else activation
    # fine near 0, geometric further out: Swish's dip sits at x = -1.28/beta
    far = np.geomspace(1e-4, 1e4, 4000)
    x = np.sort(np.concatenate([-far, np.linspace(-8.0, 8.0, 3201), far]))
    d = act.derivative(x, **params)

    def slopes(at: float) -> tuple[float, float]:
        left, right = act.derivative(np.array([at - 1e-7, at + 1e-7]), **params)
        return float(left), float(right)

    f0 = float(act(np.array([0.0]), **params)[0])
    found = []
    if np.all(d >= -1e-9):
        found.append(("monotonic", "单调"))

    def joins_smoothly(at: float) -> bool:
        left, right = act(np.array([at - 1e-9, at + 1e-9]), **params)
        d_left, d_right = slopes(at)
        return abs(left - right) < 1e-6 and abs(d_left - d_right) < 1e-3

    continuous = getattr(act.properties, "continuous", True)
    if continuous and all(map(joins_smoothly, act.kink_points(**params))):
        found.append(("smooth", "平滑"))
    if abs(activations.gaussian_mean(act, **params)) < activations.ZERO_CENTRED_TOL:
        found.append(("zero-centred", "以零为中心"))
    if abs(f0) < 1e-9 and all(abs(s - 1.0) < 1e-6 for s in slopes(0.0)):
        found.append(("≈ identity at 0", "零点附近≈恒等"))
    tail = np.array([-1e6, -1e3])
    if float(act(tail, **params)[0]) > -1e3:
        found.append(("bounded below", "下有界"))
    if abs(float(act.derivative(tail, **params)[1])) < 1e-3:
        found.append(("saturates as x→−∞", "x→−∞ 时饱和"))
    return found


def activation_explorer(
    spec: dict,
    *,
    xlim: tuple[float, float] = (-4.0, 4.0),
    static: bool | None = None,
):
    """An explorer of parameterised activations: pick a function, move its parameter.

    The slider steps through the values; the value is in the figure's title,
    and the line above the figure lists the properties that hold at that value
    (:func:`properties_at`), in the page's language. Left panel ``f``, right panel ``f'``;
    the other values of the parameter stay in light grey for comparison.
    Chapter 1, "Parameterised activations".

    Parameters
    ----------
    spec : dict
        ``{activation name: (parameter name, values)}``, the same number of
        values for every function, e.g.
        ``{"elu": ("alpha", np.linspace(0.25, 2, 8))}``.
    xlim : tuple of float
        The x range drawn.
    static : bool or None
        Passed to :func:`dlbook.widgets.explore`.
    """
    import numpy as np

    from . import activations, widgets

    if not isinstance(spec, dict) or not spec:
        raise ValueError("activation_explorer expects {name: (parameter, values)}")
    table = {}
    for name, entry in spec.items():
        act = activations.get(name)
        try:
            param, values = entry
        except (TypeError, ValueError):
            raise ValueError(f"activation_explorer: {name!r} needs (parameter, values)") from None
        if param not in act.params:
            raise ValueError(f"activation_explorer: {name} has no parameter {param!r}")
        table[name] = (act, param, [float(v) for v in values])
    lengths = {len(v) for _, _, v in table.values()}
    if len(lengths) != 1:
        raise ValueError(
            "activation_explorer: every function needs the same number of values, "
            f"got {sorted(lengths)}"
        )
    n = lengths.pop()

    x = np.linspace(xlim[0], xlim[1], 401)
    curves = {}
    for name, (act, param, values) in table.items():
        ys = [act(x, **{param: v}) for v in values]
        ds = [act.derivative(x, **{param: v}) for v in values]
        curves[name] = (ys, ds)

    def limits(arrays):
        lo, hi = min(float(a.min()) for a in arrays), max(float(a.max()) for a in arrays)
        pad = 0.08 * (hi - lo or 1.0)
        return lo - pad, hi + pad

    captions = {}
    for name, (act, param, values) in table.items():
        for step, value in enumerate(values):
            found = properties_at(act, **{param: value})
            en = " · ".join(e for e, _ in found) or "none of the listed properties"
            zh = " · ".join(z for _, z in found) or "所列性质都不成立"
            captions[name, step] = bilingual(f"Holds here: {en}", f"此时成立：{zh}")

    def draw(fig, activation, step):
        act, param, values = table[activation]
        ys, ds = curves[activation]
        left, right = fig.subplots(1, 2)
        for ax, arrays, label in ((left, ys, "$f(x)$"), (right, ds, "$f'(x)$")):
            for k, y in enumerate(arrays):
                if k != step:
                    ax.plot(x, y, color="#cccccc", lw=0.8)
            ax.plot(x, arrays[step], color=COLORS[0] if ax is left else COLORS[1], lw=2)
            ax.axhline(0, color="#999999", lw=0.6)
            ax.axvline(0, color="#999999", lw=0.6)
            ax.set_ylim(*limits(arrays))
            ax.set_title(label, fontsize=10)
        symbol = _PARAM_SYMBOLS.get(param, param)
        fig.suptitle(f"{act.title}, {symbol} = {values[step]:.3g}", fontsize=11)

    return widgets.explore(
        draw,
        sliders={"step": list(range(n))},
        choices={"activation": list(table)},
        labels={"activation": "f", "step": "parameter"},
        caption=lambda activation, step: captions[activation, step],
        static=static,
        alt="Activation explorer",
    )
