"""One bibliography and the glossary's defining chapters.

* ``references.bib`` is the book's one bibliography: every key a chapter cites
  (both languages) is in it, and every entry is cited by a chapter or listed as
  further reading in ``_ext/dlbook_references.py`` (``FURTHER_READING``).
* The references pages (``chapters/<lang>/94_references``) list every entry, and
  under each the chapters *of the page's language* that cite it; in the built
  site every such link resolves, to the place of the first citation.
* The glossary page shows, for each term, the chapter that introduces it
  (:func:`dlbook.glossary.defined_in`: the first chapter in reading order whose
  markdown uses the term), linked to the chapter in the page's language.

The tests marked ``book`` read ``_build/html`` (``make book-strict``) and skip
without it; the browser test needs Chromium, like ``tests/test_site.py``.
"""

from __future__ import annotations

import importlib.util
import json
import re
from html import unescape
from pathlib import Path

import pytest
from pybtex.database import parse_file

from dlbook import glossary

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
HTML = ROOT / "_build" / "html"
LANGS = ("en", "zh")
CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")


def _extension():
    """The references extension, loaded from its file (it is not a package module)."""
    spec = importlib.util.spec_from_file_location("dlbook_references", ROOT / "_ext" / "dlbook_references.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def cited_keys(text: str) -> list[str]:
    """The keys of every ``{cite}``/``{cite:p}``/``{cite:t}`` role in a markdown text."""
    return [key.strip() for keys in CITE.findall(text) for key in keys.split(",") if key.strip()]


def _citations() -> dict[str, dict[str, set[str]]]:
    """``{lang: {key: {chapter page name, ...}}}`` from the committed notebooks."""
    found: dict[str, dict[str, set[str]]] = {lang: {} for lang in LANGS}
    for lang in LANGS:
        for path in sorted((CHAPTERS / lang).glob("*.ipynb")):
            for key in cited_keys(_markdown(path)):
                found[lang].setdefault(key, set()).add(path.stem)
    return found


@pytest.fixture(scope="module")
def bib_keys() -> set[str]:
    return set(parse_file(str(ROOT / "references.bib")).entries.keys())


# ---------------------------------------------------------------- the bibliography
def test_cited_keys_sees_every_form():
    text = "as {cite}`a2010` and {cite:p}`b2011, c2012` show; {cite:t}`d2013` said; `{cite}` alone"
    assert cited_keys(text) == ["a2010", "b2011", "c2012", "d2013"]


def test_the_chapters_cite():
    found = _citations()
    assert len(found["en"]) >= 90 and len(found["zh"]) >= 90


def test_every_cited_key_is_in_the_bibliography(bib_keys):
    missing = {
        (lang, key, page)
        for lang, by_key in _citations().items()
        for key, pages in by_key.items()
        for page in pages
        if key not in bib_keys
    }
    assert not missing, f"cited but not in references.bib: {sorted(missing)}"


def test_every_entry_is_cited_or_listed_as_further_reading(bib_keys):
    """An entry no chapter cites is listed, with its chapter, in FURTHER_READING; nothing else is."""
    further = _extension().FURTHER_READING
    cited = set(_citations()["en"]) | set(_citations()["zh"])
    assert bib_keys - cited == set(further), (
        "uncited entries of references.bib must be exactly FURTHER_READING in _ext/dlbook_references.py"
    )
    for key, (name, en, zh) in further.items():
        assert all((CHAPTERS / lang / f"{name}.ipynb").is_file() for lang in LANGS), key
        assert en and zh


def test_twins_cite_the_same_works():
    found = _citations()
    assert found["en"] == found["zh"]


def test_citing_chapters_orders_and_filters():
    ext = _extension()

    class Target:
        def __init__(self, key):
            self.key = key

    class Ref:
        def __init__(self, docname, ref_id, *keys):
            self.docname, self.citation_ref_id, self.targets = docname, ref_id, [Target(k) for k in keys]

    refs = [
        Ref("chapters/en/03_training", "id3", "a"),
        Ref("chapters/en/01_activations", "id1", "a", "b"),
        Ref("chapters/en/01_activations", "id2", "a"),  # a second citation: the first one is kept
        Ref("chapters/zh/01_activations", "id9", "a"),
        Ref("index", "id5", "a"),  # not a chapter
        Ref("chapters/en/94_references", "id6", "c"),  # the references page itself
    ]
    assert ext.citing_chapters(refs) == {
        "a": [("chapters/en/01_activations", "id1"), ("chapters/en/03_training", "id3"),
              ("chapters/zh/01_activations", "id9")],
        "b": [("chapters/en/01_activations", "id1")],
    }
    assert ext.chapter_number("chapters/zh/09_transformer") == 9


# ---------------------------------------------------------------- the glossary's chapter column
@pytest.fixture(scope="module")
def defined():
    return glossary.defined_in(CHAPTERS)


@pytest.mark.parametrize(
    ("term", "page"),
    [
        ("activation function", "01_activations"),
        ("rectified linear unit (ReLU)", "01_activations"),
        ("linear region", "02_relu_approximation"),
        ("batch size", "03_training"),
        ("receptive field", "04_cnn"),
        ("residual block", "05_resnet"),
        ("recurrent neural network (RNN)", "06_recurrent"),  # en; zh 循环神经网络 appears in chapter 3
        ("long short-term memory (LSTM)", "06_recurrent"),
        ("gated recurrent unit (GRU)", "06_recurrent"),
        ("backpropagation through time (BPTT)", "06_recurrent"),
        ("Elman network", "06_recurrent"),
        ("teacher forcing", "07_seq2seq"),
        ("beam search", "07_seq2seq"),
        ("additive attention", "08_attention"),
        ("multi-head attention", "09_transformer"),
        ("positional encoding", "09_transformer"),
        ("key–value cache (KV cache)", "09_transformer"),
        ("label smoothing", "09_transformer"),
        ("perplexity", "09_transformer"),
    ],
)
def test_defined_in_english(defined, term, page):
    assert defined[term]["en"] == page


@pytest.mark.parametrize(
    ("term", "page"),
    [
        ("activation function", "01_activations"),
        ("long short-term memory (LSTM)", "06_recurrent"),
        ("truncated BPTT", "06_recurrent"),
        ("teacher forcing", "07_seq2seq"),
        ("greedy decoding", "07_seq2seq"),
        ("source / target language", "08_attention"),  # 源语言/目标语言: either half counts
        ("multi-head attention", "09_transformer"),
        ("key–value cache (KV cache)", "09_transformer"),
        ("decoder block", "09_transformer"),
    ],
)
def test_defined_in_chinese(defined, term, page):
    assert defined[term]["zh"] == page


def test_defined_in_covers_every_term(defined):
    assert list(defined) == [row["en"] for row in glossary.load()]
    assert all(set(v) == {"en", "zh"} for v in defined.values())
    assert defined["capsule network (CapsNet)"] == {"en": None, "zh": None}  # no chapter uses it
    # most terms are used by some chapter in each language
    assert sum(v["en"] is not None for v in defined.values()) > 200
    assert sum(v["zh"] is not None for v in defined.values()) > 230


# Key terms of chapters 6-9: in the glossary, and used by the Chinese chapters in that rendering.
TERMS_6_TO_9 = [
    "recurrent neural network (RNN)", "long short-term memory (LSTM)", "gated recurrent unit (GRU)",
    "backpropagation through time (BPTT)", "truncated BPTT", "hidden state", "forget gate", "Elman network",
    "bidirectional (recurrent layer)", "gradient clipping",
    "sequence to sequence (seq2seq)", "encoder–decoder architecture", "teacher forcing", "exposure bias",
    "beam search", "greedy decoding", "BLEU", "attention mechanism", "additive attention",
    "scaled dot-product attention", "causal mask", "self-attention", "multi-head attention",
    "positional encoding", "key–value cache (KV cache)", "label smoothing", "warm-up",
    "decoder block", "encoder block", "perplexity", "Transformer",
]


@pytest.mark.parametrize("term", TERMS_6_TO_9)
def test_chapters_6_to_9_terms_are_in_the_glossary(term):
    assert glossary.zh_of(term)


@pytest.mark.parametrize(
    "term",
    ["Elman network", "bidirectional (recurrent layer)", "greedy decoding", "decoder block", "perplexity"],
)
def test_added_terms_use_the_chapters_rendering(defined, term):
    """The rows added for chapters 6-9 use the rendering the Chinese chapters use."""
    assert defined[term]["zh"] is not None and "06" <= defined[term]["zh"][:2] <= "09"


def _notebook(path: Path, *markdown: str) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": text} for text in markdown]
    cells.append({"cell_type": "code", "metadata": {}, "source": "x = 'gating function'", "outputs": []})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_defined_in_reads_prose_in_reading_order(tmp_path):
    en, zh = tmp_path / "en", tmp_path / "zh"
    _notebook(en / "00_preface.ipynb", "Self-attention and ReLU are coming.")  # the preface does not count
    _notebook(
        en / "01_a.ipynb",
        "# A\n\nReLU6 caps; `ReLU` in code, $\\mathrm{ReLU}$ in maths and {cite}`vaswani2017attention`.",
        "```python\nself-attention\n```\n\n(sec-softmax)=\n## Normalisation of layers",
    )
    _notebook(en / "02_b.ipynb", "The rectified-linear units (ReLU) and sequence-to-sequence models.")
    _notebook(en / "03_c.ipynb", "```{admonition} Self attention\nSelf-attention within a box.\n```")
    _notebook(en / "90_glossary.ipynb", "every term: attention pooling")
    _notebook(zh / "01_a.ipynb", "# 甲\n\n自注意力，$\\mathrm{ReLU}$。")
    _notebook(zh / "03_c.ipynb", "ReLU 网络。")
    found = glossary.defined_in(tmp_path)
    assert found["rectified linear unit (ReLU)"] == {"en": "02_b", "zh": "03_c"}
    assert found["self-attention"] == {"en": "03_c", "zh": "01_a"}  # admonitions are prose, code is not
    assert found["normalization"]["en"] == "01_a"  # -ise or -ize
    assert found["sequence to sequence (seq2seq)"]["en"] == "02_b"  # hyphens or spaces
    assert found["attention pooling"] == {"en": None, "zh": None}  # appendices are not searched
    assert found["gating function"]["en"] is None  # code cells do not count
    assert glossary.chapter_files(tmp_path) == ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]


