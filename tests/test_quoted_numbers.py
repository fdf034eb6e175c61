"""Every number the prose quotes from a computation appears in the chapter's outputs.

The markdown of ``chapters/{en,zh}/NN_*.ipynb`` quotes results of the code
cells: losses, accuracies, ratios, counts. The notebooks are stored without
outputs, and a quoted number cannot be a ``{glue}`` role because readers also
open the notebooks in JupyterLab, so it stays a literal, readable number in the
prose; this test checks it against the outputs of the same chapter as the book
build executed it (kept in the build's jupyter cache, ``_build/.jupyter_cache``,
by ``make book`` or ``make book-strict``).

What counts as a quoted number (in prose, headings, tables, admonition bodies
and inline ``$...$`` maths; not in display ``$$...$$`` maths, code fences,
inline code, roles such as ``{cite}`...```, URLs, link targets, labels or
directive options):

- every decimal number, ``0.034``, and every number in scientific notation,
  ``1.2e-3`` or ``$2.5\\cdot 10^{6}$`` (a bare power of ten, ``$10^{-2}$``, is
  an order of magnitude or a setting and is not checked);
- every number with thousands separators, ``50,826`` or ``$2{,}048$``;
- every percentage, ``8.75 %``, ``98%``, ``$12\\%$``;
- every factor: a number before ``×``, "times", "-fold" or 倍, or after ``×``
  or "factor of", e.g. ``×18.8``, ``2.6×``, "50 times", "2.6 倍" (``8×8``, a
  product of two numbers, is a size, not a factor).

Plain integers ("8 epochs", "44 layers", "2015") are not checked: too many of
them are settings, counts and years. A factor spelled out in words ("six
times", "sevenfold", "六倍") cannot be checked, so it is an error unless the
allowlist explains why it is not a computed value (a formula, a setting);
"twice", "double", 两倍 and vague ones (几百倍, "many times") are not flagged.

A quoted number matches an output token of the same chapter (stream outputs,
``text/plain`` and ``text/html`` of execute results, glued values) when the
two are equal as decimals: ``0.19`` matches ``0.190`` but not ``0.193``, and
``0.03`` never matches inside ``0.034`` (outputs are split into whole number
tokens). A percentage also matches the fraction (``96.9 %`` matches
``0.969``); a factor matches the number printed for the ratio (``2.6×``
matches ``2.6`` in "ratio 2.6" or "×2.6"). A number written with a minus sign
needs a negative output; one without a sign matches either sign (prose says
"falls by 0.3"). Numbers that the chapter does not compute (constants of a
formula or a paper, settings, figures from cited work) are listed, each with a
reason, in ``tests/quoted_numbers_allow.toml``.
"""

from __future__ import annotations

import html
import json
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
CACHE = ROOT / "_build" / ".jupyter_cache"
ALLOW_FILE = Path(__file__).with_name("quoted_numbers_allow.toml")
LANGS = ("en", "zh")


