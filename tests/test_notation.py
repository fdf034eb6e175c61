"""The notation appendix: every chapter links to it, and what it states holds in the code.

``chapters/*/92_notation.ipynb`` states the book's symbols and the conventions
of ``dlbook``: batch-first shapes, the gate packing of the recurrent layers,
the mask convention of attention, explicit seeds, float64 gradient checks.
The page is prose, so these tests check the code against each statement the
page makes (and that the page still makes it, in both languages), and that
every chapter links to the page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import dlbook as dl

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
HTML = ROOT / "_build" / "html"
LANGS = ("en", "zh")
PAGE = "92_notation"
# A Markdown link to the notebook: a link in the book and in JupyterLab alike
# (a {doc} role is a dead link in JupyterLab).
LINK = re.compile(r"\[[^\]]+\]\(92_notation\.ipynb\)")


def _chapters() -> list[str]:
    """The numbered chapters 00-89 (the appendices are 90 and up)."""
    names = sorted(p.stem for p in (CHAPTERS / "en").glob("*.ipynb") if int(p.stem[:2]) < 90)
    assert names, "no chapters found"
    return names


def _markdown(lang: str, name: str) -> list[str]:
    cells = json.loads((CHAPTERS / lang / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) if c["cell_type"] == "markdown" else "" for c in cells]


def _page(lang: str) -> str:
    return "\n".join(_markdown(lang, PAGE))


# ---------------------------------------------------------------- the links
def test_there_are_ten_chapters():
    assert [n[:2] for n in _chapters()][:10] == [f"{i:02d}" for i in range(10)]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", _chapters())
def test_every_chapter_links_to_the_notation_page(name, lang):
    cells = _markdown(lang, name)
    where = [i for i, text in enumerate(cells) if LINK.search(text)]
    assert where, f"{lang}/{name} has no [...](92_notation.ipynb) link"
    # early: in the opening cell, or (the preface) in its section on notation
    first = where[0]
    assert first == 0 or re.match(r"##\s+(Conventions and notation|约定与记号)", cells[first]), (
        f"{lang}/{name}: the first link to the notation page is in cell {first}, not near the start"
    )


def test_link_pattern_sees_both_forms():
    assert LINK.search("see [Notation and conventions](92_notation.ipynb).")
    assert not LINK.search("see {doc}`92_notation`.")
    assert not LINK.search("see [Glossary](90_glossary.ipynb).")


@pytest.mark.book
@pytest.mark.parametrize("lang", LANGS)
def test_every_built_chapter_links_to_the_notation_page(lang):
    if not (HTML / "index.html").is_file():
        pytest.skip("no built book: _build/html/index.html is missing (run `make book-strict`)")
    target = HTML / "chapters" / lang / f"{PAGE}.html"
    assert target.is_file(), f"{target.relative_to(ROOT)} was not built"
    built = [n for n in _chapters() if (HTML / "chapters" / lang / f"{n}.html").is_file()]
    assert built, "no chapter was built"
    for name in built:
        path = HTML / "chapters" / lang / f"{name}.html"
        text = path.read_text(encoding="utf-8")
        # the text of the page, not the sidebar's table of contents
        article = text[text.index('<article class="bd-article"') : text.index("</article>")]
        doc_link = r'<a class="reference internal" href="([^"#]*92_notation\.html)[^"]*"'
        hrefs = re.findall(doc_link, article)
        assert hrefs, f"{path.relative_to(HTML)}: no link to {PAGE}.html in the text"
        assert all((path.parent / h).resolve() == target.resolve() for h in hrefs), (name, hrefs)


# ---------------------------------------------------------------- what the page states
# Each statement of the page, as it appears in each language, with the test below that checks it.
STATEMENTS = {
    "batch first": (r"\(N, D\)", r"\(N, C, H, W\)", r"\(N, T, D\)"),
    "LSTM gates": (r"\$i, f, g, o\$", r"\(D, 4H\)", r"`\[H:2H\]`"),
    "GRU gates": (r"\$r, z, n\$", r"\(D, 3H\)"),
    "masks": (
        r"True",
        r"\(N, 1, S\)",
        r"\(1, T, T\)",
        r"causal_mask\(T\)\[None\]",
        r"src_mask\[:, None, :\]",
    ),
    "seeds": (r"`rng=None`", r"ValueError"),
    "float64": (r"float64", r"TypeError"),
    "tokens": (r"`PAD = 0`", r"`BOS = 1`", r"`EOS = 2`", r"`UNK = 3`"),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("topic", sorted(STATEMENTS))
def test_the_page_states_the_conventions(topic, lang):
    text = _page(lang)
    missing = [s for s in STATEMENTS[topic] if not re.search(s, text)]
    assert not missing, f"{lang}/{PAGE}: {topic}: {missing} not on the page"


def test_batch_first_shapes():
    layer = dl.layers.Linear(3, 5, rng=0)
    assert layer.params["W"].shape == (3, 5) and layer.params["b"].shape == (5,)
    assert layer(np.ones((4, 3))).shape == (4, 5)
    assert layer(np.ones((4, 7, 3))).shape == (4, 7, 5)  # (N, T, D) in one call
    conv = dl.conv.Conv2d(2, 6, 3, padding=1, rng=0)
    assert conv.params["W"].shape == (6, 2, 3, 3)  # (C_out, C_in, K, K)
    assert conv(np.ones((4, 2, 8, 8))).shape == (4, 6, 8, 8)  # (N, C, H, W)
    hs, h_T = dl.recurrent.RNN(3, 5, rng=0)(np.ones((4, 7, 3)))
    assert hs.shape == (4, 7, 5) and h_T.shape == (4, 5)
    np.testing.assert_array_equal(hs[:, -1], h_T)


def _sig(a):
    return 1 / (1 + np.exp(-a))


def test_lstm_packs_its_gates_i_f_g_o():
    D, H, N = 3, 4, 5
    gen = np.random.default_rng(0)
    cell = dl.recurrent.LSTMCell(D, H, rng=0)
    Wx, Wh, b = cell.params["W_x"], cell.params["W_h"], cell.params["b"]
    assert Wx.shape == (D, 4 * H) and Wh.shape == (H, 4 * H) and b.shape == (4 * H,)
    # the forget gate's bias starts at 1: it is the second block
    np.testing.assert_array_equal(b, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])
    b[:] = gen.standard_normal(4 * H)
    x, h, c = gen.standard_normal((N, D)), gen.standard_normal((N, H)), gen.standard_normal((N, H))
    a = x @ Wx + h @ Wh + b
    i, f, g, o = _sig(a[:, :H]), _sig(a[:, H : 2 * H]), np.tanh(a[:, 2 * H : 3 * H]), _sig(a[:, 3 * H :])
    c_next = f * c + i * g
    h_next, c_out = cell(x, (h, c))
    np.testing.assert_allclose(c_out, c_next, rtol=1e-12)
    np.testing.assert_allclose(h_next, o * np.tanh(c_next), rtol=1e-12)


def test_gru_packs_its_gates_r_z_n_with_two_biases():
    D, H, N = 3, 4, 5
    gen = np.random.default_rng(1)
    cell = dl.recurrent.GRUCell(D, H, rng=0)
    assert set(cell.params) == {"W_x", "W_h", "b_x", "b_h"}
    for key in ("b_x", "b_h"):
        assert cell.params[key].shape == (3 * H,)
        cell.params[key][:] = gen.standard_normal(3 * H)
    Wx, Wh, bx, bh = (cell.params[k] for k in ("W_x", "W_h", "b_x", "b_h"))
    x, h = gen.standard_normal((N, D)), gen.standard_normal((N, H))
    ax, ah = x @ Wx + bx, h @ Wh + bh
    r = _sig(ax[:, :H] + ah[:, :H])
    z = _sig(ax[:, H : 2 * H] + ah[:, H : 2 * H])
    n = np.tanh(ax[:, 2 * H :] + r * ah[:, 2 * H :])
    np.testing.assert_allclose(cell(x, h), (1 - z) * n + z * h, rtol=1e-12)


def test_masks_true_means_attend():
    scores = np.zeros((1, 2, 3))
    mask = np.array([[True, True, False], [False, False, False]])
    p = dl.numerics.masked_softmax(scores, mask)
    np.testing.assert_array_equal(p, [[[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]])  # a fully masked row: zeros
    causal = dl.transformer.causal_mask(3)
    assert causal.dtype == bool and causal[2, 0] and not causal[0, 2]  # j <= i


def test_the_transformer_uses_key_padding_n_1_s_and_causal_1_t_t(monkeypatch):
    N, S, T = 2, 5, 4
    seen = []
    forward = dl.attention.DotProductAttention.forward

    def spy(self, q, k, v, mask=None):
        seen.append(None if mask is None else (mask.shape, mask.dtype))
        return forward(self, q, k, v, mask=mask)

    monkeypatch.setattr(dl.attention.DotProductAttention, "forward", spy)
    model = dl.transformer.Transformer(9, 9, d_model=8, heads=2, d_ff=16, layers=1, rng=0)
    src = np.full((N, S), 5)
    src_mask = np.ones((N, S), dtype=bool)
    src_mask[1, 3:] = False
    model(src, src_mask, np.full((N, T), 5))
    assert set(seen) == {((N, 1, S), np.dtype(bool)), ((1, T, T), np.dtype(bool))}, seen


def test_an_ambiguous_2d_mask_is_refused():
    attn = dl.attention.DotProductAttention()
    q = np.zeros((3, 3, 2))  # N == Tq == 3
    with pytest.raises(ValueError):
        attn(q, q, q, mask=np.ones((3, 3), dtype=bool))


def test_seeds_are_explicit():
    with pytest.raises(ValueError, match="seed"):
        dl.layers.Linear(2, 2, rng=None)
    a, b = dl.layers.Linear(2, 2, rng=3), dl.layers.Linear(2, 2, rng=3)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])


def test_gradcheck_runs_in_float64_only():
    layer = dl.layers.Linear(2, 2, rng=0, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        dl.gradcheck(layer, np.ones((2, 2), np.float32))
    assert max(dl.gradcheck(dl.layers.Linear(2, 2, rng=0), np.ones((2, 2))).values()) < 1e-6


def test_special_tokens():
    assert (dl.seq2seq.PAD, dl.seq2seq.BOS, dl.seq2seq.EOS, dl.seq2seq.UNK) == (0, 1, 2, 3)
