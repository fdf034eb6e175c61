"""The errata appendix: its data file against the chapters, the tests and the built book.

``dlbook/resources/errata.toml`` lists every claim of the source material that
the book corrects. These tests check that each entry points at a correction
box that exists in both twins of its chapter (with the code cell that
demonstrates it right after), that every test it names is collected by
pytest, that no correction box of a chapter is missing from the file, and, on
the built book, that every link of the errata page resolves to its section.
The last section holds the package-level checks of the corrections that no
other test file covered.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import autocorrect_py
import numpy as np
import pytest

import dlbook as dl
from dlbook import errata

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
HTML = ROOT / "_build" / "html"
LANGS = ("en", "zh")
ENTRIES = errata.load()
IDS = [e["id"] for e in ENTRIES]

# The heading of a correction box in each language: :::{admonition} Correction: ...
BOX = {"en": "Correction:", "zh": "更正："}
BOX_RE = re.compile(r"^:::+\{admonition\}\s*(Correction:|更正：)", re.M)


def _cells(lang: str, chapter: str) -> list[dict]:
    path = CHAPTERS / lang / f"{chapter}.ipynb"
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _labelled(cells: list[dict], label: str) -> list[int]:
    pattern = re.compile(rf"^\({re.escape(label)}\)=\s*$", re.M)
    return [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and pattern.search(_source(c))]


# ---------------------------------------------------------------- the data file
def test_there_are_errata():
    # the six claims of chapter 1 at least (the issue and the outline list them)
    assert len(ENTRIES) >= 6
    assert len(IDS) == len(set(IDS))
    assert len({e["label"] for e in ENTRIES}) == len(ENTRIES), "two errata share a label"


def test_load_returns_a_copy():
    rows = errata.load()
    rows[0]["tests"].append("changed")
    rows[0]["claim_en"] = "changed"
    assert errata.load()[0]["claim_en"] != "changed"
    assert "changed" not in errata.load()[0]["tests"]


_GOOD = """
[[erratum]]
id = "x"
chapter = "01_activations"
label = "correction-x"
title_en = "t"
title_zh = "标题"
claim_en = "c"
claim_zh = "说法"
correct_en = "r"
correct_zh = "正确"
tests = ["tests/test_x.py::test_y"]
cell = "z"
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.replace('cell = "z"\n', ""), "missing \\['cell'\\]"),
        (lambda s: s + 'extra = "e"\n', "unknown \\['extra'\\]"),
        (lambda s: s.replace('claim_en = "c"', 'claim_en = ""'), "claim_en must be a non-empty str"),
        (lambda s: s.replace('tests = ["tests/test_x.py::test_y"]', 'tests = "t"'), "tests must be"),
        (lambda s: s.replace("tests/test_x.py::test_y", "test_y"), "node ids"),
        (lambda s: s.replace('"01_activations"', '"activations"'), "chapter must be"),
        (lambda s: s.replace('"correction-x"', '"Correction X"'), "label must be"),
        (lambda s: s + s, "the id 'x' appears twice"),
        (lambda s: "", "no \\[\\[erratum\\]\\] entries"),
    ],
)
def test_malformed_errata_are_refused(change, message):
    assert errata.parse(_GOOD)[0]["id"] == "x"
    with pytest.raises(ValueError, match=message):
        errata.parse(change(_GOOD))


def test_chinese_of_the_errata_is_clean():
    found = []
    for e in ENTRIES:
        for key in ("title_zh", "claim_zh", "correct_zh"):
            if autocorrect_py.format(e[key]) != e[key]:
                found.append((e["id"], key, autocorrect_py.format(e[key])))
    assert not found, found


def test_no_latex_in_the_errata():
    # the table is HTML-escaped text: $...$ or \\commands would show as they are
    bad = [
        (e["id"], key)
        for e in ENTRIES
        for key, value in e.items()
        if isinstance(value, str) and re.search(r"\$|\\[a-z]", value)
    ]
    assert not bad, bad