# ---------------------------------------------------------------- prose
CODE_FENCE = re.compile(r"^(`{3,}|~{3,})(?!\s*\{)[^\n]*\n.*?^\1\s*$", re.M | re.S)
DIRECTIVE_LINE = re.compile(r"^(?:`{3,}|:{3,})\s*\{([\w:-]+)\}([^\n]*)$", re.M)
PATH_DIRECTIVES = {"figure", "image", "include", "literalinclude", "bibliography"}
OPTION_LINE = re.compile(r"^\s*:[\w-]+:.*$", re.M)
DISPLAY_MATHS = re.compile(r"\$\$.+?\$\$|\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S)
ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
INLINE_CODE = re.compile(r"(`+).+?\1", re.S)
IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
URL = re.compile(r"<?(?:https?|mailto|ftp)://[^\s>)]+>?|<?mailto:[^\s>)]+>?")
LABEL = re.compile(r"^\s*\([\w:.-]+\)=\s*$", re.M)
TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def prose(markdown: str) -> str:
    """The part of a markdown cell that is read as text, with inline maths kept."""
    text = TAG.sub(" ", re.sub(r"<!--.*?-->", " ", markdown, flags=re.S))  # comments, HTML
    text = CODE_FENCE.sub(" ", text)
    text = DIRECTIVE_LINE.sub(
        lambda m: " " if m.group(1) in PATH_DIRECTIVES else m.group(2), text
    )
    text = OPTION_LINE.sub(" ", text)
    text = DISPLAY_MATHS.sub(" ", text)
    text = ROLE.sub(" ", text)
    text = INLINE_CODE.sub(" ", text)
    text = IMAGE.sub(r"\1", text)
    text = LINK.sub(r"\1", text)
    text = URL.sub(" ", text)
    return LABEL.sub(" ", text)


# One number: digits with optional thousands groups ("," or MyST maths "{,}"),
# an optional fraction and an optional exponent. Not part of a longer token:
# no letter, digit or dot before it, no letter, digit or ".5"/",5" after it,
# so a version "3.11.2" or a name "float32" gives no number.
_NUM = r"(?:\d{1,3}(?:(?:,|\{,\})\d{3})+|\d+)(?:\.\d+)?"
NUMBER = re.compile(
    rf"(?<![A-Za-z0-9_.,}}])(?P<minus>[-−])?(?P<num>{_NUM})"
    rf"(?:(?P<e>[eE][-+−]?\d+)"
    rf"|\s*\\(?:cdot|times)\s*10\^(?:\{{(?P<p1>[-−]?\d+)\}}|(?P<p2>[-−]?\d))"
    rf"|\s*[×·]\s*10\^\{{?(?P<p3>[-−]?\d+)\}}?)?"
    rf"(?![A-Za-z0-9_]|[.,]\d|\{{,\}})"
)
PERCENT_AFTER = re.compile(r"\s*(?:\\?%|％)")
FACTOR_AFTER = re.compile(r"\s*(?:×(?!\s*\$?\s*\d)|-?fold\b|times\b|倍)")
_HEDGE = r"(?: about| roughly| nearly| almost| some| at least| at most)?"
FACTOR_BEFORE = re.compile(rf"(?:(?<![\d}}])(?<![\d}}] )×|factor of{_HEDGE})\s*$")

_EN_WORDS = (
    "three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    "forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand"
)
WORD_FACTOR = re.compile(
    rf"\b(?:(?:{_EN_WORDS})(?:[- ]?fold\b|\s+times\b)"
    rf"|factor of{_HEDGE} (?:{_EN_WORDS})\b)"
    r"|(?<![几数多〇一二两三四五六七八九十百千万])[〇一二两三四五六七八九十百千万]*"
    r"[三四五六七八九十百千万][〇一二两三四五六七八九十百千万]*倍",
    re.I,
)


@dataclass(frozen=True)
class Quoted:
    """One number quoted in the prose."""

    kind: str  # "decimal", "thousands", "percent" or "factor"
    text: str  # as written, e.g. "0.034", "2.5\\cdot 10^6", "8.75"
    value: Decimal  # its magnitude
    negative: bool
    context: str

    def __str__(self) -> str:
        sign = "-" if self.negative else ""
        return f"{self.kind} {sign}{self.text!r} in “…{self.context}…”"


def _decimal(num: str, exponent: str | None = None) -> Decimal:
    value = Decimal(num.replace("{,}", "").replace(",", ""))
    if exponent:
        value = value.scaleb(int(exponent.replace("−", "-").lstrip("eE")))
    return value.normalize()


def quoted_numbers(markdown: str) -> list[Quoted]:
    """Every number that a markdown cell quotes (see the module docstring)."""
    text = prose(markdown)
    found = []
    for m in NUMBER.finditer(text):
        num = m.group("num")
        exponent = m.group("e") or m.group("p1") or m.group("p2") or m.group("p3")
        before, after = text[: m.start()], text[m.end():]
        if PERCENT_AFTER.match(after):
            kind = "percent"
        elif FACTOR_AFTER.match(after) or FACTOR_BEFORE.search(before):
            kind = "factor"
        elif exponent or "." in num:
            kind = "decimal"
        elif "," in num:
            kind = "thousands"
        else:
            continue  # a plain integer
        # A minus sign counts when it is unary: "$-0.17$", "(−3.1)", not "x-0.5".
        negative = bool(m.group("minus")) and not re.search(r"[A-Za-z0-9_)}\]]\s*$", before)
        context = re.sub(r"\s+", " ", text[max(0, m.start() - 40): m.end() + 25]).strip()
        found.append(Quoted(kind, m.group(0).lstrip("-−"), _decimal(num, exponent),
                            negative, context))
    return found


def word_factors(markdown: str) -> list[str]:
    """Factors spelled out in words, which cannot be checked against an output."""
    return [re.sub(r"\s+", " ", m.group(0)) for m in WORD_FACTOR.finditer(prose(markdown))]


# ---------------------------------------------------------------- outputs
OUTPUT_NUMBER = re.compile(
    rf"(?<![A-Za-z0-9_.])(?P<minus>[-−])?(?P<num>{_NUM})(?P<e>[eE][-+]?\d+)?"
    r"(?![A-Za-z0-9_]|\.\d)"
)
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]*")


