"""The API reference of ``dlbook``, generated from the package at build time.

Loaded by Jupyter Book through ``_config.yml`` (``sphinx: local_extensions:``),
next to Sphinx's ``autodoc``, ``autosummary`` and ``napoleon``
(``sphinx: extra_extensions:``).

A page asks for the reference with an empty directive block::

    ```{dlbook-api}
    ```

Before the page is parsed (``source-read``), the block is replaced by MyST
markdown written from the package as it is now, so the reference cannot drift
from the code:

* **The map** "module → chapters → tests": for every public module, the
  chapters whose code cells use it (``dl.<module>``, ``from dlbook import
  <module>``, ``from dlbook.<module> import …``; a top-level shortcut such as
  ``dl.gradcheck`` counts for the module that defines it) and the test files
  that import it the same ways. The English chapters are scanned (the Chinese
  twins have the same code); the links go to the chapters of the page's
  language.
* **One section per module** (``dlbook`` and every ``dlbook/<name>.py`` not
  starting with ``_``): the module docstring, an autosummary table and one
  autodoc entry for every name in the module's ``__all__``, in that order. A
  name re-exported from another module (``dlbook.gradcheck``) gets a short
  entry pointing to its home; the modules listed in ``dlbook.__all__`` are
  linked to their sections (their entry is the module's own,
  ``module-dlbook.x``). A module without ``__all__`` is a warning (the strict
  build fails): its public names are what ``__all__`` declares.
* **Displays one equation per line.** Docstrings write ``a = b, \\quad c = d``
  on one line, wider than the column: on pages with API entries such a display
  becomes an ``aligned`` block, one equation per line.

Chinese pages (``chapters/zh/…``) get the same reference with ``:no-index:``:
no duplicate object descriptions, and their cross-references resolve to the
entries of the English page. The section labels (``api-<module>``) are the
same on both pages; ``dlbook_site`` keeps each page's links in its language.

References to names outside ``dlbook`` (``ndarray``, ``int``, the ``(N, D)``
of a napoleon type) have no target without intersphinx, which this offline
book cannot use: they are rendered as plain text instead of failing the
nitpicky build. An unresolved reference to a ``dlbook`` name still warns.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "dlbook"
ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
TESTS = ROOT / "tests"
STATIC = Path(__file__).resolve().parent / "static"  # dlbook-api.css
BLOCK = re.compile(r"^(`{3,}|:{3,})\{dlbook-api\}[^\n]*\n(?:.*?\n)??\1[ \t]*$", re.M | re.S)
MAX_VALUE_REPR = 60  # longer constants (dicts, tables) are shown without their value

WORDS = {
    "en": {
        "map": "Module → chapters → tests",
        "map_intro": (
            "Which chapters run each module and which test files check it, found in the "
            "chapters' code cells and in the tests' imports when this page was built."
        ),
        "module": "Module",
        "chapters": "Chapters",
        "tests": "Tests",
        "none": "—",
        "contents": "Contents",
        "alias": "Re-exported from {target}; documented there.",
        "submodules": "Its modules, each documented in its own section below: ",
        "end": ".",
    },
    "zh": {
        "map": "模块 → 章节 → 测试",
        "map_intro": (
            "每个模块由哪些章节运行、由哪些测试文件检查：本页构建时从各章的代码单元和"
            "测试的导入语句中找出。"
        ),
        "module": "模块",
        "chapters": "章节",
        "tests": "测试",
        "none": "—",
        "contents": "目录",
        "alias": "从 {target} 重新导出，说明见该处。",
        "submodules": "它的各个模块（下文每个模块一节）：",
        "end": "。",
    },
}


# ---------------------------------------------------------------------------
# What the package declares
# ---------------------------------------------------------------------------
def public_modules(package: str = PACKAGE) -> list[str]:
    """The package and its public submodules (no leading underscore), sorted."""
    pkg = importlib.import_module(package)
    subs = sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(pkg.__path__)
        if not info.name.startswith("_")
    )
    return [package, *subs]


def public_names(module: ModuleType) -> list[str]:
    """The module's ``__all__`` (a warning and the public globals if it has none)."""
    names = getattr(module, "__all__", None)
    if names is None:
        logger.warning(
            "dlbook_api: %s has no __all__; its public names are undeclared",
            module.__name__,
            type="dlbook",
            subtype="api",
        )
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_")
            and not inspect.ismodule(obj)
            and getattr(obj, "__module__", module.__name__) == module.__name__
        ]
    return list(names)