# ---------------------------------------------------------------- against the chapters
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_label_is_on_a_correction_box_in_both_twins(entry, lang):
    path = CHAPTERS / lang / f"{entry['chapter']}.ipynb"
    assert path.is_file(), f"{entry['id']}: no chapter {path.relative_to(ROOT)}"
    cells = _cells(lang, entry["chapter"])
    where = _labelled(cells, entry["label"])
    assert len(where) == 1, (
        f"{lang}/{entry['chapter']}: label ({entry['label']})= in cells {where}, expected one"
    )
    i = where[0]
    text = _source(cells[i])
    # the label stands right above the box, which is a warning headed Correction: / 更正：
    after = text.split(f"({entry['label']})=", 1)[1].lstrip("\n")
    assert after.startswith(":::{admonition} " + BOX[lang]), (
        f"{lang}/{entry['chapter']} cell {i}: ({entry['label']})= is not right above a "
        f"'{BOX[lang]}' box: {after[:80]!r}"
    )
    assert re.match(r"[^\n]*\n:class: warning\b", after), (
        f"{lang}/{entry['chapter']} cell {i}: not a warning box"
    )
    # the code cell that demonstrates it is the first code cell after the box
    demo = next((c for c in cells[i + 1 :] if c["cell_type"] == "code"), None)
    assert demo is not None and entry["cell"] in _source(demo), (
        f"{lang}/{entry['chapter']}: the first code cell after ({entry['label']})= does not contain "
        f"{entry['cell']!r}"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_every_correction_box_is_in_the_errata(lang):
    """A correction added to a chapter must get its entry (and a label) in errata.toml."""
    listed = {(e["chapter"], e["label"]) for e in ENTRIES}
    missing = []
    for path in sorted((CHAPTERS / lang).glob("*.ipynb")):
        for i, cell in enumerate(_cells(lang, path.stem)):
            if cell["cell_type"] != "markdown":
                continue
            text = _source(cell)
            for box in BOX_RE.finditer(text):
                label = re.search(r"^\(([\w-]+)\)=\s*\n\Z", text[: box.start()], re.M)
                if not label or (path.stem, label.group(1)) not in listed:
                    missing.append(f"{lang}/{path.name} cell {i}: {text[box.start():box.start() + 70]!r}")
    assert not missing, "correction boxes without a labelled entry in errata.toml:\n" + "\n".join(missing)


def test_the_box_finder_sees_a_box():
    text = "Text.\n\n(correction-x)=\n:::{admonition} Correction: x\n:class: warning\nBody.\n:::"
    box = BOX_RE.search(text)
    assert box and re.search(r"^\(([\w-]+)\)=\s*\n\Z", text[: box.start()], re.M).group(1) == "correction-x"
    assert BOX_RE.search(":::{admonition} 更正：y\n:class: warning\n:::")
    assert not BOX_RE.search(":::{admonition} Solution 1\n:class: dropdown\n:::")


# ---------------------------------------------------------------- against the tests
def _collect(node_ids: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *node_ids],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_listed_test_is_collected():
    node_ids = sorted({t for e in ENTRIES for t in e["tests"]})
    result = _collect(node_ids)
    assert result.returncode == 0, (
        f"pytest could not collect {node_ids}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    )
    collected = result.stdout
    for node in node_ids:
        assert node in collected, f"{node} was not collected:\n{collected[-2000:]}"


def test_collecting_a_missing_test_fails():
    # the check above can fail: a node id that does not exist is an error
    assert _collect(["tests/test_activations.py::test_no_such_test_exists"]).returncode != 0


# ---------------------------------------------------------------- the table
def test_table_is_bilingual_and_links_each_language_to_itself():
    table = errata.table()
    for lang, text in (("en", table.en), ("zh", table.zh)):
        assert text.count('<tr class="dl-erratum" data-erratum=') == len(ENTRIES)
        for e in ENTRIES:
            href = f"../{lang}/{e['chapter']}.html#{e['label']}"
            assert errata.href(e, lang) == href
            assert text.count(f'href="{href}"') == 2  # the correction and its code cell
            assert e[f"claim_{lang}"].split()[0] in text or e[f"claim_{lang}"][:8] in text
            for node in e["tests"]:
                assert f"<code>{node.replace('::', '::<wbr>')}</code>" in text
        other = "zh" if lang == "en" else "en"
        assert f"../{other}/" not in text
    assert "The source material says" in table.en and "原始资料的说法" in table.zh
    with pytest.raises(ValueError, match="lang"):
        errata.href(ENTRIES[0], "fr")


def test_table_escapes_the_text():
    row = errata._row({**ENTRIES[0], "claim_en": "a < b & <script>"}, "en")
    assert "a &lt; b &amp; &lt;script&gt;" in row and "<script>" not in row


# ---------------------------------------------------------------- the built book
def _ids_and_links(path: Path) -> tuple[set[str], list[tuple[str, str, str]]]:
    """The element ids of a page, and its links (class, href, the language div they sit in)."""
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids: set[str] = set()
            self.links: list[tuple[str, str, str]] = []
            self.stack: list[str | None] = []  # the dl-en / dl-zh div each open div belongs to

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if "id" in a:
                self.ids.add(a["id"])
            if tag == "div":
                cls = (a.get("class") or "").split()
                lang = "en" if "dl-en" in cls else "zh" if "dl-zh" in cls else None
                self.stack.append(lang or (self.stack[-1] if self.stack else None))
            if tag == "a" and "href" in a:
                self.links.append((a.get("class") or "", a["href"], self.stack[-1] if self.stack else None))

        def handle_endtag(self, tag):
            if tag == "div" and self.stack:
                self.stack.pop()

    parser = Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.ids, parser.links


@pytest.mark.book
@pytest.mark.parametrize("lang", LANGS)
def test_every_errata_link_resolves_in_the_built_book(lang):
    page = HTML / "chapters" / lang / "91_errata.html"
    if not (HTML / "index.html").is_file():
        pytest.skip("no built book: _build/html/index.html is missing (run `make book-strict`)")
    assert page.is_file(), f"{page.relative_to(ROOT)} was not built (is 91_errata in _toc.yml?)"
    _, links = _ids_and_links(page)
    errata_links = [(cls, href, div) for cls, href, div in links if "dl-erratum" in cls]
    # two links per entry (the correction, its code cell) in each of the two language tables
    assert len(errata_links) == 4 * len(ENTRIES), errata_links
    ids_cache: dict[Path, set[str]] = {}
    broken = []
    for cls, href, div in errata_links:
        target, _, anchor = href.partition("#")
        path = (page.parent / target).resolve()
        assert div in LANGS and target.startswith(f"../{div}/"), (cls, href, div)
        if not path.is_file():
            broken.append(f"{href}: no page {path}")
            continue
        if path not in ids_cache:
            ids_cache[path] = _ids_and_links(path)[0]
        if anchor not in ids_cache[path]:
            broken.append(f"{href}: no id {anchor!r} on {path.relative_to(HTML)}")
    assert not broken, "\n".join(broken)


@pytest.mark.book
def test_errata_link_lands_on_the_correction_in_the_browser(offline_context, server):
    """Clicking a correction in the table (English, then Chinese) shows its box in that language."""
    page = offline_context().new_page()
    for lang, box in (("en", "Correction"), ("zh", "更正")):
        page.goto(server + f"chapters/{lang}/91_errata.html")
        links = page.locator(f".dl-{lang} table.dl-errata a.dl-erratum-link")
        assert links.count() == len(ENTRIES)
        assert page.locator(f".dl-{'zh' if lang == 'en' else 'en'} table.dl-errata").is_hidden()
        entry = ENTRIES[2]
        links.nth(2).click()
        page.wait_for_url(f"**/chapters/{lang}/{entry['chapter']}.html#{entry['label']}")
        target = page.locator(f"#{entry['label']}")
        assert target.is_visible()
        assert box in target.inner_text()
        top = target.bounding_box()["y"]
        assert -5 <= top < 300, f"{lang}: the correction is not at the top of the window ({top})"


# ---------------------------------------------------------------- checks of the corrections
def test_a_linear_activation_gives_one_affine_map():
    """Erratum linear-activation: with the identity activation a deep MLP is one affine map."""
    gen = np.random.default_rng(0)
    X = gen.standard_normal((40, 3))
    with dl.inference_mode():
        for activation, affine in (("identity", True), ("tanh", False)):
            net = dl.models.mlp([3, 16, 16, 16, 2], activation, rng=1)
            c = net(np.zeros((1, 3)))
            M = net(np.eye(3)) - c  # row i: the image of e_i
            assert np.allclose(net(X), X @ M + c, atol=1e-12) == affine, activation
    # trained on y = sin 3x, the linear network cannot beat the least-squares line
    x = np.linspace(-2, 2, 200)[:, None]
    y = np.sin(3 * x)
    X1 = np.hstack([x, np.ones_like(x)])
    best_line = np.mean((X1 @ np.linalg.lstsq(X1, y, rcond=None)[0] - y) ** 2)
    losses = {}
    for activation in ("identity", "tanh"):
        net = dl.models.mlp([1, 32, 1], activation, rng=1)
        opt = dl.optim.SGD(net, lr=0.05)
        for _ in range(1500):
            step = dl.train.train_step(net, dl.losses.mse, opt, x, y)
        losses[activation] = step.loss
    assert losses["identity"] >= best_line - 1e-9
    assert losses["tanh"] < best_line / 3


def test_monotonic_sigmoid_is_convex_only_with_its_matching_loss():
    """Erratum monotonic-convex: same monotonic sigmoid, convex with cross-entropy, not with squares."""
    gen = np.random.default_rng(2)
    X = gen.standard_normal((50, 3))
    t = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(float)
    sigmoid = dl.activations.get("sigmoid")

    def squared(W):  # W (3, M): M weight vectors at once -> (M,)
        return np.mean((sigmoid(X @ W) - t[:, None]) ** 2, axis=0)

    def cross_entropy(W):  # softplus(z) - t z, the matching loss of the sigmoid
        Z = X @ W
        return np.mean(np.logaddexp(0.0, Z) - t[:, None] * Z, axis=0)

    w = gen.standard_normal(3)
    reference = dl.losses.binary_cross_entropy(X @ w, t)[0]
    assert cross_entropy(w[:, None])[0] == pytest.approx(reference, rel=1e-12)

    W0, D = 4 * gen.standard_normal((3, 4000)), gen.standard_normal((3, 4000))
    eps = 1e-3

    def curvature(loss):
        return (loss(W0 + eps * D) - 2 * loss(W0) + loss(W0 - eps * D)) / eps**2

    assert curvature(squared).min() < -1e-3  # a witness of non-convexity
    assert curvature(cross_entropy).min() > -1e-6  # none along 4,000 random lines
    # and the proof for the cross-entropy: its Hessian X^T diag(p(1-p)) X / n is positive semi-definite
    p = sigmoid(X @ W0[:, :50])  # (n, 50)
    H = np.einsum("ni,nk,nj->kij", X, p * (1 - p), X) / len(X)
    assert np.linalg.eigvalsh(H).min() >= -1e-12
