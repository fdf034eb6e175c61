"""Downloads, launch buttons, dark mode and print (``_ext/dlbook_publish.py``).

The first half needs no build: the whole-book archive written from the
repository (what it holds, that its notebooks have no outputs, that ``make
lab`` finds everything it needs once unzipped, that a chapter runs from it),
the launch settings taken from the environment, the configuration. The second
half (mark ``book``) reads ``_build/html`` like ``tests/test_site.py`` and uses
its fixtures: the archive in the built site and its links, each chapter's
``.ipynb`` download, and in headless Chromium the figures and explorers in dark
mode and the print stylesheet.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import dlbook_publish as pub  # noqa: E402

import test_site as site  # noqa: E402 - its fixtures and helpers

# a page that may not leave 127.0.0.1 (tests/test_site.py; server and browser are in conftest.py)
page = site.page
HTML, _parse = site.HTML, site._parse

ARCHIVE = HTML / "_downloads" / pub.ARCHIVE_NAME
EN_CH1 = "chapters/en/01_activations.html"
ZH_CH1 = "chapters/zh/01_activations.html"


def _source_notebooks() -> list[str]:
    return sorted(
        f"chapters/{lang}/{p.name}"
        for lang in ("en", "zh")
        for p in (ROOT / "chapters" / lang).glob("*.ipynb")
    )


def _archive_notebooks(zf: zipfile.ZipFile) -> dict[str, dict]:
    top = pub.ARCHIVE_TOP + "/"
    return {
        name[len(top) :]: json.loads(zf.read(name))
        for name in zf.namelist()
        if name.startswith(top + "chapters/") and name.endswith(".ipynb")
    }


def _assert_no_outputs(notebooks: dict[str, dict]) -> None:
    for name, nb in notebooks.items():
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, name


# ---------------------------------------------------------------- the archive, from the repository
@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return pub.write_archive(ROOT, tmp_path_factory.mktemp("archive") / pub.ARCHIVE_NAME)


def test_clear_outputs_removes_outputs_counts_and_timings():
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# x"},
            {
                "cell_type": "code",
                "execution_count": 3,
                "metadata": {"tags": ["hide-input"], "execution": {"iopub.status.busy": "t"}},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
                "source": "print(1)",
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    cleared = json.loads(pub.clear_outputs(json.dumps(nb)))
    code = cleared["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["metadata"] == {"tags": ["hide-input"]}
    assert cleared["cells"][0] == nb["cells"][0]


def test_archive_holds_the_chapters_the_package_and_the_setup(archive):
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        notebooks = _archive_notebooks(zf)
    top = pub.ARCHIVE_TOP + "/"
    assert all(name.startswith(top) for name in names)
    inside = {name[len(top) :] for name in names}
    assert sorted(notebooks) == _source_notebooks()
    for name in ("pyproject.toml", "requirements.txt", "Makefile", "README.md"):
        assert name in inside, name
    package = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "code").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not any(s.endswith(".egg-info") for s in p.parts)
    }
    assert package and package <= inside, sorted(package - inside)
    assert "code/dlbook/resources/glossary.tsv" in inside
    assert not [n for n in inside if "__pycache__" in n or n.endswith(".pyc")]
    _assert_no_outputs(notebooks)


def test_archive_notebooks_equal_the_chapters_but_for_outputs(archive):
    with zipfile.ZipFile(archive) as zf:
        notebooks = _archive_notebooks(zf)
    for name, nb in notebooks.items():
        source = json.loads(pub.clear_outputs((ROOT / name).read_text(encoding="utf-8")))
        assert nb == source, name


def test_archive_is_reproducible(archive, tmp_path):
    again = pub.write_archive(ROOT, tmp_path / "again.zip")
    assert again.read_bytes() == archive.read_bytes()


def test_archive_of_an_incomplete_book_is_refused(tmp_path):
    (tmp_path / "chapters" / "en").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="pyproject.toml"):
        pub.write_archive(tmp_path, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_make_archive_writes_it():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^archive:.*\n\t(.*)\n", makefile, re.M)
    assert recipe, "no `archive` target in the Makefile"
    assert "_ext/dlbook_publish.py" in recipe.group(1)


@pytest.fixture(scope="module")
def unzipped(archive, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    return target / pub.ARCHIVE_TOP


def test_unzipped_archive_has_what_make_lab_needs(unzipped):
    """``make -n lab``: every prerequisite of the set-up and of ``lab`` is in the archive."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    result = subprocess.run(
        [make, "-n", "lab", "PYTHON=python3"], cwd=unzipped, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install --quiet -r requirements.txt" in result.stdout
    assert "-e ." in result.stdout  # the package from code/ (pyproject.toml)
    assert "jupyter lab chapters" in result.stdout


