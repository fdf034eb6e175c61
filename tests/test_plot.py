"""dlbook.plot: the style, the bundled CJK font and bilingual outputs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
from fontTools.ttLib import TTFont
from matplotlib import font_manager

from dlbook import glossary, plot

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(plot.__file__).resolve().parent
# CJK ideographs, CJK symbols and punctuation, full-width forms: what DejaVu Sans lacks.
CJK = re.compile(
    r"[\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
REBUILD = (
    "rebuild the subset: see the docstring of code/dlbook/fonts/make_subset.py "
    "(python code/dlbook/fonts/make_subset.py PATH/TO/NotoSansCJKsc-Regular.otf)"
)


@pytest.fixture(scope="module")
def cmap() -> dict[int, str]:
    return TTFont(plot.font_path()).getBestCmap()


def _code_cell_characters(cell_type: str = "code") -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for nb in sorted((ROOT / "chapters").glob("*/*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8")).get("cells", []):
            if cell.get("cell_type") == cell_type:
                source = cell.get("source", "")
                text = "".join(source) if isinstance(source, list) else source
                for ch in CJK.findall(text):
                    found.setdefault(ch, set()).add(nb.relative_to(ROOT).as_posix())
    return found


def _package_characters() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    sources = sorted(PACKAGE.glob("**/*.py")) + [PACKAGE / "resources" / "glossary.tsv"]
    for path in sources:
        for ch in CJK.findall(path.read_text(encoding="utf-8")):
            found.setdefault(ch, set()).add(path.relative_to(PACKAGE).as_posix())
    return found


def test_font_is_small_and_licensed():
    path = plot.font_path()
    assert path.is_file(), path
    assert path.stat().st_size < 3_000_000, f"{path.name}: {path.stat().st_size} bytes"
    licence = (path.parent / "OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in licence
    names = TTFont(path)["name"]
    assert "Open Font License" in names.getDebugName(13), "licence field dropped from the font"
    assert names.getDebugName(16) == plot.CJK_FONT_FAMILY or names.getDebugName(1).startswith(
        plot.CJK_FONT_FAMILY
    )


def test_font_covers_everyday_chinese(cmap):
    sample = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年激活函数梯度训练神经网络"
    missing = [ch for ch in sample if ord(ch) not in cmap]
    assert not missing, f"common characters missing: {''.join(missing)}"
    assert len(cmap) > 3500


def test_font_covers_chapter_code_cells(cmap):
    found = _code_cell_characters()
    missing = {ch: sorted(where) for ch, where in found.items() if ord(ch) not in cmap}
    assert not missing, f"characters in code cells but not in the font: {missing}; {REBUILD}"


def test_font_covers_chapter_text(cmap):
    # The site serves the same subset as its CJK web font: a character the
    # subset lacks shows as a blank on a machine without a system CJK font.
    found = _code_cell_characters("markdown")
    for ch in CJK.findall((ROOT / "index.md").read_text(encoding="utf-8")):
        found.setdefault(ch, set()).add("index.md")
    missing = {ch: sorted(where) for ch, where in found.items() if ord(ch) not in cmap}
    assert not missing, f"characters in the chapters' text but not in the font: {missing}; {REBUILD}"


def test_font_covers_package_sources(cmap):
    found = _package_characters()
    missing = {ch: sorted(where) for ch, where in found.items() if ord(ch) not in cmap}
    assert not missing, f"characters in dlbook sources but not in the font: {missing}; {REBUILD}"


def test_import_has_no_side_effects():
    code = (
        "import matplotlib as mpl\n"
        "from matplotlib import font_manager\n"
        "before = dict(mpl.rcParams); fonts = len(font_manager.fontManager.ttflist)\n"
        "import dlbook.plot, dlbook.widgets, dlbook.glossary\n"
        "assert dict(mpl.rcParams) == before, 'rcParams changed on import'\n"
        "assert len(font_manager.fontManager.ttflist) == fonts, 'font registered on import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_setup_registers_the_font_once():
    plot.setup()
    n = len(font_manager.fontManager.ttflist)
    plot.setup()
    assert len(font_manager.fontManager.ttflist) == n
    assert matplotlib.rcParams["figure.figsize"] == [7.0, 3.2]
    assert matplotlib.rcParams["savefig.dpi"] == 110
    family = font_manager.fontManager.findfont(
        font_manager.FontProperties(family=plot.CJK_FONT_FAMILY), fallback_to_default=False
    )
    assert Path(family).resolve() == plot.font_path().resolve()


def test_chinese_text_draws_without_missing_glyphs():
    plot.setup()
    text = "激活函数的导数，（梯度）：饱和区 · ReLU −1 α"
    fig, ax = plt.subplots()
    try:
        ax.plot([0, 1], [0, 1], label="修正线性单元 ReLU")
        ax.set_title(text)
        ax.set_xlabel("输入 x")
        ax.legend()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.canvas.draw()
    finally:
        plt.close(fig)
    glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
    assert not glyphs, glyphs


def test_the_check_would_catch_a_missing_font():
    """Without the CJK fallback the same drawing warns: the test above can fail."""
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        fig, ax = plt.subplots()
        try:
            ax.set_title("激活函数")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fig.canvas.draw()
        finally:
            plt.close(fig)
    assert any("Glyph" in str(w.message) for w in caught)


def test_glossary_terms_draw_too(cmap):
    missing = {
        ch for row in glossary.load() for ch in CJK.findall(row["zh"]) if ord(ch) not in cmap
    }
    assert not missing, f"glossary characters missing from the font: {''.join(sorted(missing))}"


# ---------------------------------------------------------------- bilingual outputs
def test_bilingual_html_has_both_languages(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "both")  # as in the book build
    out = plot.bilingual("3 dead units", "3 个死亡单元")
    html = out._repr_html_()
    assert html.startswith('<div class="dl-en"')
    assert '<div class="dl-zh" lang="zh-CN">' in html
    assert html.index("3 dead units") < html.index("3 个死亡单元")
    assert repr(out) == "3 dead units\n3 个死亡单元"


def test_bilingual_shows_one_language_in_a_notebook(monkeypatch):
    out = plot.bilingual("3 dead units", "3 个死亡单元")
    assert out._repr_html_() == '<pre class="dl-text">3 dead units</pre>'
    monkeypatch.setenv("DLBOOK_LANG", "zh")  # a kernel started in chapters/zh
    assert out._repr_html_() == '<pre class="dl-text">3 个死亡单元</pre>'
    assert repr(out) == "3 dead units\n3 个死亡单元"  # a terminal prints both


def test_bilingual_escapes_text_and_keeps_html(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "both")
    text = plot.bilingual("a < b & c", "甲 < 乙")._repr_html_()
    assert "a &lt; b &amp; c" in text and "<pre" in text
    en, zh = "<table><tr><td>1</td></tr></table>", "<table><tr><td>一</td></tr></table>"
    assert zh in plot.bilingual(en, zh)._repr_html_()
    forced = plot.bilingual("<b>x</b>", "<b>y</b>", html=False)._repr_html_()
    assert "&lt;b&gt;" in forced


def test_bilingual_rejects_non_strings():
    with pytest.raises(TypeError, match="en must be str"):
        plot.bilingual(3, "三")


# ---------------------------------------------------------------- chapter 1 helpers
def test_properties_table_is_bilingual_with_maths(monkeypatch):
    from dlbook import activations

    monkeypatch.setenv("DLBOOK_LANG", "both")
    rows = activations.properties_table()
    html = plot.properties_table(rows)._repr_html_()
    zh = html[html.index('<div class="dl-zh"') :]
    assert "苏剑林" in zh and "Su Jianlin" not in zh and "Su Jianlin" in html
    assert html.count("<tr>") == 2 * (len(rows) + 1)
    assert "<th>Monotonic</th>" in html and "<th>单调</th>" in html
    # maths: the range in both languages, plus a name that is a formula (xexp)
    formula_names = sum("{" in row["title"] for row in rows)
    assert formula_names == 1
    assert html.count('<span class="math notranslate nohighlight">\\(') == 2 * (len(rows) + formula_names)
    with pytest.raises(ValueError, match="lacks"):
        plot.properties_table([{"title": "x"}])


def test_activation_grid_draws_every_function():
    plot.setup()
    fig = plot.activation_grid(["relu", "elu", "swish"], swish={"beta": 2.0})
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 3
        assert visible[2].get_title() == "Swish, beta=2"
        assert len(visible[0].lines) == 4  # two axis lines, f and f'
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="not drawn"):
        plot.activation_grid(["relu"], elu={"alpha": 1.0})
    with pytest.raises(ValueError, match="unknown activation"):
        plot.activation_grid(["nope"])


def test_activation_explorer_static():
    import numpy as np

    plot.setup()
    out = plot.activation_explorer(
        {"elu": ("alpha", np.linspace(0.5, 2, 3)), "swish": ("beta", [0.5, 1.0, 4.0])},
        static=True,
    )
    assert out.n_frames == 6 and len(set(out.frames)) == 6
    with pytest.raises(ValueError, match="same number of values"):
        plot.activation_explorer({"elu": ("alpha", [1, 2]), "swish": ("beta", [1, 2, 3])})
    with pytest.raises(ValueError, match="no parameter"):
        plot.activation_explorer({"elu": ("beta", [1, 2])})


def test_measured_properties_agree_with_the_registry():
    """properties_at measures what dlbook.activations states, for every function."""
    import math

    from dlbook import activations

    checked = 0
    for row in activations.properties_table():
        spec = activations.get(row["name"])
        if spec.fn is None:
            continue
        found = {en for en, _ in plot.properties_at(spec)}
        stated = {
            "monotonic": row["monotonic"],
            "smooth": row["smooth"],
            "zero-centred": row["zero_centred"],
            "≈ identity at 0": row["identity_near_0"],
            "bounded below": math.isfinite(spec.properties.range[0]),
            "saturates as x→−∞": row["saturating"] in ("left", "both"),
        }
        wrong = {k: v for k, v in stated.items() if v != (k in found)}
        assert not wrong, f"{row['name']}: registry and measurement disagree on {wrong}"
        checked += 1
    assert checked >= 15


def test_properties_depend_on_the_parameter():
    def names(name, **params):
        return {en for en, _ in plot.properties_at(name, **params)}

    assert "smooth" in names("elu", alpha=1.0) and "smooth" not in names("elu", alpha=0.5)
    assert "monotonic" in names("swish", beta=0.0) and "monotonic" not in names("swish", beta=1.0)
    assert "bounded below" in names("leaky_relu", negative_slope=0.0)
    assert "bounded below" not in names("leaky_relu", negative_slope=0.1)


def test_saturation_column_names_the_side():
    from dlbook import activations

    html = plot.properties_table(activations.properties_table(["relu", "sigmoid", "leaky_relu"]))
    en, zh = html.en, html.zh
    assert "x→−∞" in en and "both" in en and "两侧" in zh
