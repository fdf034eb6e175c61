"""Rebuild ``NotoSansCJKsc-subset.otf`` from the full Noto Sans CJK SC font.

A maintenance script, not part of the runtime package. Run it from the
repository root when a chapter or a module starts using a Chinese character
that the subset lacks (``tests/test_plot.py`` says so)::

    pip download --no-deps mplfonts==0.0.11 -d /tmp/mplfonts
    unzip -o /tmp/mplfonts/mplfonts-0.0.11-py3-none-any.whl \\
        'mplfonts/fonts/NotoSansCJKsc-Regular.otf' -d /tmp/mplfonts
    .venv/bin/python code/dlbook/fonts/make_subset.py \\
        /tmp/mplfonts/mplfonts/fonts/NotoSansCJKsc-Regular.otf

The glyph set is

* the ``--top`` (default 3500) most frequent Chinese characters, where a
  character's frequency is the sum of the frequencies of the words that
  contain it in jieba's bundled dictionary (``jieba/dict.txt``);
* every CJK character in ``chapters/**/*.ipynb``, ``index.md``,
  ``code/dlbook/**/*.py``, the glossary and the figure texts
  (``resources/figures_zh.tsv``), whatever its frequency;
* CJK symbols and punctuation (U+3000–U+303F), full-width forms
  (U+FF00–U+FFEF), general punctuation (U+2010–U+2027) and printable ASCII.

The font stays under the SIL Open Font License 1.1 (``OFL.txt``); the subset
keeps the original name table, including its copyright and licence fields.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # code/dlbook/fonts -> repository root
OUT = HERE / "NotoSansCJKsc-subset.otf"

# Ideographs and the CJK blocks a Chinese text may use (kana included for safety).
CJK = re.compile(
    r"[\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
HAN = re.compile(r"[\u4e00-\u9fff]")


def frequent_characters(top: int) -> list[str]:
    """The ``top`` most frequent Han characters by jieba's word frequencies."""
    import jieba  # noqa: PLC0415 - only this script needs it

    counts: collections.Counter[str] = collections.Counter()
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            word, freq = parts[0], int(parts[1])
            for ch in HAN.findall(word):
                counts[ch] += freq
    return [ch for ch, _ in counts.most_common(top)]


def book_characters() -> set[str]:
    """Every CJK character in the chapters, the package sources and the glossary."""
    chars: set[str] = set()
    for nb in sorted((ROOT / "chapters").glob("**/*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8")).get("cells", []):
            source = cell.get("source", "")
            chars.update(CJK.findall("".join(source) if isinstance(source, list) else source))
    for path in sorted((ROOT / "code" / "dlbook").glob("**/*.py")):
        chars.update(CJK.findall(path.read_text(encoding="utf-8")))
    for table in ("glossary.tsv", "figures_zh.tsv"):
        path = ROOT / "code" / "dlbook" / "resources" / table
        chars.update(CJK.findall(path.read_text(encoding="utf-8")))
    chars.update(CJK.findall((ROOT / "index.md").read_text(encoding="utf-8")))
    return chars


def fixed_ranges() -> set[str]:
    ranges = [(0x20, 0x7E), (0x2010, 0x2027), (0x3000, 0x303F), (0xFF01, 0xFF5E), (0xFF5F, 0xFFEF)]
    return {chr(c) for lo, hi in ranges for c in range(lo, hi + 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the full NotoSansCJKsc-Regular.otf")
    parser.add_argument("--top", type=int, default=3500, help="frequent characters to keep")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    chosen = set(frequent_characters(args.top)) | book_characters()
    wanted = chosen | fixed_ranges()  # the ranges have unassigned code points: skipped quietly
    font = TTFont(args.source)
    cmap = font.getBestCmap()
    missing = sorted(ch for ch in chosen if ord(ch) not in cmap)
    if missing:
        print(f"not in the source font (skipped): {''.join(missing)}", file=sys.stderr)
    codepoints = sorted(ord(ch) for ch in wanted if ord(ch) in cmap)

    options = subset.Options()
    options.name_IDs = ["*"]  # keep copyright (0), licence (13) and licence URL (14)
    options.name_languages = ["*"]
    options.hinting = False  # matplotlib renders with FreeType's autohinter anyway
    options.drop_tables += ["DSIG", "vhea", "vmtx", "VORG"]
    options.layout_features = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)
    font.save(args.out)
    size = args.out.stat().st_size
    print(f"{args.out.name}: {len(codepoints)} code points, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
