"""The chapters as committed: twins that match, clean notebooks, clean Chinese.

Every chapter exists twice, ``chapters/en/X.ipynb`` and ``chapters/zh/X.ipynb``.
The code cells (source *and* metadata) are byte-identical, so the Chinese page
reuses the cached execution of the English one and both show the same
numbers. The markdown is written natively in each language, but its
language-independent skeleton — display maths, figures, MyST directives,
labels, cross-references, citations, heading levels — pairs up cell by cell.
These tests need no build and no kernel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import autocorrect_py
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
LANGS = ("en", "zh")

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# A MyST directive fence: ```{name} or :::{name}
DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\s*\{([\w:-]+)\}", re.M)
# A plain code fence (```python, ```bash, ```), whose content is not markdown.
CODE_FENCE = re.compile(r"^(`{3,})(?!\s*\{)[^\n]*\n.*?^\1\s*$", re.M | re.S)


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _names() -> list[str]:
    return sorted({p.name for lang in LANGS for p in (CHAPTERS / lang).glob("*.ipynb")})


def _pair(name: str) -> tuple[dict, dict]:
    return _notebook(CHAPTERS / "en" / name), _notebook(CHAPTERS / "zh" / name)


def _headings(cells: list[dict]) -> list[int]:
    levels = []
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            text = CODE_FENCE.sub("", _source(cell))
            levels += [len(m.group(1)) for m in re.finditer(r"^(#{1,6})\s", text, re.M)]
    return levels


def _maths(tex: str) -> str:
    """Display maths with whitespace normalised (it matters only between two letters/digits)."""
    tex = re.sub(r"\s+", " ", tex).strip()
    return re.sub(r"(?<![A-Za-z0-9]) | (?![A-Za-z0-9])", "", tex)


def structure(text: str) -> dict[str, list[str]]:
    """The language-independent skeleton of one markdown cell."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return {
        "display maths": sorted(_maths(m) for m in re.findall(r"\$\$(.+?)\$\$", text, re.S)),
        "directives": [m.group(2) for m in DIRECTIVE.finditer(text)],
        "images": sorted(
            re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text)
            + re.findall(r"\{(?:figure|image)\}\s+(\S+)", text)
        ),
        "labels": sorted(
            re.findall(r"^\(([\w:-]+)\)=\s*$", text, re.M)
            + re.findall(r"^:(?:label|name):\s*(\S+)", text, re.M)
        ),
        "references": sorted(
            re.findall(r"\{(?:ref|numref|eq|doc)\}`(?:[^`<]*<)?([^`>]+)>?`", text)
        ),
        "citations": sorted(
            key.strip()
            for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text)
            for key in keys.split(",")
        ),
    }


def untranslated(text: str) -> bool:
    """Prose with no Chinese in it: at least 8 English words once maths, code and links go."""
    bare = re.sub(r"\$\$.+?\$\$|\$[^$]+\$|`[^`]*`|\([^)]*\)|<[^>]+>", " ", text, flags=re.S)
    bare = CODE_FENCE.sub(" ", bare)
    bare = "\n".join(
        line for line in bare.splitlines() if not DIRECTIVE.match(line) and not line.startswith(":")
    )
    return len(re.findall(r"[A-Za-z]{3,}", bare)) >= 8 and not CJK.search(bare)


NAMES = _names()


def test_there_are_chapters():
    assert NAMES, f"no notebooks under {CHAPTERS}/en or {CHAPTERS}/zh"


# ---------------------------------------------------------------- the table of contents
def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def test_every_toc_entry_exists():
    missing = [
        f
        for f in _toc_files()
        if not any((ROOT / f).with_suffix(s).is_file() for s in (".ipynb", ".md"))
    ]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_notebook_is_in_the_toc():
    listed = {str(Path(f).with_suffix("")) for f in _toc_files()}
    notebooks = {  # JupyterLab's checkpoints (make lab) are not chapters
        str(p.relative_to(ROOT).with_suffix(""))
        for p in sorted(CHAPTERS.glob("**/*.ipynb"))
        if ".ipynb_checkpoints" not in p.parts
    }
    assert not notebooks - listed, f"notebooks missing from _toc.yml: {sorted(notebooks - listed)}"