def home_of(obj: Any) -> str | None:
    """The public module that defines ``obj`` (``dlbook.core`` for ``gradcheck``)."""
    if inspect.ismodule(obj):
        return obj.__name__
    home = getattr(obj, "__module__", None)
    if isinstance(home, str) and (home == PACKAGE or home.startswith(PACKAGE + ".")):
        return home
    return None


# ---------------------------------------------------------------------------
# Who uses what
# ---------------------------------------------------------------------------
_MISSING = object()


def _member(module: ModuleType, name: str):
    """``module.name``, importing it when it is a submodule not loaded yet; ``_MISSING`` if neither."""
    try:
        return getattr(module, name)
    except AttributeError:
        try:
            return importlib.import_module(f"{module.__name__}.{name}")
        except ImportError:
            return _MISSING


def _resolve(attr: str, package: ModuleType) -> set[str]:
    """The modules that ``dlbook.<attr>`` stands for: the module, or the home of a shortcut."""
    obj = _member(package, attr)
    if obj is _MISSING:
        return set()
    if inspect.ismodule(obj):
        return {obj.__name__}
    home = home_of(obj)
    return {PACKAGE, home} if home else {PACKAGE}


def _parse(source: str) -> ast.AST | None:
    # IPython magics and shell escapes are not Python
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def modules_used(source: str) -> set[str]:
    """The ``dlbook`` modules a piece of Python code uses, by its imports and attributes.

    ``import dlbook as dl`` + ``dl.losses.mse`` -> ``dlbook.losses``;
    ``from dlbook import regions as R`` -> ``dlbook.regions``;
    ``from dlbook.recurrent import RNN`` -> ``dlbook.recurrent``;
    ``dl.gradcheck`` -> ``dlbook`` and ``dlbook.core`` (its home).
    """
    tree = _parse(source)
    if tree is None:
        return set()
    package = importlib.import_module(PACKAGE)
    used: set[str] = set()
    aliases: set[str] = set()  # local names bound to the package itself
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE:
                    aliases.add(alias.asname or PACKAGE)
                elif alias.name.startswith(PACKAGE + "."):
                    used.add(".".join(alias.name.split(".")[:2]))
                    if alias.asname is None:
                        aliases.add(PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == PACKAGE:
                for alias in node.names:
                    used |= _resolve(alias.name, package)
            elif node.module.startswith(PACKAGE + "."):
                used.add(".".join(node.module.split(".")[:2]))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            used |= _resolve(node.attr, package)
    return used


def _code_cells(path: Path) -> str:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    return "\n\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells
    )


@dataclass
class Usage:
    """For one module: the chapters (file stems) and test files that use it."""

    chapters: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)


def usage_map(modules: list[str], chapters: Path = CHAPTERS, tests: Path = TESTS) -> dict:
    """``{module: Usage}`` from the English chapters' code cells and the tests' imports."""
    found = {name: Usage() for name in modules}
    for path in sorted((chapters / "en").glob("*.ipynb")):
        for name in modules_used(_code_cells(path)) & found.keys():
            found[name].chapters.append(path.stem)
    for path in sorted(tests.glob("*.py")):
        for name in modules_used(path.read_text(encoding="utf-8")) & found.keys():
            found[name].tests.append(path.name)
    return found


def sources_scanned(chapters: Path = CHAPTERS, tests: Path = TESTS) -> list[Path]:
    return [*sorted((chapters / "en").glob("*.ipynb")), *sorted(tests.glob("*.py"))]