def output_texts(notebook: dict) -> list[str]:
    """The text a reader sees in the outputs: streams, results, glued values."""
    texts = []
    for cell in notebook["cells"]:
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                texts.append(_join(out.get("text", "")))
                continue
            glued = "scrapbook" in out.get("metadata", {})
            if kind == "execute_result" or (kind == "display_data" and glued):
                data = out.get("data", {})
                if "text/plain" in data:
                    texts.append(_join(data["text/plain"]))
                if "text/html" in data:
                    texts.append(DATA_URI.sub(" ", html.unescape(_join(data["text/html"]))))
    return texts


def output_tokens(texts: list[str]) -> dict[Decimal, set[bool]]:
    """Every whole number in the outputs: its magnitude -> the signs it was printed with."""
    tokens: dict[Decimal, set[bool]] = {}
    for text in texts:
        for m in OUTPUT_NUMBER.finditer(text):
            value = _decimal(m.group("num"), m.group("e"))
            tokens.setdefault(value, set()).add(bool(m.group("minus")))
    return tokens


def matches(q: Quoted, tokens: dict[Decimal, set[bool]]) -> bool:
    candidates = [q.value]
    if q.kind == "percent":
        candidates.append(q.value.scaleb(-2).normalize())
    for value in candidates:
        signs = tokens.get(value, set())
        if signs and (not q.negative or True in signs):
            return True
    return False


def unmatched(markdown: str, texts: list[str], allowed: set[Decimal] = frozenset()) -> list[Quoted]:
    """The quoted numbers of `markdown` that no output token and no allowlist entry covers."""
    tokens = output_tokens(texts)
    return [q for q in quoted_numbers(markdown)
            if not matches(q, tokens) and q.value not in allowed]


def _join(source: str | list[str]) -> str:
    return "".join(source) if isinstance(source, list) else source


# ---------------------------------------------------------------- the allowlist
def load_allowlist(path: Path = ALLOW_FILE) -> dict:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {"number": data.get("number", []), "words": data.get("words", [])}


def allowed_numbers(allow: dict, chapter: str, lang: str) -> set[Decimal]:
    return {
        _decimal(e["value"])
        for e in allow["number"]
        if e["chapter"] == chapter and e.get("lang", lang) == lang
    }


def allowed_words(allow: dict, chapter: str, lang: str) -> set[str]:
    return {
        e["phrase"] for e in allow["words"] if e["chapter"] == chapter and e["lang"] == lang
    }


# ---------------------------------------------------------------- the chapters
def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _markdown_cells(notebook: dict) -> list[tuple[int, str]]:
    return [(i, _join(c["source"])) for i, c in enumerate(notebook["cells"], 1)
            if c["cell_type"] == "markdown"]


def _code(notebook: dict) -> list[str]:
    return [_join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]


CHAPTER_FILES = sorted((CHAPTERS / "en").glob("*.ipynb"))
CASES = [(lang, p.stem) for p in CHAPTER_FILES for lang in LANGS
         if (CHAPTERS / lang / p.name).is_file()]


def _executed(lang: str, chapter: str) -> dict:
    """The chapter with the outputs the built page shows.

    The build executes each notebook once and keeps it in the jupyter cache,
    keyed on the code cells, so the zh twin is shown with the outputs of the
    en run (its copy in ``_build/jupyter_execute`` has none). A chapter whose
    code changed since the build has no match: rebuild.
    """
    jupyter_cache = pytest.importorskip("jupyter_cache")
    nbformat = pytest.importorskip("nbformat")
    if not (CACHE / "global.db").is_file():
        pytest.skip(f"no built book: {CACHE.relative_to(ROOT)} is missing (run `make book`)")
    source = CHAPTERS / lang / f"{chapter}.ipynb"
    notebook = nbformat.reads(source.read_text(encoding="utf-8"), as_version=4)
    try:
        _, merged = jupyter_cache.get_cache(CACHE).merge_match_into_notebook(notebook)
    except KeyError:
        pytest.fail(f"{source.relative_to(ROOT)}: no execution in the build's cache matches "
                    "its code cells: rebuild the book (`make book`)")
    return merged


