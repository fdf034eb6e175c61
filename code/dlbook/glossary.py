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
import json
import re
from importlib import resources
from pathlib import Path

__all__ = ["UnknownTermError", "defined_in", "load", "table", "zh_of"]

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


# ---------------------------------------------------------------------------
# The chapter that defines a term
# ---------------------------------------------------------------------------
LANGS = ("en", "zh")
_CHAPTER_FILE = re.compile(r"^(\d\d)_\w+\.ipynb$")
_FIRST_APPENDIX = 90  # 90 glossary and the other reference pages mention every term
# What is not prose: code, maths, roles with their targets, labels, comments, links.
_NOT_PROSE = re.compile(
    r"<!--.*?-->"  # comments
    r"|\$\$.+?\$\$|\$[^$\n]+\$"  # display and inline maths
    r"|\{[\w:-]+\}`[^`]*`"  # roles: {cite}`key`, {ref}`label`
    r"|`[^`\n]*`"  # inline code
    r"|^\([\w:-]+\)=[ \t]*$"  # labels
    r"|\]\([^)\s]*\)|https?://\S+",  # link targets and URLs
    re.S | re.M,
)
_QUALIFIER = re.compile(r"^(of|the|first|in|for|on)\b|^(method|operation|output|network|study|Adam)$")
_LATIN = re.compile(r"[A-Za-z0-9]")