@pytest.mark.slow
def test_a_chapter_runs_from_the_unzipped_archive(unzipped):
    """The preface executes with the package of the archive (not the repository's)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = unzipped / "chapters" / "en" / "00_preface.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import dlbook\nprint(dlbook.__file__)"))
    env = {**os.environ, "PYTHONPATH": str(unzipped / "code")}
    old = os.environ.copy()
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        nbclient.NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert Path(printed.strip()).resolve().is_relative_to(unzipped.resolve()), printed


# ---------------------------------------------------------------- launch buttons
def test_no_launch_settings_keep_the_buttons_off():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    buttons = config["launch_buttons"]
    for key in ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url"):
        assert buttons[key] == "", key
    assert buttons["thebe"] is False
    assert buttons["notebook_interface"] == "jupyterlab"
    assert config["repository"]["url"] == ""
    assert config["sphinx"]["local_extensions"]["dlbook_publish"] == "_ext"
    options, problems = pub.launch_options({"launch_buttons": dict(buttons)}, {})
    assert options["launch_buttons"] == buttons and not problems


def test_launch_settings_come_from_the_environment():
    theme = {"launch_buttons": {"binderhub_url": "", "thebe": False}, "repository_branch": "main"}
    environ = {
        "DLBOOK_REPOSITORY_URL": "https://github.com/owner/book",
        "DLBOOK_BINDERHUB_URL": "https://mybinder.org",
        "DLBOOK_JUPYTERHUB_URL": " ",  # blank: left alone
        "DLBOOK_REPOSITORY_BRANCH": "published",
    }
    options, problems = pub.launch_options(theme, environ)
    assert not problems
    assert options["repository_url"] == "https://github.com/owner/book"
    assert options["repository_branch"] == "published"
    assert options["launch_buttons"] == {"binderhub_url": "https://mybinder.org", "thebe": False}
    assert theme["launch_buttons"]["binderhub_url"] == ""  # the input is not changed


def test_a_hub_without_a_repository_is_dropped_with_a_reason():
    options, problems = pub.launch_options({}, {"DLBOOK_JUPYTERHUB_URL": "https://hub.example.org"})
    assert options["launch_buttons"]["jupyterhub_url"] == ""
    assert len(problems) == 1 and "jupyterhub_url" in problems[0]


def test_binder_environment_installs_the_pins_and_the_package():
    binder = ROOT / ".binder"
    assert (binder / "requirements.txt").read_text(encoding="utf-8").split() == ["-r", "../requirements.txt"]
    assert (binder / "runtime.txt").read_text(encoding="utf-8").strip() == "python-3.11"
    post = binder / "postBuild"
    assert os.access(post, os.X_OK), "postBuild must be executable"
    assert "pip install --no-deps --no-build-isolation -e ." in post.read_text(encoding="utf-8")


def test_stylesheets_exist_and_print_keeps_pieces_whole():
    for name in (*pub.CSS_FILES, pub.PRINT_JS):
        assert (pub.STATIC / name).is_file(), name
    css = (pub.STATIC / "dlbook-print.css").read_text(encoding="utf-8")
    assert css.lstrip().startswith("/*") and "@media print" in css
    assert "break-inside: avoid" in css and ".dl-explorer" in css


# ---------------------------------------------------------------- the built site
def _chapter_pages() -> list[Path]:
    """The built pages of the notebooks (the API reference is a Markdown page, not a notebook)."""
    return sorted(p for lang in ("en", "zh") for p in (HTML / "chapters" / lang).glob("*.html")
                  if (ROOT / p.relative_to(HTML)).with_suffix(".ipynb").is_file())


@pytest.mark.book
def test_built_site_has_the_archive_without_outputs(server):
    assert ARCHIVE.is_file(), f"{ARCHIVE} is missing"
    with zipfile.ZipFile(ARCHIVE) as zf:
        names = {n.removeprefix(pub.ARCHIVE_TOP + "/") for n in zf.namelist()}
        notebooks = _archive_notebooks(zf)
    pages = _chapter_pages()
    assert pages, "no chapter pages were built"
    for path in pages:
        name = path.relative_to(HTML).with_suffix(".ipynb").as_posix()
        assert name in notebooks, f"{name} is not in the archive"
    for name in ("pyproject.toml", "requirements.txt", "Makefile", "README.md", "code/dlbook/__init__.py"):
        assert name in names, name
    _assert_no_outputs(notebooks)


@pytest.mark.book
def test_landing_page_links_the_archive_in_both_languages(server):
    links = [(attrs["href"], text) for attrs, text in _parse(HTML / "index.html").links if attrs.get("href")]
    archive = [(href, text) for href, text in links if href.endswith("_downloads/" + pub.ARCHIVE_NAME)]
    # one per language in the cards (the header's download menu has a third)
    cards = [
        (href, text) for href, text in archive if "Download the whole book" in text or "下载全书" in text
    ]
    assert len(cards) == 2 and cards[0][1] != cards[1][1], links
    for href, _ in archive:
        with urllib.request.urlopen(urllib.parse.urljoin(server, href)) as response:
            assert response.status == 200
            assert zipfile.is_zipfile(io.BytesIO(response.read()))


@pytest.mark.book
def test_every_chapter_offers_its_notebook_and_the_book(server):
    for path in _chapter_pages():
        rel = path.relative_to(HTML)
        hrefs = [attrs.get("href", "") for attrs, _ in _parse(path).links]
        notebook = [h for h in hrefs if h.endswith("_sources/" + rel.with_suffix(".ipynb").as_posix())]
        assert len(notebook) == 1, f"{rel}: no .ipynb download link"
        target = (path.parent / notebook[0]).resolve()
        assert target.is_file(), f"{rel}: {notebook[0]} is missing"
        source = ROOT / rel.with_suffix(".ipynb")
        assert json.loads(target.read_text(encoding="utf-8")) == json.loads(
            source.read_text(encoding="utf-8")
        )
        book = [h for h in hrefs if h.endswith("_downloads/" + pub.ARCHIVE_NAME)]
        assert len(book) == 1, f"{rel}: the download menu does not offer the whole book"
        assert (path.parent / book[0]).resolve() == ARCHIVE.resolve()


@pytest.mark.book
def test_offline_build_has_no_launch_buttons(server):
    for path in _chapter_pages():
        html = path.read_text(encoding="utf-8")
        assert "dropdown-launch-buttons" not in html and "mybinder" not in html, path.relative_to(HTML)


@pytest.mark.book
@pytest.mark.parametrize("chapter", [EN_CH1, ZH_CH1])
def test_download_menu_gives_the_notebook_offline(page, server, chapter):
    page.goto(server + chapter)
    page.locator(".dropdown-download-buttons > button").click()
    link = page.locator(".dropdown-download-buttons a[href$='.ipynb']")
    assert link.is_visible()
    book = page.locator(".dropdown-download-buttons a[href$='.zip']")
    assert book.is_visible()
    expected = "全书" if chapter == ZH_CH1 else "book"
    assert expected in book.inner_text()
    with page.expect_download() as download:
        link.click()
    nb = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert nb["cells"] and nb["nbformat"] == 4


# ---------------------------------------------------------------- dark mode and print, in Chromium
_LUMA = "rgb => { const [r, g, b] = rgb.match(/\\d+/g).map(Number); return 0.2126*r + 0.7152*g + 0.0722*b; }"


def _luma(image, box) -> float:
    """Mean luminance (0-255) of a region of a PIL image."""
    import numpy as np

    return float(np.asarray(image.crop(tuple(int(v) for v in box)).convert("L")).mean())


def _shot(page, locator):
    from PIL import Image

    locator.scroll_into_view_if_needed()
    page.wait_for_timeout(200)
    return Image.open(io.BytesIO(page.screenshot())), locator.bounding_box()


@pytest.fixture
def dark_page(offline_context):
    """A page of a context whose reader prefers dark colours (the theme follows it)."""
    return offline_context(color_scheme="dark").new_page()


@pytest.mark.book
@pytest.mark.parametrize("chapter", [EN_CH1, ZH_CH1])
def test_dark_mode_puts_figures_on_a_light_framed_card(dark_page, server, chapter):
    page = dark_page
    page.goto(server + chapter)
    assert page.locator("html").get_attribute("data-theme") == "dark"
    figure = page.locator(".bd-content .cell_output img:not(.dl-frame):visible").first
    assert figure.count() == 1, "no figure on the page"
    style = figure.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return {bg: s.backgroundColor, pad: parseFloat(s.paddingLeft),"
        " radius: parseFloat(s.borderTopLeftRadius), filter: s.filter}; }"
    )
    assert style["bg"] == "rgb(255, 255, 255)", style
    assert style["pad"] >= 6 and style["radius"] >= 6, style
    assert "contrast" not in style["filter"], style  # not the theme's dimming, which greys the white
    shot, box = _shot(page, figure)
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    # the card's margin is light, the page around it dark: the labels sit on light ground
    assert _luma(shot, (x + 1, y + 1, x + w - 1, y + 5)) > 200
    assert _luma(shot, (x + 1, y + h - 5, x + w - 1, y + h - 1)) > 200
    body = page.evaluate(f"() => ({_LUMA})(getComputedStyle(document.body).backgroundColor)")
    assert body < 60, body


@pytest.mark.book
@pytest.mark.parametrize("chapter", [EN_CH1, ZH_CH1])
def test_dark_mode_keeps_the_explorer_light_and_its_frame_unframed(dark_page, server, chapter):
    page = dark_page
    page.goto(server + chapter)
    explorer = page.locator(".dl-explorer:visible").first
    assert explorer.count() == 1
    bg = explorer.evaluate("el => getComputedStyle(el).backgroundColor")
    assert bg == "rgb(255, 255, 255)", bg
    frame = explorer.locator("img.dl-frame")
    frame_style = frame.evaluate(
        "el => { const s = getComputedStyle(el); return [s.filter, s.paddingLeft]; }"
    )
    assert frame_style == ["none", "0px"], frame_style
    shot, box = _shot(page, explorer)
    assert _luma(shot, (box["x"] + 2, box["y"] + 2, box["x"] + box["width"] - 2, box["y"] + 6)) > 200
    # the caption and the slider's value are dark on the light card
    value = explorer.locator("output.dl-value").first
    color = value.evaluate(f"el => ({_LUMA})(getComputedStyle(el).color)")
    assert color < 100, color


@pytest.mark.book
def test_light_mode_leaves_figures_as_they_are(page, server):
    page.goto(server + EN_CH1)
    assert page.locator("html").get_attribute("data-theme") == "light"
    figure = page.locator(".bd-content .cell_output img:not(.dl-frame):visible").first
    style = figure.evaluate("el => [getComputedStyle(el).filter, getComputedStyle(el).paddingLeft]")
    assert style == ["none", "0px"], style


@pytest.mark.book
@pytest.mark.parametrize("chapter", [EN_CH1, ZH_CH1])
def test_print_hides_the_chrome_and_keeps_figures_whole(page, server, chapter):
    page.goto(server + chapter)
    page.emulate_media(media="print")
    for selector in (
        ".bd-sidebar-primary",
        ".bd-sidebar-secondary",
        ".bd-header",
        ".article-header-buttons",
        ".dl-lang-switch",
        ".prev-next-area",
    ):
        hidden = page.locator(selector)
        assert all(not hidden.nth(i).is_visible() for i in range(hidden.count())), selector
    width = page.evaluate("document.documentElement.clientWidth")
    article = page.locator("article.bd-article").bounding_box()
    assert article["width"] >= 0.9 * width, (article, width)
    right = article["x"] + article["width"] + 1
    figures = page.locator(".bd-content .cell_output img, .bd-content figure img, .dl-explorer")
    assert figures.count() > 3
    for i in range(figures.count()):
        box = figures.nth(i).bounding_box()
        if box:
            assert box["x"] >= article["x"] - 1 and box["x"] + box["width"] <= right, (i, box, article)
    avoid = page.evaluate(
        "() => ['.cell_output img', '.dl-explorer', 'div.highlight', 'pre', '.cell_output']"
        ".map(s => document.querySelector(s)).filter(Boolean).map(el => getComputedStyle(el).breakInside)"
    )
    assert len(avoid) == 5 and set(avoid) == {"avoid"}, avoid
    wrap = page.evaluate("getComputedStyle(document.querySelector('div.cell_input pre')).whiteSpace")
    assert wrap == "pre-wrap"


@pytest.mark.book
def test_print_pdf_has_the_figures(page, server):
    """Chromium's own print to PDF: pages of the article (no sidebar pages), every figure in it."""
    page.goto(server + EN_CH1)
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages > 3
    images = page.locator(".bd-content .cell_output img").count()
    assert len(re.findall(rb"/Subtype\s*/Image", pdf)) >= images > 0


