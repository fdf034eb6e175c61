"""The package as a whole: declared dependencies, import without side effects, version."""

import ast
import sys
import tomllib
from pathlib import Path

import dlbook

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "code" / "dlbook"
# imported only inside a live notebook (widgets, HTML display), never by the tests' code paths
OPTIONAL = {"ipywidgets", "IPython", "PIL"}
# the import name of a distribution, where it differs
IMPORT_NAMES = {"matplotlib": {"matplotlib", "cycler"}}


def _third_party_imports() -> dict[str, str]:
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "dlbook":
                    found.setdefault(top, path.name)
    return found


def test_every_import_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set()
    for dep in project["dependencies"]:
        dist = dep.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip()
        declared |= IMPORT_NAMES.get(dist, {dist})
    imports = _third_party_imports()
    assert {"numpy", "scipy", "tqdm"} <= set(imports)  # the scan sees what it must
    missing = {name: where for name, where in imports.items() if name not in declared | OPTIONAL}
    assert not missing, f"imported by dlbook but not in pyproject.toml's dependencies: {missing}"


def test_version_comes_from_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert dlbook.__version__ == project["version"]