def test_defined_in_needs_chapters(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        glossary.defined_in(tmp_path)


def test_table_links_each_term_to_its_chapter(monkeypatch, defined):
    monkeypatch.setenv("DLBOOK_LANG", "both")  # as in the book build
    out = glossary.table(chapters=CHAPTERS)
    halves = {"en": out.en, "zh": out.zh}
    for lang, html in halves.items():
        rows = re.findall(r'<tr><td lang="en">(.*?)</td>.*?</tr>', html)
        row = r'<tr><td lang="en">([^<]*)</td>.*?<a href="(\d\d_\w+)\.html"[^>]*>\d+</a>'
        links = {unescape(en): page for en, page in re.findall(row, html)}
        assert len(rows) == len(glossary.load())
        assert links == {en: page for en, by in defined.items() if (page := by[lang])}
        title = "Recurrent networks: RNN, LSTM and GRU" if lang == "en" else "循环神经网络：RNN、LSTM 与 GRU"
        assert f'<a href="06_recurrent.html" title="{title}">6</a>' in html
    assert "<th>Chapter</th>" in out.en and "<th>章</th>" in out.zh
    assert "<th>Chapter</th>" not in glossary.table().en  # without chapters: three columns


# ---------------------------------------------------------------- the built site
def _soup(path: Path):
    bs4 = pytest.importorskip("bs4")
    if not path.is_file():
        pytest.skip(f"no built page {path.relative_to(ROOT)} (run `make book-strict`)")
    return bs4.BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8")))


@pytest.mark.book
@pytest.mark.parametrize("lang", LANGS)
def test_references_page_lists_every_work_with_its_citing_chapters(lang, bib_keys):
    page = HTML / "chapters" / lang / "94_references.html"
    soup = _soup(page)
    entries = soup.select("div.dl-ref-entry")
    keys = [next(c[len("dl-ref-"):] for c in e["class"] if c.startswith("dl-ref-") and c != "dl-ref-entry")
            for e in entries]
    assert sorted(keys) == sorted(bib_keys), "the references page lists every work of references.bib once"
    cited = _citations()[lang]
    further = _extension().FURTHER_READING
    for key, entry in zip(keys, entries, strict=True):
        links = entry.select("p.dl-cited-by a.dl-cited-in")
        pages = [a["href"].split("#")[0].removesuffix(".html") for a in links]
        if key in further:
            assert pages == [further[key][0]], key
            continue
        assert pages == sorted(cited[key]), f"{key}: links {pages}, chapters citing it {sorted(cited[key])}"
        for a in links:
            target, _, anchor = a["href"].partition("#")
            assert "/" not in target, "a back-link leaves the page's language"
            assert (page.parent / target).is_file(), a["href"]
            assert anchor and anchor in _ids(page.parent / target), f"{key}: no anchor {a['href']}"


@pytest.mark.book
@pytest.mark.parametrize("lang", LANGS)
def test_back_links_lead_to_the_citation(lang):
    """The anchor a back-link names sits right before a citation of that work in the chapter."""
    page = HTML / "chapters" / lang / "94_references.html"
    soup = _soup(page)
    checked = 0
    for entry in soup.select("div.dl-ref-entry"):
        for a in entry.select("a.dl-cited-in[href*='#']"):
            target, _, anchor = a["href"].partition("#")
            chapter = _soup(page.parent / target)
            span = chapter.find(id=anchor)
            cite = span.find_next_sibling(class_="bibtex-citation") if span else None
            assert cite is not None, f"{a['href']}: no citation after the anchor"
            local = cite.find("a")["href"]
            assert local.startswith("#"), "a chapter's citation links to its own reference list"
            assert chapter.find(id=local[1:]) is not None
            checked += 1
    assert checked >= 100


@pytest.mark.book
@pytest.mark.parametrize("lang", LANGS)
def test_glossary_links_to_the_defining_chapters(lang, defined):
    page = HTML / "chapters" / lang / "90_glossary.html"
    soup = _soup(page)
    half = soup.select_one(f"div.dl-{lang} table.dl-glossary")
    assert half is not None, "the glossary table of the page's language"
    links = {}
    for row in half.select("tbody tr"):
        a = row.select_one("td.dl-glossary-chapter a")
        if a is not None:
            assert (page.parent / a["href"]).is_file(), a["href"]
            assert a.get_text() == str(int(a["href"][:2]))
            links[row.td.get_text()] = a["href"].removesuffix(".html")
    assert links == {en: by[lang] for en, by in defined.items() if by[lang]}


@pytest.mark.book
@pytest.mark.parametrize("lang", LANGS)
def test_references_page_in_the_browser(offline_context, server, lang):
    """In Chromium: the back-link of a work leads to the citation in the chapter of the same language."""
    pg = offline_context().new_page()
    pg.set_default_timeout(15_000)
    pg.goto(server + f"chapters/{lang}/94_references.html")
    entry = pg.locator("div.dl-ref-vaswani2017attention")
    link = entry.locator("a.dl-cited-in").first
    assert link.is_visible()
    expected = "Cited in" if lang == "en" else "引用于"
    assert expected in entry.locator("p.dl-cited-by").inner_text()
    link.click()
    pg.wait_for_load_state()
    assert f"/chapters/{lang}/" in pg.url and "#" in pg.url
    anchor = pg.url.split("#")[1]
    assert pg.locator(f"[id='{anchor}'] + .bibtex-citation").count() == 1
    assert pg.evaluate("document.documentElement.lang") == ("en" if lang == "en" else "zh-CN")
