"""dlbook.glossary and the search dictionary the book build makes from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import autocorrect_py
import pytest

from dlbook import glossary

ROOT = Path(__file__).resolve().parents[1]


def _site_extension():
    """The book's Sphinx extension, loaded from its file (it is not a package module)."""
    spec = importlib.util.spec_from_file_location("dlbook_site", ROOT / "_ext" / "dlbook_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_gives_every_entry():
    rows = glossary.load()
    assert len(rows) >= 250
    assert all(set(row) == {"en", "zh", "note", "avoid"} for row in rows)
    assert all(row["en"] and row["zh"] for row in rows)
    english = [row["en"].casefold() for row in rows]
    assert len(english) == len(set(english)), "an English term appears twice"


def test_load_returns_a_copy():
    rows = glossary.load()
    rows[0]["zh"] = "changed"
    rows.clear()
    assert glossary.load()[0]["zh"] != "changed"


@pytest.mark.parametrize(
    ("term", "zh"),
    [
        ("activation function", "激活函数"),
        ("Activation  Function", "激活函数"),
        ("rectified linear unit (ReLU)", "ReLU"),
        ("rectified linear unit", "ReLU"),
        ("ReLU", "ReLU"),
        ("dying ReLU", "神经元死亡"),
        ("dead ReLU", "神经元死亡"),
        ("saturation", "饱和"),
        ("gated linear unit", "GLU"),
        ("pooling", "池化"),
        ("normalization", "归一化"),
        ("Adam", "Adam"),
        ("bias correction", "偏差校正"),
    ],
)
def test_zh_of(term, zh):
    assert glossary.zh_of(term) == zh


def test_unknown_term_is_a_clear_error():
    with pytest.raises(KeyError, match="not in the glossary.*did you mean 'activation function'"):
        glossary.zh_of("activaton function")
    with pytest.raises(glossary.UnknownTermError):
        glossary.zh_of("quantum entanglement")
    with pytest.raises(TypeError, match="str"):
        glossary.zh_of(None)


def test_chinese_in_the_glossary_is_clean():
    found = []
    for row in glossary.load():
        for key in ("zh", "note"):
            if row[key] and autocorrect_py.format(row[key]) != row[key]:
                found.append((row["en"], key, row[key], autocorrect_py.format(row[key])))
    assert not found, found


def test_table_is_bilingual_and_complete(monkeypatch):
    monkeypatch.setenv("DLBOOK_LANG", "both")  # as in the book build
    html = glossary.table()._repr_html_()
    assert html.count("<tr>") == 2 * (len(glossary.load()) + 1)
    assert "<th>English</th>" in html and "<th>英文</th>" in html
    assert html.index("<th>English</th>") < html.index('<div class="dl-zh"')


def test_search_dictionary_keeps_terms_whole(tmp_path):
    site = _site_extension()
    terms = site.glossary_terms(ROOT / "code" / "dlbook" / "resources" / "glossary.tsv")
    assert {"激活函数", "神经元死亡", "梯度消失", "参数化", "源语言", "目标语言"} <= set(terms)
    assert all(" " not in t and t.isascii() is False for t in terms)
    path = site.write_userdict(terms, tmp_path / "dict.txt")
    assert path.is_absolute()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "激活函数 1000 n" in lines and len(lines) == len(terms)


def test_twin_pages():
    site = _site_extension()
    assert site.twin_of("chapters/en/01_activations") == ("en", "zh", "chapters/zh/01_activations")
    assert site.twin_of("chapters/zh/90_glossary") == ("zh", "en", "chapters/en/90_glossary")
    assert site.twin_of("index") is None
