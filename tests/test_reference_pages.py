"""The reference matter in a browser: glossary, errata, notation, API and references.

Each page, in each language and in the light and the dark colour scheme, is
opened in headless Chromium from the built site (``make book``) with every
request outside it blocked (the fixtures are in ``conftest.py``). The checks are what a reader would notice:

- the page loads without a failed request and follows the reader's scheme;
- its main content (the table, the entries) is shown;
- every cell of its tables, and the first paragraph, is readable: the WCAG
  contrast ratio of the text against the background it is drawn on is at
  least 4.5 (a table with its own light background in a dark page fails it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
MIN_CONTRAST = 4.5

# page -> the selector of its main content (the language's own half where a page has two)
PAGES = {
    "90_glossary": "div.dl-{lang} table.dl-glossary",
    "91_errata": "div.dl-{lang} table.dl-errata",
    "92_notation": "article table",
    "93_api": "table.dl-api-map",
    "94_references": "article .citation, article div.bibliography, article dl.citation",
}

# For each element: its text colour and the first opaque background behind it.
_COLOURS = """(selector) => {
    const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
    const background = e => {
        for (; e; e = e.parentElement) {
            const c = rgba(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const lum = c => {
        const [r, g, b] = c.map(v => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const out = [];
    for (const e of document.querySelectorAll(selector)) {
        if (!e.textContent.trim() || e.offsetParent === null) continue;
        const fg = rgba(getComputedStyle(e).color).slice(0, 3), bg = background(e);
        const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
        out.push({text: e.textContent.trim().slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05)});
    }
    return out;
}"""


@pytest.mark.book
def test_the_contrast_check_fails_on_unreadable_text(browser):
    """Grey on grey is caught; black on white passes."""
    page = browser.new_page()
    page.set_content(
        '<p id="bad" style="color:#777;background:#666">faint</p>'
        '<p id="good" style="color:#000;background:#fff">clear</p>'
    )
    bad = page.evaluate(_COLOURS, "#bad")[0]["ratio"]
    good = page.evaluate(_COLOURS, "#good")[0]["ratio"]
    page.close()
    assert bad < MIN_CONTRAST <= good
    assert good == pytest.approx(21.0)


@pytest.mark.book
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_reference_page_reads_in_both_schemes(offline_context, server, name, lang, scheme):
    path = HTML / "chapters" / lang / f"{name}.html"
    assert path.is_file(), f"{path.relative_to(ROOT)} was not built"
    page = offline_context(color_scheme=scheme).new_page()
    page.goto(f"{server}chapters/{lang}/{name}.html")
    page.locator(PAGES[name].format(lang=lang)).first.wait_for(state="visible")
    mode = page.evaluate("() => document.documentElement.dataset.theme")
    assert mode == scheme, f"theme {mode!r} in a {scheme} browser"
    cells = page.evaluate(_COLOURS, "article td, article th, article p, article dd, article dt")
    assert cells, "no text found in the article"
    faint = [c for c in cells if c["ratio"] < MIN_CONTRAST]
    assert not faint, f"{lang}/{name} ({scheme}): text with contrast below {MIN_CONTRAST}: {faint[:5]}"