# ---------------------------------------------------------------------------
# The generated page
# ---------------------------------------------------------------------------
def label(modname: str) -> str:
    """The section label of a module: ``api-core``; ``api-dlbook`` for the package."""
    return "api-" + (modname.split(".", 1)[1] if "." in modname else modname)


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _signature(obj: Any) -> str:
    """The call signature without annotations (the home entry shows them)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "()" if callable(obj) else ""
    empty = inspect.Parameter.empty
    params = [p.replace(annotation=empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _short_value(obj: Any) -> bool:
    return len(repr(obj)) <= MAX_VALUE_REPR


def entries(modname: str, zh: bool) -> list[str]:
    """reStructuredText: the module docstring, its summary table and one entry per name."""
    module = importlib.import_module(modname)
    words = WORDS["zh" if zh else "en"]
    no_index = ["   :no-index:"] if zh else []
    names = public_names(module)
    rst = [f".. automodule:: {modname}", *no_index, ""]
    own, lines, submodules = [], [], []
    for name in names:
        full = f"{modname}.{name}"
        obj = _member(module, name)
        if obj is _MISSING:
            logger.warning(
                "dlbook_api: %s.__all__ names %r, which it does not define",
                modname,
                name,
                type="dlbook",
                subtype="api",
            )
            continue
        home = home_of(obj)
        if inspect.ismodule(obj):
            # its entry is the module's own (id module-dlbook.x), in its section
            submodules.append(f":mod:`{obj.__name__}`")
            continue
        if home and home != modname and _kind(obj) != "data":
            role = "class" if _kind(obj) == "class" else "func"
            target = f":{role}:`{home}.{obj.__name__}`"
            directive = "class" if role == "class" else "function"
            # the name relative to the module that automodule made current
            lines += [f".. py:{directive}:: {name}{_signature(obj)}", *no_index]
            lines += ["   :no-contents-entry:", ""]
            lines += ["   " + words["alias"].format(target=target), ""]
            continue
        own.append(full)
        kind = _kind(obj)
        if kind == "class":
            lines += [f".. autoclass:: {full}", "   :members:", "   :show-inheritance:"]
        elif kind == "function":
            lines += [f".. autofunction:: {full}"]
        else:
            lines += [f".. autodata:: {full}"]
            if not _short_value(obj):
                lines += ["   :no-value:"]
        lines += [*no_index, ""]
    if submodules:
        rst += [words["submodules"] + ", ".join(submodules) + words["end"], ""]
    if own:
        rst += [f".. rubric:: {words['contents']}", "", ".. autosummary::", "   :nosignatures:", ""]
        rst += [f"   {full.rsplit('.', 1)[1]}" for full in own] + [""]
    return rst + lines


def _chapter_links(stems: list[str], words: dict) -> str:
    return ", ".join(f"{{doc}}`{stem}`" for stem in stems) or words["none"]


def _test_names(files: list[str], words: dict) -> str:
    return ", ".join(f"`{name}`" for name in files) or words["none"]


def generate(zh: bool) -> str:
    """The MyST markdown that replaces the ``dlbook-api`` block."""
    words = WORDS["zh" if zh else "en"]
    modules = public_modules()
    found = usage_map(modules)
    out = [f"({label('map')})=", f"## {words['map']}", "", words["map_intro"], ""]
    out += [
        "```{list-table}",
        ":header-rows: 1",
        ":class: dl-api-map",
        "",
        f"* - {words['module']}",
        f"  - {words['chapters']}",
        f"  - {words['tests']}",
    ]
    for modname in modules:
        use = found[modname]
        out += [
            f"* - {{ref}}`{modname} <{label(modname)}>`",
            f"  - {_chapter_links(use.chapters, words)}",
            f"  - {_test_names(use.tests, words)}",
        ]
    out += ["```", ""]
    for modname in modules:
        out += [f"({label(modname)})=", f"## `{modname}`", "", "```{eval-rst}"]
        out += entries(modname, zh)
        out += ["```", ""]
    return "\n".join(out)


def is_zh(docname: str) -> bool:
    return docname.startswith("chapters/zh/")


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    text = source[0]
    if "{dlbook-api}" not in text:
        return
    if not BLOCK.search(text):
        logger.warning("dlbook_api: %s: malformed {dlbook-api} block", docname, type="dlbook")
        return
    generated = generate(is_zh(docname))
    source[0] = BLOCK.sub(lambda _: generated, text, count=1)
    # rebuild this page when a chapter or a test changes (autodoc notes the modules)
    for path in sources_scanned():
        app.env.note_dependency(str(path))


@functools.cache
def dlbook_names() -> frozenset[str]:
    """Every name the package exports or defines (not the ones it imports, like ``Path``)."""
    names = set()
    for modname in public_modules():
        module = importlib.import_module(modname)
        names |= set(getattr(module, "__all__", ()))
        names |= {
            n
            for n, obj in vars(module).items()
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and home_of(obj) == modname
        }
    return frozenset(names)


def on_missing_reference(app: Sphinx, env, node, contnode) -> nodes.Node | None:
    """Render references to names outside dlbook (``ndarray``, ``int``) as plain text."""
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", "")).lstrip("~.")
    if target == PACKAGE or target.startswith(PACKAGE + "."):
        if any(part.startswith("_") for part in target.split(".")):
            return contnode  # a private helper (``-> _Recurrent``) has no entry
        return None  # a public dlbook name that does not resolve is a real error
    if target.rsplit(".", 1)[-1] in dlbook_names():
        return None
    return contnode


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list) -> None:
    """Show a private base class (``_Recurrent``) as its own bases, which readers can look up."""
    found: list = []

    def add(cls: type) -> None:
        if cls.__name__.startswith("_"):
            for base in cls.__bases__:
                add(base)
        elif cls not in found:
            found.append(cls)

    for base in list(bases):
        add(base)
    bases[:] = found


# A separator between two equations of one display: ", \quad" or "; \qquad".
SEPARATOR = re.compile(r"([,;])\s*\\q?quad(?![A-Za-z])\s*")


def split_equations(tex: str) -> list[str]:
    r"""The equations of a display written on one line, one per part.

    Splits at a comma or semicolon followed by ``\quad``/``\qquad`` outside
    braces and environments; a display that already has line breaks or
    alignment (``\\``, ``&`` at the top level) is left as it is.
    """
    depth, env, cuts, i = 0, 0, [], 0
    while i < len(tex):
        if tex.startswith("\\begin{", i):
            env += 1
        elif tex.startswith("\\end{", i):
            env -= 1
        char = tex[i]
        if char == "\\" and i + 1 < len(tex):
            if depth == 0 and env == 0 and tex[i + 1] == "\\":
                return [tex]
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and env == 0:
            if char == "&":
                return [tex]
            match = SEPARATOR.match(tex, i)
            if match:
                cuts.append((match.start() + 1, match.end()))
        i += 1
    if not cuts:
        return [tex]
    parts, start = [], 0
    for end, resume in cuts:
        parts.append(tex[start:end].strip())
        start = resume
    parts.append(tex[start:].strip())
    return [p for p in parts if p]


class SplitLongDisplays(SphinxTransform):
    r"""One equation per line in the displays of docstrings.

    Docstrings write several equations on one line (``a = b, \quad c = d``),
    which is wider than the book's column. On pages with API entries, such a
    display becomes one left-aligned line per equation (an ``aligned`` block).
    """

    default_priority = 700

    def apply(self, **kwargs: Any) -> None:
        if not any(True for _ in self.document.findall(addnodes.desc)):
            return
        for node in list(self.document.findall(nodes.math_block)):
            if node.get("nowrap") or node.get("label"):
                continue
            given = [p.strip() for p in node.astext().split("\n\n") if p.strip()]
            parts = [part for tex in given for part in split_equations(tex)]
            if len(parts) > len(given):
                lines = " \\\\\n".join("& " + part for part in parts)
                node.children = [nodes.Text(f"\\[\\begin{{aligned}}\n{lines}\n\\end{{aligned}}\\]")]
                node["nowrap"] = True


def on_config_inited(app: Sphinx, config) -> None:
    static = str(STATIC)
    if static not in [str(p) for p in config.html_static_path]:
        config.html_static_path = [*config.html_static_path, static]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    app.connect("source-read", on_source_read)
    app.connect("autodoc-process-bases", public_bases)
    app.add_transform(SplitLongDisplays)
    app.connect("missing-reference", on_missing_reference)
    app.add_css_file("dlbook-api.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
