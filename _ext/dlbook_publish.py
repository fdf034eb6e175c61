"""Publishing the book: downloads, launch buttons, dark mode and print.

Loaded by Jupyter Book through ``_config.yml`` (``sphinx: local_extensions:``)
next to ``dlbook_site``. What it does:

* **The whole book as one download.** After an HTML build it writes
  ``_build/html/_downloads/dlbook-book.zip``: the chapters of both languages
  (notebooks with their outputs removed), the ``dlbook`` package (``code/``),
  ``pyproject.toml``, ``requirements.txt``, the ``Makefile`` and the
  ``README.md`` under one folder ``dlbook-book/``, so that ``unzip`` and
  ``make lab`` give a working JupyterLab. The archive is reproducible (sorted
  entries, fixed timestamps). The landing page links it; every chapter's
  download menu (the theme's, which already offers the page's ``.ipynb``)
  gets a second entry for it. ``make archive`` writes the same file without
  a build: ``python3 _ext/dlbook_publish.py _build/dlbook-book.zip``.
* **Launch buttons from the environment.** ``_config.yml`` keeps every launch
  URL empty, so the offline build shows no launch button. A deployment sets
  ``DLBOOK_REPOSITORY_URL`` (e.g. ``https://github.com/owner/repo``) and
  ``DLBOOK_BINDERHUB_URL`` (``https://mybinder.org``) and/or
  ``DLBOOK_JUPYTERHUB_URL``; ``DLBOOK_REPOSITORY_BRANCH`` overrides the
  branch. The values go into the theme options sphinx-book-theme reads
  (``launch_buttons``, ``repository_url``). A hub without a repository is
  ignored, with a warning (the theme needs both).
* **Dark mode and print.** ``_ext/static/dlbook-dark.css`` frames the
  figures (white PNGs) and the explorers in dark mode so their labels stay
  readable; ``_ext/static/dlbook-print.css`` is the print stylesheet (no
  sidebars or buttons, figures, code and explorers kept whole on a page).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
ROOT = HERE.parent  # the repository

ARCHIVE_NAME = "dlbook-book.zip"
ARCHIVE_DIR = "_downloads"  # under the HTML output folder
ARCHIVE_TOP = "dlbook-book"  # the folder the archive unpacks into
# the files of the archive besides chapters/ and code/
ARCHIVE_FILES = ("pyproject.toml", "requirements.txt", "Makefile", "README.md")
ARCHIVE_LANGUAGES = ("en", "zh")
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries carry no build time: the archive is reproducible

CSS_FILES = ("dlbook-dark.css", "dlbook-print.css")
PRINT_JS = "dlbook-print.js"

# environment variable -> (key in html_theme_options, key in its "launch_buttons" or None)
LAUNCH_ENV = {
    "DLBOOK_REPOSITORY_URL": ("repository_url", None),
    "DLBOOK_REPOSITORY_BRANCH": ("repository_branch", None),
    "DLBOOK_BINDERHUB_URL": ("launch_buttons", "binderhub_url"),
    "DLBOOK_JUPYTERHUB_URL": ("launch_buttons", "jupyterhub_url"),
}
HUBS = ("binderhub_url", "jupyterhub_url")

# the entry added to each page's download menu, in the page's language
ARCHIVE_BUTTON = {
    "en": ("book .zip", "Download the whole book: notebooks of both languages and the dlbook code"),
    "zh": ("全书 .zip", "下载全书：两种语言的笔记本和 dlbook 代码"),
}


# ---------------------------------------------------------------------------
# The archive
# ---------------------------------------------------------------------------
def clear_outputs(text: str) -> str:
    """A notebook (JSON text) without outputs, execution counts or execution timings."""
    notebook = json.loads(text)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _wanted(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return (
        path.is_file()
        and not SKIP_PARTS.intersection(parts)
        and not any(part.endswith(".egg-info") for part in parts)
        and path.suffix not in SKIP_SUFFIXES
    )


def archive_members(root: Path) -> dict[str, Path]:
    """``{name in the archive (below the top folder): file}`` for the book at ``root``."""
    members: dict[str, Path] = {}
    for lang in ARCHIVE_LANGUAGES:
        for path in sorted((root / "chapters" / lang).glob("*.ipynb")):
            members[f"chapters/{lang}/{path.name}"] = path
    for path in sorted((root / "code").rglob("*")):
        if _wanted(path, root):
            members[path.relative_to(root).as_posix()] = path
    for name in ARCHIVE_FILES:
        if (root / name).is_file():
            members[name] = root / name
    return members


def write_archive(root: Path, target: Path) -> Path:
    """Write the whole-book archive of the book at ``root`` to ``target``; return ``target``.

    Raises ``FileNotFoundError`` when the book has no chapters, no package or
    a missing top-level file (the archive would not run).
    """
    members = archive_members(root)
    missing = [name for name in ARCHIVE_FILES if name not in members]
    if not any(name.startswith("chapters/") for name in members):
        missing.append("chapters/*/*.ipynb")
    if "code/dlbook/__init__.py" not in members:
        missing.append("code/dlbook/__init__.py")
    if missing:
        raise FileNotFoundError(f"the book at {root} lacks {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(members):
            data = members[name].read_bytes()
            if name.endswith(".ipynb"):
                data = clear_outputs(data.decode("utf-8")).encode("utf-8")
            info = zipfile.ZipInfo(f"{ARCHIVE_TOP}/{name}", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    partial.replace(target)
    return target


# ---------------------------------------------------------------------------
# Launch buttons
# ---------------------------------------------------------------------------
def launch_options(theme_options: dict[str, Any], environ: dict[str, str]) -> tuple[dict, list[str]]:
    """The theme options with the launch settings of ``environ`` filled in.

    Returns ``(options, problems)``; ``options`` is a new dict (the input is not
    changed). Empty or unset variables leave the configured values alone. A hub
    URL without a repository URL is dropped and reported: sphinx-book-theme
    builds its links from the repository.
    """
    options = dict(theme_options)
    buttons = dict(options.get("launch_buttons") or {})
    for var, (key, sub) in LAUNCH_ENV.items():
        value = environ.get(var, "").strip()
        if not value:
            continue
        if sub is None:
            options[key] = value
        else:
            buttons[sub] = value
    problems = []
    if not options.get("repository_url"):
        for hub in HUBS:
            if buttons.get(hub):
                problems.append(f"{hub} is set but there is no repository URL: no launch button")
                buttons[hub] = ""
    options["launch_buttons"] = buttons
    return options, problems


def on_config_inited(app, config) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    if str(STATIC) not in map(str, config.html_static_path):
        config.html_static_path = [*config.html_static_path, str(STATIC)]
    options, problems = launch_options(dict(config.html_theme_options or {}), dict(os.environ))
    for problem in problems:
        logger.warning("dlbook_publish: %s (set DLBOOK_REPOSITORY_URL)", problem, type="dlbook")
    config.html_theme_options = options


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------
def add_archive_button(app, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Put the whole-book archive into the page's download menu, after the page's own files."""
    buttons = context.get("header_buttons")
    pathto = context.get("pathto")
    if not buttons or pathto is None:
        return
    lang = "zh" if pagename.startswith("chapters/zh/") else "en"
    text, tooltip = ARCHIVE_BUTTON[lang]
    for group in buttons:
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": pathto(f"{ARCHIVE_DIR}/{ARCHIVE_NAME}", 1),
                    "text": text,
                    "tooltip": tooltip,
                    "icon": "fas fa-file-zipper",
                    "label": "download-book-button",
                }
            )


def on_build_finished(app, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    target = Path(app.outdir) / ARCHIVE_DIR / ARCHIVE_NAME
    try:
        write_archive(Path(app.srcdir), target)
    except FileNotFoundError as err:
        logging.getLogger(__name__).warning("dlbook_publish: no archive: %s", err, type="dlbook")


def setup(app) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    # after sphinx-book-theme fills the header buttons (priority 501)
    app.connect("html-page-context", add_archive_button, priority=550)
    app.connect("build-finished", on_build_finished)
    for name in CSS_FILES:
        app.add_css_file(name)
    app.add_js_file(PRINT_JS, loading_method="defer")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str]) -> int:
    """``python3 _ext/dlbook_publish.py [TARGET]``: write the archive (``make archive``)."""
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / ARCHIVE_NAME
    path = write_archive(ROOT, target)
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
    print(f"{path}: {count} files, {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