def grouped_in_english(chapter: str) -> set[Decimal]:
    """The integers that the English chapter writes with thousands separators.

    The Chinese text groups every integer of four or more digits (the number
    policy on the glossary page), settings such as "3,000 步" too, so a grouped
    integer in Chinese is checked when its English twin groups it as well.
    """
    source = _notebook(CHAPTERS / "en" / f"{chapter}.ipynb")
    return {q.value for _, md in _markdown_cells(source) for q in quoted_numbers(md)
            if q.kind == "thousands"}


def checked(q: Quoted, lang: str, english_grouped: set[Decimal]) -> bool:
    return lang == "en" or q.kind != "thousands" or q.value in english_grouped


@pytest.mark.book
@pytest.mark.parametrize(("lang", "chapter"), CASES)
def test_quoted_numbers_appear_in_the_outputs(lang, chapter):
    texts = output_texts(_executed(lang, chapter))
    allowed = allowed_numbers(load_allowlist(), chapter, lang)
    source = _notebook(CHAPTERS / lang / f"{chapter}.ipynb")
    english = grouped_in_english(chapter)
    stale = [f"cell {i}: {q}" for i, md in _markdown_cells(source)
             for q in unmatched(md, texts, allowed) if checked(q, lang, english)]
    assert not stale, (
        f"{lang}/{chapter}: the prose quotes numbers that no output of the chapter shows "
        f"(fix the prose, print the value, or list it with a reason in {ALLOW_FILE.name}):\n"
        + "\n".join(stale)
    )


@pytest.mark.parametrize(("lang", "chapter"), CASES)
def test_no_factors_in_words(lang, chapter):
    """A factor in words cannot be checked: write the digits, or allowlist the phrase."""
    allowed = allowed_words(load_allowlist(), chapter, lang)
    source = _notebook(CHAPTERS / lang / f"{chapter}.ipynb")
    found = [f"cell {i}: {w!r}" for i, md in _markdown_cells(source)
             for w in word_factors(md) if w not in allowed]
    assert not found, f"{lang}/{chapter}: factors in words:\n" + "\n".join(found)


