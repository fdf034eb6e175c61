"""The book's bilingual glossary: one English term, one Chinese rendering.

The data lives in ``dlbook/resources/glossary.tsv`` (columns ``en``, ``zh``,
``note``, ``avoid``; UTF-8, tab-separated). The Chinese chapters use exactly
these renderings; the note gives other renderings a reader meets elsewhere, or
the full Chinese name of a term the book keeps in its English form; ``avoid``
lists the renderings (separated by 、) that the Chinese chapters never use —
``tests/test_zh_style.py`` checks every chapter against it. The glossary
appendix (chapter 90) shows the whole table, and the book build feeds the
Chinese terms to the search index so that a compound such as 激活函数 is found
as one word.

Examples
--------
>>> from dlbook import glossary
>>> glossary.zh_of("activation function")
'激活函数'
>>> glossary.zh_of("ReLU")            # the abbreviation in parentheses works too
'ReLU'
"""

from __future__ import annotations

import csv
import difflib
import functools
import html
import io
import re
from importlib import resources

__all__ = ["UnknownTermError", "load", "table", "zh_of"]

_COLUMNS = ("en", "zh", "note", "avoid")


class UnknownTermError(KeyError):
    """Raised by :func:`zh_of` for a term that is not in the glossary."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


@functools.cache
def _rows() -> tuple[tuple[str, str, str, str], ...]:
    text = resources.files("dlbook").joinpath("resources", "glossary.tsv").read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = tuple(next(reader))
    if header != _COLUMNS:
        raise ValueError(f"glossary.tsv: expected columns {_COLUMNS}, got {header}")
    rows = []
    for lineno, row in enumerate(reader, start=2):
        if len(row) != len(_COLUMNS) or not row[0].strip() or not row[1].strip():
            raise ValueError(f"glossary.tsv line {lineno}: expected en, zh, note, avoid; got {row!r}")
        rows.append(tuple(cell.strip() for cell in row))
    return tuple(rows)


def load() -> list[dict[str, str]]:
    """Return every glossary entry as a dict with keys ``en``, ``zh``, ``note`` and ``avoid``.

    The list is a fresh copy in file order (grouped by the chapter that
    introduces the term); changing it does not change the glossary.
    """
    return [dict(zip(_COLUMNS, row, strict=True)) for row in _rows()]


def _key(term: str) -> str:
    return " ".join(term.casefold().split())


@functools.cache
def _index() -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Three lookup tables, most specific first.

    1. the English entry exactly, e.g. ``rectified linear unit (ReLU)``;
    2. the entry without its parenthesis, e.g. ``rectified linear unit``;
    3. the text in the parenthesis, e.g. ``ReLU`` or ``dying ReLU``
       (several entries may share one, e.g. ``Adam``; then it is ambiguous
       unless tier 1 or 2 has it).
    """
    exact: dict[str, str] = {}
    base: dict[str, str] = {}
    alias: dict[str, set[str]] = {}
    for en, zh, _, _ in _rows():
        exact[_key(en)] = zh
        bare = re.sub(r"\s*\([^)]*\)", "", en).strip()
        if bare and bare != en:
            base.setdefault(_key(bare), zh)
        for inner in re.findall(r"\(([^)]*)\)", en):
            alias.setdefault(_key(inner), set()).add(zh)
    return exact, base, alias


def zh_of(en_term: str) -> str:
    """The book's Chinese rendering of an English term.

    Matching ignores case and repeated spaces. ``en_term`` may be the whole
    entry (``"rectified linear unit (ReLU)"``), the entry without its
    parenthesis (``"rectified linear unit"``) or the abbreviation / alias in the
    parenthesis (``"ReLU"``, ``"dying ReLU"``).

    Raises
    ------
    TypeError
        If ``en_term`` is not a string.
    UnknownTermError
        (a ``KeyError``) if the term is not in the glossary, naming the closest
        entries.
    """
    if not isinstance(en_term, str):
        raise TypeError(f"zh_of expects an English term as str, got {type(en_term).__name__}")
    exact, base, alias = _index()
    key = _key(en_term)
    if key in exact:
        return exact[key]
    if key in base:
        return base[key]
    if key in alias and len(alias[key]) == 1:
        return next(iter(alias[key]))
    if key in alias:
        raise UnknownTermError(
            f"{en_term!r} is ambiguous in the glossary: it could be any of "
            f"{sorted(alias[key])}; give the full English entry"
        )
    entries = [en for en, *_ in _rows()]
    close = difflib.get_close_matches(en_term, entries, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownTermError(
        f"{en_term!r} is not in the glossary (dlbook/resources/glossary.tsv, {len(entries)} terms){hint}"
    )


_HEADERS = {
    "en": ("English", "Chinese", "Other renderings / notes"),
    "zh": ("英文", "中文", "其他译法 / 说明"),
}


def _table_html(lang: str, rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in _HEADERS[lang])
    body = "\n".join(
        "<tr>"
        f'<td lang="en">{html.escape(r["en"])}</td>'
        f'<td lang="zh-CN">{html.escape(r["zh"])}</td>'
        f'<td lang="zh-CN">{html.escape(r["note"])}</td>'
        "</tr>"
        for r in rows
    )
    return (
        f'<table class="dl-glossary"><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def table():
    """The whole glossary as a bilingual HTML table, sorted by the English term.

    Returns a :class:`dlbook.plot.Bilingual`: the book shows the table with
    English headers on English pages and Chinese headers on Chinese pages.
    """
    from .plot import bilingual  # matplotlib only when a table is wanted

    rows = sorted(load(), key=lambda r: r["en"].casefold())
    return bilingual(_table_html("en", rows), _table_html("zh", rows), html=True)