@pytest.mark.book
def test_a_dark_page_prints_in_light_colours(dark_page, server):
    page = dark_page
    page.goto(server + EN_CH1)
    assert page.locator("html").get_attribute("data-theme") == "dark"
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator("html").get_attribute("data-theme") == "light"
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert page.locator("html").get_attribute("data-theme") == "dark"


def test_module_loads_without_sphinx_for_make_archive():
    spec = importlib.util.spec_from_file_location("publish_copy", ROOT / "_ext" / "dlbook_publish.py")
    module = importlib.util.module_from_spec(spec)
    blocked = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "sphinx"}
    sys.modules["sphinx"] = None  # an import of sphinx would fail
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["sphinx"]
        sys.modules.update(blocked)
    assert module.ARCHIVE_NAME == pub.ARCHIVE_NAME


@pytest.mark.slow
def test_launch_buttons_appear_only_when_a_deployment_sets_them(tmp_path):
    """A one-page book built with and without the deployment's environment (execution off)."""
    book = tmp_path / "book"
    (book / "chapters" / "en").mkdir(parents=True)
    nb = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# One page\n\nText."}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (book / "chapters" / "en" / "01_page.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (book / "index.md").write_text("# Mini\n", encoding="utf-8")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: chapters/en/01_page\n", encoding="utf-8"
    )
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    mini = {
        "title": "mini",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "launch_buttons": config["launch_buttons"],
        "repository": config["repository"],
        "sphinx": {"local_extensions": {"dlbook_publish": str(ROOT / "_ext")}},
    }
    (book / "_config.yml").write_text(yaml.safe_dump(mini), encoding="utf-8")
    for name in ("pyproject.toml", "requirements.txt", "Makefile", "README.md"):
        shutil.copy(ROOT / name, book / name)
    (book / "code" / "dlbook").mkdir(parents=True)
    (book / "code" / "dlbook" / "__init__.py").write_text("", encoding="utf-8")
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed next to this Python")

    def build(**env) -> str:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DLBOOK_")}
        shutil.rmtree(book / "_build", ignore_errors=True)
        result = subprocess.run(
            [str(jb), "build", ".", "--builder", "html", "-W", "-n"],
            cwd=book,
            env={**clean, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return (book / "_build" / "html" / "chapters" / "en" / "01_page.html").read_text(encoding="utf-8")

    offline = build()
    assert "mybinder" not in offline and "dropdown-launch-buttons" not in offline
    assert (book / "_build" / "html" / "_downloads" / pub.ARCHIVE_NAME).is_file()
    deployed = build(
        DLBOOK_REPOSITORY_URL="https://github.com/owner/book", DLBOOK_BINDERHUB_URL="https://mybinder.org"
    )
    assert "https://mybinder.org/v2/gh/owner/book/main?urlpath=lab/tree/chapters/en/01_page.ipynb" in deployed
