"""The errata of the source material: each wrong claim the book corrects, and where.

The book follows a body of blog posts and lecture notes (see the preface).
Where that material is wrong, the chapter that teaches the topic corrects it in
a warning box (``Correction: …`` / ``更正：…``) with a code cell that checks
the correct version. The data lives in ``dlbook/resources/errata.toml``, one
entry per claim: the claim and the correct statement in both languages, the
chapter and the MyST label of the correction, the tests that check it and a
piece of text of the chapter cell that demonstrates it. The errata appendix
(chapter 91) shows the whole list with :func:`table`; ``tests/test_errata.py``
checks that every label is in both twins of its chapter, that every test
exists and that every link resolves in the built book.

Examples
--------
>>> from dlbook import errata
>>> [e["id"] for e in errata.load()][:2]
['linear-activation', 'monotonic-convex']
"""

from __future__ import annotations

import functools
import html
import re
import tomllib
from importlib import resources

__all__ = ["FIELDS", "href", "load", "parse", "table"]

#: The keys of every entry, each with the type of its value (see the comment at
#: the top of ``errata.toml``).
FIELDS = {
    "id": str,
    "chapter": str,
    "label": str,
    "title_en": str,
    "title_zh": str,
    "claim_en": str,
    "claim_zh": str,
    "correct_en": str,
    "correct_zh": str,
    "tests": list,
    "cell": str,
}

_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")  # a chapter notebook's name, e.g. 01_activations
_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # a MyST label that is also a valid HTML id
_NODE = re.compile(r"^tests/test_\w+\.py::test_\w+$")  # a pytest node id


@functools.cache
def _entries() -> tuple[dict, ...]:
    text = resources.files("dlbook").joinpath("resources", "errata.toml").read_text(encoding="utf-8")
    return parse(text)


def parse(text: str) -> tuple[dict, ...]:
    """Read and check the text of an errata file (TOML, a list of ``[[erratum]]`` tables).

    Raises ``ValueError`` naming the entry and what is wrong with it: a missing
    or unknown key, an empty value, an id used twice, a chapter, label or test
    node id of the wrong form.
    """
    entries = tomllib.loads(text).get("erratum", [])
    if not entries:
        raise ValueError("errata.toml: no [[erratum]] entries")
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        where = f"errata.toml, entry {number} ({entry.get('id', 'no id')})"
        if set(entry) != set(FIELDS):
            raise ValueError(
                f"{where}: expected the keys {sorted(FIELDS)}, got {sorted(entry)} "
                f"(missing {sorted(set(FIELDS) - set(entry))}, unknown {sorted(set(entry) - set(FIELDS))})"
            )
        for key, kind in FIELDS.items():
            if not isinstance(entry[key], kind) or not entry[key]:
                raise ValueError(f"{where}: {key} must be a non-empty {kind.__name__}, got {entry[key]!r}")
        if entry["id"] in seen:
            raise ValueError(f"{where}: the id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        if not _NAME.match(entry["chapter"]):
            raise ValueError(f"{where}: chapter must be a notebook name like '01_activations', "
                             f"got {entry['chapter']!r}")
        if not _LABEL.match(entry["label"]):
            raise ValueError(f"{where}: label must be lower case letters, digits and '-', "
                             f"got {entry['label']!r}")
        bad = [t for t in entry["tests"] if not isinstance(t, str) or not _NODE.match(t)]
        if bad:
            raise ValueError(f"{where}: tests must be node ids like 'tests/test_x.py::test_y', got {bad}")
    return tuple(entries)


def load() -> list[dict]:
    """Every erratum as a dict (keys: :data:`FIELDS`), in the order of the book.

    A fresh copy: changing it does not change the data. Raises ``ValueError``
    naming the entry and the key if ``errata.toml`` is malformed.
    """
    return [{**e, "tests": list(e["tests"])} for e in _entries()]


def href(entry: dict, lang: str) -> str:
    """The link from the errata page of ``lang`` to the section that teaches ``entry``.

    ``../en/01_activations.html#correction-hard-sigmoid``: the errata page is a
    chapter page too (``chapters/<lang>/91_errata.html``), so the link stays in
    the reader's language.
    """
    if lang not in ("en", "zh"):
        raise ValueError(f"lang must be 'en' or 'zh', got {lang!r}")
    return f"../{lang}/{entry['chapter']}.html#{entry['label']}"


def _chapter_number(entry: dict) -> int:
    return int(entry["chapter"][:2])


_HEADERS = {
    "en": ("Correction", "The source material says", "What holds"),
    "zh": ("更正", "原始资料的说法", "正确的说法"),
}
_WHERE = {
    "en": lambda n: f"Chapter {n}",
    "zh": lambda n: f"第 {n} 章",
}
_CHECK = {
    # label, the link to the chapter's cell, separator, the tests
    "en": ("Code check: ", "the code cell after the box", "; ", "tests "),
    "zh": ("代码检验：", "更正框后面的代码单元", "；", "测试 "),
}


def _row(entry: dict, lang: str) -> str:
    """Two table rows: the correction, then (spanning the columns) its code check."""
    e = {k: html.escape(v) if isinstance(v, str) else v for k, v in entry.items()}
    link = html.escape(href(entry, lang), quote=True)
    where = _WHERE[lang](_chapter_number(entry))
    check, cell, sep, tests = _CHECK[lang]
    # a possible line break after "::" (node ids are long)
    nodes = ", ".join(f"<code>{html.escape(t).replace('::', '::<wbr>')}</code>" for t in entry["tests"])
    return (
        f'<tr class="dl-erratum" data-erratum="{e["id"]}">'
        f'<td><a class="dl-erratum-link" href="{link}">{e[f"title_{lang}"]}</a>'
        f'<br><span class="dl-erratum-where">{where}</span></td>'
        f"<td>{e[f'claim_{lang}']}</td>"
        f"<td>{e[f'correct_{lang}']}</td>"
        "</tr>\n"
        f'<tr class="dl-erratum-check"><td colspan="3">{check}'
        f'<a class="dl-erratum-cell" href="{link}">{cell}</a>{sep}{tests}{nodes}</td></tr>'
    )


def _table_html(lang: str, entries: list[dict]) -> str:
    head = "".join(f"<th>{h}</th>" for h in _HEADERS[lang])
    body = "\n".join(_row(e, lang) for e in entries)
    return (
        f'<table class="dl-errata"><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def table():
    """The errata as a bilingual HTML table, one row per corrected claim.

    Each row gives the correction (linked to the section of the chapter that
    teaches it, in the page's language), the claim of the source material and
    what holds instead; a line under it gives the code check: the chapter's
    code cell after the correction box and the tests that check it. Returns a
    :class:`dlbook.plot.Bilingual`, so the book shows the English table on
    English pages and the Chinese one on Chinese pages.
    """
    from .plot import bilingual  # matplotlib only when a table is wanted

    entries = load()
    return bilingual(_table_html("en", entries), _table_html("zh", entries), html=True)