VALUE = re.compile(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def test_allowlist_entries_are_complete():
    allow = load_allowlist()
    chapters = {p.stem for p in CHAPTER_FILES}
    bad = [e for e in allow["number"]
           if set(e) - {"chapter", "value", "reason", "lang"}
           or e.get("chapter") not in chapters or not e.get("reason", "").strip()
           or e.get("lang", "en") not in LANGS
           or not VALUE.fullmatch(str(e.get("value", "")))]
    bad += [e for e in allow["words"]
            if set(e) != {"chapter", "lang", "phrase", "reason"}
            or e["chapter"] not in chapters or e["lang"] not in LANGS or not e["reason"].strip()]
    assert not bad, f"{ALLOW_FILE.name}: malformed entries {bad}"
    keys = [(e["chapter"], e.get("lang"), _decimal(e["value"])) for e in allow["number"]]
    keys += [(e["chapter"], e["lang"], e["phrase"]) for e in allow["words"]]
    assert len(keys) == len(set(keys)), f"{ALLOW_FILE.name}: duplicate entries"


def test_allowlisted_words_are_used():
    allow = load_allowlist()
    unused = []
    for e in allow["words"]:
        source = _notebook(CHAPTERS / e["lang"] / f"{e['chapter']}.ipynb")
        if not any(e["phrase"] in word_factors(md) for _, md in _markdown_cells(source)):
            unused.append(e)
    assert not unused, f"{ALLOW_FILE.name}: phrases no longer in the prose: {unused}"


@pytest.mark.book
def test_allowlisted_numbers_are_needed():
    """Each entry covers a number the prose still quotes (no dead entries pile up).

    An entry stays valid when an output happens to print the same number by
    coincidence (a timing, an unrelated count): the reason for the entry is
    that the prose's number does not come from this chapter's code.
    """
    allow = load_allowlist()
    needless = []
    for e in allow["number"]:
        value, needed = _decimal(e["value"]), False
        for lang in [e["lang"]] if "lang" in e else LANGS:
            source = _notebook(CHAPTERS / lang / f"{e['chapter']}.ipynb")
            needed |= any(q.value == value for _, md in _markdown_cells(source) for q in quoted_numbers(md))
        if not needed:
            needless.append(f"{e['chapter']} {e['value']}")
    assert not needless, f"{ALLOW_FILE.name}: entries that no prose quotes any more: {needless}"


# ---------------------------------------------------------------- the checker itself
def test_extraction_finds_every_kind():
    md = (
        "Loss 0.034 and $2.5\\cdot 10^{6}$ and 1.2e-3; 50,826 weights, $2{,}048$ more; "
        "error 8.75 % or $12\\%$; gradient ×18.8, ratio 2.6× or 50 times, 约 3 倍.\n"
        "Ignored: 8 epochs, Python 3.11.2, $8\\times 8$ maps, `lr=0.05`, {cite}`he2016deep`, "
        "[see](https://example.org/v1.5), $10^{-2}$.\n\n$$ y = 0.044715 x^3 $$\n\n"
        "```python\nprint(0.125)\n```\n:::{figure} img/fig-0.5.png\n:width: 80%\n:::\n"
    )
    got = {(q.kind, q.value) for q in quoted_numbers(md)}
    assert got == {
        ("decimal", Decimal("0.034")), ("decimal", Decimal("2.5e6")),
        ("decimal", Decimal("0.0012")), ("thousands", Decimal(50826)),
        ("thousands", Decimal(2048)), ("percent", Decimal("8.75")),
        ("percent", Decimal(12)), ("factor", Decimal("18.8")), ("factor", Decimal("2.6")),
        ("factor", Decimal(50)), ("factor", Decimal(3)),
    }
    assert [q.value for q in quoted_numbers("$x<y$ and 0.5, $a>b$; 3 × 105 windows, 3×10^4")] == [
        Decimal("0.5"), Decimal("3e4")]
    assert word_factors("about six times larger, sevenfold, a factor of about four, 约六倍") == [
        "six times", "sevenfold", "factor of about four", "六倍"]
    assert word_factors("twice as large, 两倍, 几百倍, many times, 8 times") == []
    assert word_factors("appears four\ntimes") == ["four times"]


def test_chinese_grouped_integers_follow_the_english_twin():
    english = {q.value for q in quoted_numbers("trained for 3000 steps; 50,826 parameters")
               if q.kind == "thousands"}
    zh = {q.text: q for q in quoted_numbers("训练 3,000 步；共有 50,826 个参数，损失 0.25")}
    assert not checked(zh["3,000"], "zh", english)  # a setting, plain in English
    assert checked(zh["50,826"], "zh", english)  # a computed count in both
    assert checked(zh["0.25"], "zh", english)
    assert checked(zh["3,000"], "en", english)


def test_checker_fails_on_a_stale_number():
    outputs = ["   20               0.182    0.872                  0.034    0.958\n",
               "ratio 2.6, accuracy 0.969, RMS 2.5e+06, weights 50826\n"]
    fresh = ("The residual loss at 20 layers is 0.034 (plain 0.182), the plain one is "
             "2.6× larger; accuracy 96.9 %, $2.5\\cdot 10^6$, 50,826 weights, 0.1820.")
    assert unmatched(fresh, outputs) == []
    stale = "The residual loss at 20 layers is 0.007, six times lower; about 2.5× larger."
    assert [q.text for q in unmatched(stale, outputs)] == ["0.007", "2.5"]
    # boundaries: 0.03 is not inside 0.034, 0.18 is not 0.182, 95.8 % is 0.958
    assert [q.text for q in unmatched("0.03, 0.18, 0.958, 95.8 %, 0.87", outputs)] == [
        "0.03", "0.18", "0.87"]
    # the allowlist covers numbers the chapter does not compute
    assert unmatched("GELU's constant 0.044715", outputs, {Decimal("0.044715")}) == []
    # a negative quote needs a negative output
    assert [q.text for q in unmatched("a dip of $-0.182$", outputs)] == ["0.182"]
    assert unmatched("a dip of $-0.17$", ["minimum -0.170"]) == []
    assert unmatched("falls by 0.17", ["change -0.17"]) == []


def test_outputs_are_read_like_a_reader_sees_them():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "0.5"},
        {"cell_type": "code", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["loss 0.25\n"]},
            {"output_type": "execute_result", "data": {
                "text/plain": "1.5", "text/html": '<b>2.75</b><img src="data:image/png;base64,'
                                                   'iVBO1.25=">&quot;3.5&quot;'}},
            {"output_type": "display_data", "data": {"text/plain": "<Figure 4.5>"}},
            {"output_type": "display_data", "metadata": {"scrapbook": {"name": "x"}},
             "data": {"text/plain": "6.25"}},
        ]},
    ]}
    tokens = output_tokens(output_texts(notebook))
    assert set(tokens) == {Decimal(v).normalize() for v in ("0.25", "1.5", "2.75", "3.5", "6.25")}
