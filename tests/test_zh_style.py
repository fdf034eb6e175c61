"""The Chinese chapters: one word per concept, and one way to write numbers.

Terms: ``dlbook/resources/glossary.tsv`` gives each English term one Chinese
rendering (column ``zh``) and lists the renderings the book does not use
(column ``avoid``, e.g. 汇聚 for *pooling*, 单元格 for a notebook *cell*, 瞎猜
for *chance level*). No Chinese chapter may use an avoided rendering, except
to name it once in parentheses right after the book's term, as a gloss:
「He 初始化（也称 MSRA 初始化或 Kaiming 初始化）」.

Numbers (the policy the glossary page states, following GB/T 15835-2011):

- an integer of four or more digits groups its thousands with a comma,
  ``1,078``, ``50,826``, as the English text and the printed outputs do; not a
  year (``2015``), not a number with 万 or 亿 (``4830 亿``), not part of a name
  (``ResNet-1001``);
- no space before ``%``: ``8.75%``;
- a range is ``0.31～0.39`` (no spaces around ～) or written with 到 / 至,
  never with an en dash between two numbers.

Maths, code, roles, URLs and directive options are not prose and are skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dlbook import glossary
from test_quoted_numbers import prose

ROOT = Path(__file__).resolve().parents[1]
ZH_CHAPTERS = sorted((ROOT / "chapters" / "zh").glob("*.ipynb"))
INLINE_MATHS = re.compile(r"\$[^$\n]+\$")


def _cells(path: Path) -> list[tuple[int, str]]:
    """(0-based cell index, prose without inline maths) of every markdown cell."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [
        (i, INLINE_MATHS.sub(" ", prose("".join(cell["source"]))))
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
    ]


def _avoided() -> list[tuple[str, str, str]]:
    """(avoided rendering, the book's rendering, English term) for every glossary row."""
    out = []
    for row in glossary.load():
        for word in filter(None, (w.strip() for w in row["avoid"].split("、"))):
            out.append((word, row["zh"], row["en"]))
    return out


def _term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the book's own terms occur in ``text``."""
    return [(m.start(), m.end()) for term in terms for m in re.finditer(re.escape(term), text)]


def _inside_a_term(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether a match is part of a longer term of the book (累积分布函数 ⊃ 分布函数,
    标签平滑的 ∩ 标签平滑)."""
    start, end = span
    return any(s < end and start < e and not (start <= s and e <= end) for s, e in spans)


def _is_gloss(text: str, start: int, term: str) -> bool:
    """Whether position ``start`` is inside （…） that directly follows ``term``."""
    opening = text.rfind("（", 0, start)
    closing = text.rfind("）", 0, start)
    return opening > closing and text[:opening].rstrip().rstrip("*").endswith(term)


def find_avoided(text: str) -> list[str]:
    """The avoided renderings in one piece of Chinese prose, with the term to use instead."""
    rows = glossary.load()
    avoided = {word for word, _, _ in _avoided()}
    spans = _term_spans(text, sorted({row["zh"] for row in rows} - avoided))
    found = []
    for word, use, english in _avoided():
        for match in re.finditer(re.escape(word), text):
            if _inside_a_term(match.span(), spans) or _is_gloss(text, match.start(), use):
                continue
            found.append(f"{word} → {use} ({english})")
    return found


NUMBER_RULES = (
    (
        re.compile(r"(?<![\w.,\-])(?<!GB/T )(\d{4,})(?![\d,]|\.\d)(?!\s*[万亿])"),
        lambda m: not (len(m.group(1)) == 4 and 1900 <= int(m.group(1)) <= 2099),
        "group the thousands: 1,078, 50,826",
    ),
    (re.compile(r"\d\s+%"), None, "no space before %"),
    (re.compile(r"\d\s+～|～\s+\d"), None, "a range is 0.31～0.39, without spaces"),
    (re.compile(r"\d\s*–\s*\d"), None, "a range is 0.31～0.39 or 0.31 到 0.39, not an en dash"),
)


def find_number_format(text: str) -> list[str]:
    found = []
    for pattern, keep, rule in NUMBER_RULES:
        for match in pattern.finditer(text):
            if keep is None or keep(match):
                found.append(f"{match.group(0)!r}: {rule}")
    return found


# ---------------------------------------------------------------- the checks themselves
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("第 4 章的汇聚层", ["汇聚 → 池化 (pooling)", "汇聚层 → 池化层 (pooling layer)"]),
        ("下面的单元格", ["单元格 → 代码单元 (cell (of a notebook))"]),
        ("离瞎猜不远", ["瞎猜 → 随机猜测 (chance level (random guessing))"]),
        ("更平滑的函数", ["平滑的 → 光滑 (smooth (function))", "更平滑 → 光滑 (smooth (function))"]),
        ("用了标签平滑的运行", []),
        ("累积分布函数的值", []),  # 分布函数 inside the book's own term
        ("标签平滑与 Dropout（随机失活）", []),
        ("He 初始化（也称 Kaiming 初始化）", []),
        ("**编码器–解码器注意力**（也称交叉注意力）", []),
        (
            "这就是交叉注意力（也称编码器–解码器注意力）",
            ["交叉注意力 → 编码器–解码器注意力 (encoder–decoder attention (cross-attention))"],
        ),
        ("Dropout 即暂退法", ["暂退法 → Dropout (dropout)"]),
    ],
)
def test_find_avoided(text, expected):
    assert sorted(find_avoided(text)) == sorted(expected)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("有 1,078 张图像，8,474 个参数，4830 亿个权重，2015 年，ResNet-1001，GB/T 15835", 0),
        ("有 1078 张图像", 1),
        ("共 50826 个", 1),
        ("错误率 8.75%，", 0),
        ("错误率 8.75 %，", 1),
        ("降到 0.31～0.39", 0),
        ("降到 0.31 ～ 0.39", 1),
        ("在 0.141–0.163 之间", 1),
        ("大网络（64-256-256-10）", 0),
        ("损失 0.0533，误差 0.00946", 0),
    ],
)
def test_find_number_format(text, bad):
    assert len(find_number_format(text)) == bad, find_number_format(text)


def test_every_avoided_rendering_is_a_real_alternative():
    rows = glossary.load()
    chosen = {row["zh"] for row in rows}
    for word, use, english in _avoided():
        assert word != use and word not in chosen, f"{english}: {word} is also a chosen term"


# ---------------------------------------------------------------- the chapters
@pytest.mark.parametrize("path", ZH_CHAPTERS, ids=lambda p: p.stem)
def test_chinese_chapter_uses_the_glossary_terms(path):
    found = [f"cell {i}: {f}" for i, text in _cells(path) for f in find_avoided(text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", ZH_CHAPTERS, ids=lambda p: p.stem)
def test_chinese_chapter_writes_numbers_one_way(path):
    found = [f"cell {i}: {f}" for i, text in _cells(path) for f in find_number_format(text)]
    assert not found, "\n".join(found)