def test_toc_mirrors_the_languages():
    files = _toc_files()
    en = [Path(f).name for f in files if f.startswith("chapters/en/")]
    zh = [Path(f).name for f in files if f.startswith("chapters/zh/")]
    assert en == zh, f"the English and Chinese parts list different chapters: {en} vs {zh}"


# ---------------------------------------------------------------- pairs of twins
@pytest.mark.parametrize("name", NAMES)
def test_twin_exists(name):
    missing = [lang for lang in LANGS if not (CHAPTERS / lang / name).is_file()]
    assert not missing, f"{name}: no {'/'.join(missing)} version"


def _twins_or_skip(name: str) -> tuple[dict, dict]:
    if not all((CHAPTERS / lang / name).is_file() for lang in LANGS):
        pytest.skip(f"{name} has no twin (reported by test_twin_exists)")
    return _pair(name)


@pytest.mark.parametrize("name", NAMES)
def test_code_cells_identical(name):
    en, zh = _twins_or_skip(name)
    code_en = [_source(c) for c in en["cells"] if c["cell_type"] == "code"]
    code_zh = [_source(c) for c in zh["cells"] if c["cell_type"] == "code"]
    assert len(code_en) == len(code_zh), (
        f"{name}: {len(code_en)} code cells in en, {len(code_zh)} in zh"
    )
    for i, (a, b) in enumerate(zip(code_en, code_zh, strict=True), 1):
        assert a == b, f"{name}: code cell {i} differs between en and zh"


# The book's code column shows 77 characters at a 1280-pixel-wide window (the
# theme's three-column layout); longer lines scroll sideways and get cut off.
MAX_CODE_LINE = 79


@pytest.mark.parametrize("name", NAMES)
def test_code_lines_fit_the_page(name):
    nb = _notebook(CHAPTERS / "en" / name)
    long = [
        (i, len(line))
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code"
        for line in _source(cell).splitlines()
        if len(line) > MAX_CODE_LINE
    ]
    assert not long, f"{name}: code lines longer than {MAX_CODE_LINE} (cell, length): {long}"


@pytest.mark.parametrize("name", NAMES)
def test_code_cell_metadata_identical(name):
    en, zh = _twins_or_skip(name)
    meta_en = [c.get("metadata", {}) for c in en["cells"] if c["cell_type"] == "code"]
    meta_zh = [c.get("metadata", {}) for c in zh["cells"] if c["cell_type"] == "code"]
    for i, (a, b) in enumerate(zip(meta_en, meta_zh, strict=False), 1):
        assert a == b, (
            f"{name}: metadata of code cell {i} differs ({a} vs {b}); "
            "the zh twin would be executed a second time"
        )


@pytest.mark.parametrize("name", NAMES)
def test_same_cell_types(name):
    en, zh = _twins_or_skip(name)
    kinds_en = [c["cell_type"] for c in en["cells"]]
    kinds_zh = [c["cell_type"] for c in zh["cells"]]
    if kinds_en != kinds_zh:
        first = next(
            (i for i, (a, b) in enumerate(zip(kinds_en, kinds_zh, strict=False)) if a != b),
            min(len(kinds_en), len(kinds_zh)),
        )
        pytest.fail(
            f"{name}: cell sequences differ ({len(kinds_en)} en vs {len(kinds_zh)} zh cells, "
            f"first difference at cell {first + 1}); pair the twins cell by cell"
        )


@pytest.mark.parametrize("name", NAMES)
def test_same_heading_levels(name):
    en, zh = _twins_or_skip(name)
    assert _headings(en["cells"]) == _headings(zh["cells"]), f"{name}: heading structure differs"


