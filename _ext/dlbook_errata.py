"""The errata appendix's style: the table of ``dlbook.errata.table()`` (chapters 91).

Adds ``_ext/static/dlbook_errata.css`` to every page (the table itself is
notebook output, so no directive is needed). The static folder is the book's
own (``dlbook_site`` adds it too; adding it twice is avoided here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config

STATIC = Path(__file__).resolve().parent / "static"


def on_config_inited(app: Sphinx, config: Config) -> None:
    paths = [str(p) for p in config.html_static_path]
    if str(STATIC) not in paths:
        config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    app.add_css_file("dlbook_errata.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