def _prose(notebook: Path) -> str:
    """The prose of a notebook's markdown cells, without code, maths, roles and labels."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    text = "\n\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "markdown"
    )
    # a code block goes; a directive keeps its body (an admonition is prose) but loses
    # its fences and options
    text = re.sub(r"^(`{3,})(?![`{\s])[^\n]*\n.*?^\1[ \t]*$", " ", text, flags=re.S | re.M)
    text = re.sub(r"^(`{3,}|:{3,}).*$|^:[\w-]+:.*$", " ", text, flags=re.M)
    return _NOT_PROSE.sub(" ", text)


def _en_forms(en: str) -> list[str]:
    """What counts as a use of an English entry: the entry without its parenthesis, and
    the parenthesis when it is another name (``ReLU``, ``KV cache``), not a qualifier
    (``of an affine layer``, ``method``)."""
    bare = re.sub(r"\s*\([^)]*\)", "", en).strip()
    forms = [inner for inner in re.findall(r"\(([^)]*)\)", en) if not _QUALIFIER.search(inner)]
    parts = bare.split(" / ")
    last = parts[-1].split(" ", 1)
    if len(last) == 2 and all(" " not in p for p in parts[:-1]):  # "source / target language"
        parts = [f"{p} {last[1]}" for p in parts[:-1]] + [parts[-1]]
    return [f for f in (*parts, *forms) if f]


def _zh_forms(zh: str) -> list[str]:
    """What counts as a use of a Chinese rendering: each half of ``源语言/目标语言``, and a
    rendering without (and within) its full-width parenthesis."""
    forms = [re.sub(r"（[^）]*）", "", zh).strip(), *re.findall(r"（([^）]*)）", zh)]
    return [f.strip() for part in forms for f in part.split("/") if f.strip()]


def _pattern(form: str, lang: str) -> re.Pattern[str]:
    """A regular expression for one form in running text.

    English: case-insensitive, spaces, hyphens and dashes interchangeable
    (``sequence-to-sequence``), a plural ``s``/``es`` allowed, ``-ise``/``-ize``
    spelt either way. Both: a form that starts or ends with a Latin letter or digit
    must not continue a word there (``ReLU`` is not found in ``ReLU6``).
    """
    words = re.split(r"[\s\-–]+", form) if lang == "en" else re.split(r"\s+", form)
    glue = r"[\s\-–]+" if lang == "en" else r"\s*"
    body = glue.join(re.escape(w) for w in words)
    if lang == "en":
        # -ise / -ize, either spelling: normali[sz]ation
        body = re.sub(r"(?<=[a-z])i[sz](?=e|ation|ing|ed)", "i[sz]", body)
        body += r"(?:s|es)?"
    before = r"(?<![A-Za-z0-9])" if _LATIN.match(form[0]) else ""
    after = r"(?![A-Za-z0-9])" if _LATIN.match(form[-1]) else ""
    return re.compile(before + body + after, re.I if lang == "en" else 0)


def chapter_files(chapters: str | Path) -> list[str]:
    """The chapters in reading order (file names ``NN_topic.ipynb``, ``01`` to ``89``).

    The preface (``00``) is left out: it names the book's topics before any of them is
    taught; so are the appendices (``90`` on), which mention every term.
    """
    root = Path(chapters)
    names = sorted(
        p.name
        for lang in LANGS
        for p in (root / lang).glob("*.ipynb")
        if (m := _CHAPTER_FILE.match(p.name)) and 1 <= int(m.group(1)) < _FIRST_APPENDIX
    )
    return sorted(set(names))


def _heading(notebook: Path) -> str:
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and (m := re.search(r"^#\s+(.+)$", source, re.M)):
            return m.group(1).strip()
    return notebook.stem


def defined_in(chapters: str | Path) -> dict[str, dict[str, str | None]]:
    """For every glossary entry, the chapter of each language that defines it.

    "Defines" is read as *uses first*: in reading order, the first chapter whose
    English markdown uses the English term (or its abbreviation) and, separately,
    the first chapter whose Chinese markdown uses the Chinese rendering. Code,
    maths, citations and labels do not count; the preface and the appendices are
    not searched (see ``chapter_files``).

    Parameters
    ----------
    chapters : str or Path
        The folder that holds ``en/`` and ``zh/`` (``chapters`` in the repository;
        ``".."`` from a running chapter).

    Returns
    -------
    dict
        ``{en term: {"en": "06_recurrent" or None, "zh": ...}}`` in glossary order
        (``None``: no chapter uses the term).

    Raises
    ------
    FileNotFoundError
        If ``chapters`` holds no chapter notebooks.
    """
    root = Path(chapters)
    names = chapter_files(root)
    if not names:
        raise FileNotFoundError(
            f"no chapter notebooks (NN_topic.ipynb) under {root.resolve()}/en or /zh"
        )
    prose = {
        lang: [(n, _prose(root / lang / n)) for n in names if (root / lang / n).is_file()]
        for lang in LANGS
    }
    found: dict[str, dict[str, str | None]] = {}
    for en, zh, _, _ in _rows():
        forms = {"en": _en_forms(en), "zh": _zh_forms(zh)}
        found[en] = {}
        for lang in LANGS:
            patterns = [_pattern(f, lang) for f in forms[lang]]
            first = (n for n, text in prose[lang] if any(p.search(text) for p in patterns))
            found[en][lang] = next((n.removesuffix(".ipynb") for n in first), None)
    return found


_HEADERS = {
    "en": ("English", "Chinese", "Other renderings / notes", "Chapter"),
    "zh": ("英文", "中文", "其他译法 / 说明", "章"),
}


def _chapter_cell(page: str | None, titles: dict[str, str]) -> str:
    if page is None:
        return "<td></td>"
    number = int(page[:2])
    title = html.escape(titles.get(page, page), quote=True)
    return f'<td class="dl-glossary-chapter"><a href="{page}.html" title="{title}">{number}</a></td>'


def _table_html(
    lang: str,
    rows: list[dict[str, str]],
    chapters: dict[str, dict[str, str | None]] | None = None,
    titles: dict[str, str] | None = None,
) -> str:
    headers = _HEADERS[lang] if chapters is not None else _HEADERS[lang][:3]
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "\n".join(
        "<tr>"
        f'<td lang="en">{html.escape(r["en"])}</td>'
        f'<td lang="zh-CN">{html.escape(r["zh"])}</td>'
        f'<td lang="zh-CN">{html.escape(r["note"])}</td>'
        + (_chapter_cell(chapters[r["en"]][lang], titles or {}) if chapters is not None else "")
        + "</tr>"
        for r in rows
    )
    return (
        f'<table class="dl-glossary"><thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def table(chapters: str | Path | None = None):
    """The whole glossary as a bilingual HTML table, sorted by the English term.

    Returns a :class:`dlbook.plot.Bilingual`: the book shows the table with
    English headers on English pages and Chinese headers on Chinese pages.
    With ``chapters`` (the folder holding ``en/`` and ``zh/``; the glossary page
    passes ``".."``) a last column links each term to the chapter that defines
    it (:func:`defined_in`), in the table's own language: the link
    ``06_recurrent.html`` is relative, so from ``chapters/zh/90_glossary.html``
    it leads to the Chinese chapter.
    """
    from .plot import bilingual  # matplotlib only when a table is wanted

    rows = sorted(load(), key=lambda r: r["en"].casefold())
    if chapters is None:
        return bilingual(_table_html("en", rows), _table_html("zh", rows), html=True)
    found = defined_in(chapters)
    root = Path(chapters)
    pages = {p for by_lang in found.values() for p in by_lang.values() if p}
    titles = {
        lang: {p: _heading(path) for p in pages if (path := root / lang / f"{p}.ipynb").is_file()}
        for lang in LANGS
    }
    return bilingual(
        _table_html("en", rows, found, titles["en"]),
        _table_html("zh", rows, found, titles["zh"]),
        html=True,
    )