@pytest.mark.parametrize("name", NAMES)
def test_markdown_skeletons_match(name):
    en, zh = _twins_or_skip(name)
    problems = []
    for i, (a, b) in enumerate(zip(en["cells"], zh["cells"], strict=False), 1):
        if a["cell_type"] != "markdown" or b["cell_type"] != "markdown":
            continue
        sa, sb = structure(_source(a)), structure(_source(b))
        problems += [
            f"cell {i}: {key} differ (en {sa[key]} vs zh {sb[key]})"
            for key in sa
            if sa[key] != sb[key]
        ]
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_chinese_cells_are_in_chinese(name):
    if not (CHAPTERS / "zh" / name).is_file():
        pytest.skip("no zh version")
    cells = _notebook(CHAPTERS / "zh" / name)["cells"]
    bad = [
        i
        for i, c in enumerate(cells, 1)
        if c["cell_type"] == "markdown" and untranslated(_source(c))
    ]
    assert not bad, f"zh/{name}: markdown cells {bad} have English prose and no Chinese"


# ---------------------------------------------------------------- each notebook
ALL = [(lang, name) for name in NAMES for lang in LANGS if (CHAPTERS / lang / name).is_file()]


@pytest.mark.parametrize(("lang", "name"), ALL)
def test_no_stored_outputs(lang, name):
    cells = _notebook(CHAPTERS / lang / name)["cells"]
    dirty = [
        i
        for i, c in enumerate(cells, 1)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{lang}/{name}: code cells {dirty} carry outputs or execution counts"


@pytest.mark.parametrize(("lang", "name"), ALL)
def test_kernelspec_is_python3(lang, name):
    spec = _notebook(CHAPTERS / lang / name).get("metadata", {}).get("kernelspec", {})
    assert spec.get("name") == "python3", f"{lang}/{name}: kernelspec {spec!r}, expected python3"


ZH = [name for name in NAMES if (CHAPTERS / "zh" / name).is_file()]


@pytest.mark.parametrize("name", ZH)
def test_chinese_markdown_is_clean(name):
    """autocorrect: spaces between CJK and Latin/digits, full-width punctuation."""
    cells = _notebook(CHAPTERS / "zh" / name)["cells"]
    found = []
    for i, cell in enumerate(cells, 1):
        if cell["cell_type"] != "markdown":
            continue
        for line in autocorrect_py.lint_for(_source(cell), "md").lines:
            found.append(f"cell {i} line {line.line}: {line.old.strip()!r} -> {line.new.strip()!r}")
    assert not found, f"zh/{name}: autocorrect would change\n" + "\n".join(found[:30])


# ---------------------------------------------------------------- the checker itself
def test_structure_sees_what_matters():
    figure = "```{figure} img/a.png\n:name: fig-x\n```"
    en = f"See {{cite:p}}`a2010, b2011` and {{numref}}`fig-x`.\n\n$$ f(x) =  x $$\n\n{figure}"
    zh = f"见 {{cite:p}}`b2011,a2010` 和 {{numref}}`fig-x`。\n\n$$f(x)=x$$\n\n{figure}"
    assert structure(en) == structure(zh)
    assert structure(en.replace("a2010", "c2012")) != structure(zh)
    assert structure(zh.replace("$$f(x)=x$$", "$$f(x)=2x$$")) != structure(en)


def test_untranslated_flags_english_only():
    english = "This paragraph was left in English by mistake and nobody noticed it at all."
    assert untranslated(english)
    assert not untranslated("这一段是中文，其中提到 ReLU 和 $x$。")
    assert not untranslated("```{bibliography}\n:filter: docname in docnames\n```")


# A repository path named in the prose, e.g. `dlbook/resources/glossary.tsv`.
PATH_IN_PROSE = re.compile(r"`((?:code/)?dlbook/[\w/.-]+\.\w+|chapters/[\w/.-]+\.\w+)`")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", _names())
def test_files_named_in_the_prose_exist(lang, name):
    cells = _notebook(CHAPTERS / lang / name)["cells"]
    named = {m.group(1) for c in cells if c.get("cell_type") == "markdown"
             for m in PATH_IN_PROSE.finditer(_source(c))}
    missing = [p for p in named if not ((ROOT / p).exists() or (ROOT / "code" / p).exists())]
    assert not missing, f"{lang}/{name} names files that do not exist: {missing}"


def test_path_check_sees_a_missing_file():
    assert PATH_IN_PROSE.search("read from `dlbook/data/glossary.tsv` at start").group(1) == (
        "dlbook/data/glossary.tsv")
    assert not (ROOT / "code" / "dlbook" / "data" / "glossary.tsv").exists()
