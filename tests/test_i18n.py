"""dlbook.i18n: figures in the reader's language, and the table behind them."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from fontTools.ttLib import TTFont  # noqa: E402

from dlbook import glossary, i18n, plot, widgets  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def fig():
    plot.setup()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="training loss")
    ax.plot([0, 1], [1, 0], label="seed 2")
    ax.set_xlabel("epoch")
    ax.set_title("ReLU")
    ax.legend()
    yield fig
    plt.close(fig)


# ---------------------------------------------------------------- language
def test_language_follows_the_environment_and_the_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DLBOOK_LANG")
    (tmp_path / "zh").mkdir()
    (tmp_path / "en").mkdir()
    monkeypatch.chdir(tmp_path / "zh")  # a kernel started next to a Chinese chapter
    assert i18n.language() == "zh"
    monkeypatch.chdir(tmp_path / "en")
    assert i18n.language() == "en"
    monkeypatch.setenv("DLBOOK_STATIC", "1")  # the book build
    assert i18n.language() == "both"
    monkeypatch.setenv("DLBOOK_LANG", "zh")  # the override wins
    assert i18n.language() == "zh"


def test_language_rejects_an_unknown_override(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "fr")
    with pytest.raises(ValueError, match="DLBOOK_LANG must be one of"):
        i18n.language()


# ---------------------------------------------------------------- translate
def test_translate_whole_templated_and_multiline():
    assert i18n.translate("training loss") == "训练损失"
    assert i18n.translate("seed 12") == "种子 12"
    assert i18n.translate("seed -0.5") == "种子 -0.5"
    assert i18n.translate("training loss\nseed 3") == "训练损失\n种子 3"
    assert i18n.translate("training loss, seed 3") == "训练损失，种子 3"  # part by part
    # mathtext has no Chinese glyphs: next to Chinese, maths becomes plain text
    assert i18n.translate("training loss, $\\alpha = 1$") == "训练损失，α = 1"
    assert i18n.plain_maths(r"$\eta=0.3$, $L_{60}$, $\|\partial L/\partial W\|$") == (
        "η=0.3, L_60, ‖∂L/∂W‖"
    )


def test_texts_without_english_words_stay():
    for text in ("ReLU", "$f(x)$", "0.25", "$\\sigma(x)$, $x > 0$", "MLP", "x", "3 个", ""):
        assert i18n.translate(text) == text


def test_names_kept_by_the_table_are_not_words():
    kept = [row["en"] for row in i18n.table() if row["en"] == row["zh"] and " " not in row["en"]]
    assert kept, "the table keeps no names"
    assert not i18n.needs_translation(f"{kept[0]}, $\\eta = 0.1$")


def test_missing_translation_is_a_clear_error():
    with pytest.raises(i18n.MissingTranslation, match="figures_zh.tsv.*numbers as"):
        i18n.translate("a label nobody wrote")
    assert i18n.translate("a label nobody wrote", strict=False) is None
    with pytest.raises(TypeError, match="str"):
        i18n.translate(3)


# ---------------------------------------------------------------- the table
def test_table_rows_are_well_formed():
    rows = i18n.table()
    kept = {row["zh"] for row in glossary.load()}
    assert len(rows) > 100
    english = [row["en"] for row in rows]
    assert len(english) == len(set(english))
    for row in rows:
        en, zh = row["en"], row["zh"]
        assert en.count("{n}") == zh.count("{n}"), row
        if CJK.search(zh):  # mathtext has no Chinese glyphs: never both in one text
            assert "$" not in zh, f"{en!r}: Chinese and $…$ in one figure text"
        else:  # no Chinese: the same text, or a name the glossary keeps in English
            assert en == zh or zh in kept or not i18n.needs_translation(zh), (
                f"{en!r} -> {zh!r} is still English"
            )
        assert zh == zh.strip() and en == en.strip(), row


def test_table_uses_the_glossary_terms():
    """A figure says what the prose says: a glossary term in a label keeps its rendering.

    A match inside a longer term of the glossary counts as that term ("norm" in
    "Post-Norm", "cell" in "cell state").
    """
    terms = {}
    for row in glossary.load():
        en = re.sub(r"\s*\([^)]*\)", "", row["en"]).strip().casefold()
        if len(en) > 3:
            terms[en] = row["zh"] if CJK.search(row["zh"]) else None  # None: kept in English
    checked, wrong = 0, []
    for row in i18n.table():
        label = row["en"].casefold()
        spans = [(m.start(), m.end(), en) for en in terms
                 for m in re.finditer(rf"\b{re.escape(en)}\b", label)]
        for start, end, en in spans:
            if terms[en] is None or any(a <= start and end <= b and (b - a) > (end - start)
                                        for a, b, _ in spans):
                continue
            checked += 1
            if terms[en] not in row["zh"]:
                wrong.append((row["en"], row["zh"], f"{en} = {terms[en]}"))
    assert checked > 20
    assert not wrong, wrong


def test_font_has_every_character_of_the_table():
    cmap = TTFont(plot.font_path()).getBestCmap()
    missing = {ch for row in i18n.table() for ch in CJK.findall(row["zh"]) if ord(ch) not in cmap}
    assert not missing, f"figure texts use characters the font lacks: {''.join(sorted(missing))}"


# ---------------------------------------------------------------- figures
def test_in_language_swaps_and_restores_every_text(fig):
    ax = fig.axes[0]
    ax.set_xticks([0, 1], labels=["plain", "residual"])
    with i18n.in_language(fig, "zh"):
        fig.canvas.draw()
        assert ax.get_xlabel() == "轮"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["训练损失", "种子 2"]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["简单网络", "残差网络"]
        assert ax.get_title() == "ReLU"
    fig.canvas.draw()
    assert ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training loss", "seed 2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["plain", "residual"]


def test_in_language_translates_categorical_axes(fig):
    ax = fig.axes[0]
    ax.bar(["plain", "residual"], [1, 2])
    with i18n.in_language(fig, "zh"):
        fig.canvas.draw()
        shown = [t.get_text() for t in ax.get_xticklabels()]
    assert shown == ["简单网络", "残差网络"]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["plain", "residual"]


def test_in_language_collects_missing_texts(fig):
    fig.axes[0].set_ylabel("a label nobody wrote")
    missing = set()
    with i18n.in_language(fig, "zh", missing):
        assert fig.axes[0].get_ylabel() == "a label nobody wrote"
    assert missing == {"a label nobody wrote"}
    with pytest.raises(ValueError, match="'en' or 'zh'"):
        with i18n.in_language(fig, "both"):
            pass


def test_figure_html_holds_two_different_images(fig):
    html = i18n.figure_html(fig)
    images = re.findall(
        r'<img class="dl-(en|zh)" lang="[^"]+" alt="" src="data:image/png;base64,([^"]+)"', html
    )
    assert [lang for lang, _ in images] == ["en", "zh"]
    assert images[0][1] != images[1][1], "the Chinese image is the English one"
    assert "data-dl-missing" not in html
    fig.axes[0].set_ylabel("a label nobody wrote")
    assert 'data-dl-missing="a label nobody wrote"' in i18n.figure_html(fig)


def test_book_images_are_palette_pngs_that_look_the_same(fig):
    import base64
    import io

    from PIL import Image

    fig.axes[0].imshow(np.linspace(0, 1, 400).reshape(20, 20), cmap="viridis")  # a colour map too
    full = i18n._png(fig)
    data = re.search(r'class="dl-en"[^>]*base64,([^"]+)"', i18n.figure_html(fig)).group(1)
    small = base64.b64decode(data)
    assert len(small) < 0.7 * len(full), (len(small), len(full))
    image = Image.open(io.BytesIO(small))
    assert image.mode == "P"
    a = np.asarray(Image.open(io.BytesIO(full)).convert("RGB"), dtype=int)
    b = np.asarray(image.convert("RGB"), dtype=int)
    assert a.shape == b.shape
    # each pixel's colour within a few levels on average, none far off
    assert np.abs(a - b).mean() < 2.0 and np.quantile(np.abs(a - b), 0.999) < 40


def test_notebook_shows_the_figure_in_its_language(fig, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    assert i18n.register(shell)
    monkeypatch.setenv("DLBOOK_LANG", "both")  # the book build: both images as HTML
    data, _ = shell.display_formatter.format(fig)
    assert 'class="dl-zh"' in data["text/html"] and "image/png" not in data
    monkeypatch.setenv("DLBOOK_LANG", "en")  # a notebook: a PNG, no HTML
    en, _ = shell.display_formatter.format(fig)
    monkeypatch.setenv("DLBOOK_LANG", "zh")
    zh, _ = shell.display_formatter.format(fig)
    assert "text/html" not in en and "text/html" not in zh
    assert en["image/png"] != zh["image/png"]
    assert fig.axes[0].get_xlabel() == "epoch"  # the figure itself is unchanged


# ---------------------------------------------------------------- explorers
def _draw(fig, alpha, kind):
    ax = fig.subplots()
    x = np.linspace(-1, 1, 5)
    ax.plot(x, alpha * x, label=kind)
    ax.set_xlabel("epoch")
    ax.legend()


def test_explorer_in_both_languages(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "both")
    out = widgets.explore(
        _draw,
        {"alpha": [1, 2]},
        {"kind": ["plain", "residual"]},
        labels={"kind": "network", "alpha": "α"},
    )
    assert isinstance(out, widgets.BilingualExplorer)
    assert out.en.frames != out.zh.frames and len(out.zh.frames) == 4
    assert out.zh.choices["kind"] == ["简单网络", "残差网络"]
    assert out.zh.labels["kind"] == "网络"
    html = out._repr_html_()
    assert html.index('class="dl-en"') < html.index('class="dl-zh"')
    assert "data-dl-missing" not in html
    monkeypatch.setenv("DLBOOK_LANG", "en")
    single = widgets.explore(_draw, {"alpha": [1, 2]}, {"kind": ["plain", "residual"]})
    assert isinstance(single, widgets.StaticExplorer)
    assert single.frames == out.en.frames


def _draw_numbers(fig, alpha):
    ax = fig.subplots()
    ax.plot([0, 1], [0, alpha])  # no words: the same picture in both languages


def test_bilingual_explorer_writes_shared_frames_once(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "both")
    out = widgets.explore(_draw_numbers, {"alpha": [1, 2, 3]}, labels={"alpha": "α"})
    assert out.en.frames == out.zh.frames
    html = out._repr_html_()
    single = out.en._repr_html_()
    # the Chinese half borrows the English frames: only its first picture is written again
    assert html.count("data:image/png;base64,") == single.count("data:image/png;base64,") + 1
    zh = html[html.index('class="dl-zh"'):]
    assert "var frames=[0,1,2];" in zh and f'window.dlFrames["{out.en.element_id}"]' in html
    # a frame that differs stays in the Chinese half
    out = widgets.explore(_draw, {"alpha": [1, 2]}, {"kind": ["plain", "residual"]})
    zh = out._repr_html_().split('class="dl-zh"')[1]
    assert zh.count("data:image/png;base64,") == 1 + 4


def test_explorer_flags_missing_texts(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "both")
    out = widgets.explore(_draw, {"alpha": [1, 2]}, {"kind": ["a label nobody wrote"]})
    # the option and a control name (no labels given) have no Chinese rows; "kind" has one
    assert out.missing == {"a label nobody wrote", "alpha"}
    assert 'data-dl-missing="a label nobody wrote | alpha"' in out._repr_html_()


def test_first_figure_of_a_notebook_is_bilingual_in_the_book(tmp_path, monkeypatch):
    """matplotlib-inline resets the figure formatters when its backend loads; the
    chapter's first figure must still come out in both languages."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("DLBOOK_STATIC", "1")
    monkeypatch.delenv("DLBOOK_LANG")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nimport dlbook as dl\ndl.plot.setup()"),
        nbformat.v4.new_code_cell("fig, ax = plt.subplots()\nax.set_xlabel('epoch')\nplt.show()"),
    ]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [o for o in nb.cells[1].outputs if o.get("output_type") == "display_data"]
    assert len(shown) == 1
    html = shown[0]["data"].get("text/html", "")
    assert 'class="dl-zh"' in html and 'class="dl-en"' in html, shown[0]["data"].keys()
