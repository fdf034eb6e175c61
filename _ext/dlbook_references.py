"""One bibliography: the references page lists every work, each with links to the chapters citing it.

Loaded by Jupyter Book through ``_config.yml``::

    sphinx:
      local_extensions:
        dlbook_references: _ext

``references.bib`` is the book's one bibliography. Each chapter ends with a
``{bibliography}`` filtered to its own citations; the page
``chapters/<lang>/94_references`` has ``{bibliography}`` with ``:all:``. This
extension adds, under every entry of that page, links to the chapters *of the
page's language* that cite the work. They are computed while the page is
written, from the ``{cite}`` roles that sphinxcontrib-bibtex recorded when it
read the chapters, so the list cannot drift from the chapters. Each link leads to
the first place in the chapter where the work is cited.

A work that no chapter cites is listed in :data:`FURTHER_READING`, with the
chapter it belongs to; its entry on the page says "further reading for chapter
N". The build warns (and the strict build fails) when an entry of
``references.bib`` is neither cited nor listed there, or is listed but cited.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
CSS = "dlbook_references.css"

REFERENCES_PAGE = re.compile(r"^chapters/(en|zh)/94_references$")
CHAPTER = re.compile(r"^chapters/(en|zh)/(\d\d)_\w+$")

# Works in references.bib that no chapter cites in its text, deliberately kept as
# further reading: key -> (the chapter they belong to, topic in English, in Chinese).
FURTHER_READING: dict[str, tuple[str, str, str]] = {
    "mcculloch1943logical": ("01_activations", "the threshold neuron", "阈值神经元"),
    "bridle1990probabilistic": ("03_training", "the name and reading of softmax", "softmax 的名称与概率解释"),
    "krizhevsky2010convolutional": ("01_activations", "ReLU6", "ReLU6"),
    "collobert2011natural": ("01_activations", "hard tanh", "hard tanh"),
    "chung2014empirical": ("06_recurrent", "GRU against LSTM", "GRU 与 LSTM 的对比"),
    "press2017using": ("09_transformer", "weight tying", "权重绑定"),
}

WORDS = {
    "en": {"cited": "Cited in", "further": "Further reading for", "chapter": "chapter {n}"},
    "zh": {"cited": "引用于", "further": "延伸阅读", "chapter": "第 {n} 章"},
}


def citing_chapters(citation_refs: Any) -> dict[str, list[tuple[str, str]]]:
    """``{key: [(docname, first citation id), ...]}``: the chapters citing each key, in reading order.

    ``citation_refs`` is sphinxcontrib-bibtex's list of ``CitationRef``
    (``docname``, ``citation_ref_id``, ``targets``); only chapter pages
    (``chapters/<lang>/NN_*``) count, and a chapter appears once per key, with
    the id of its first citation of it (the refs are in reading order per page).
    """
    found: dict[str, dict[str, str]] = {}
    for ref in citation_refs:
        if not CHAPTER.match(ref.docname) or REFERENCES_PAGE.match(ref.docname):
            continue
        for target in ref.targets:
            found.setdefault(target.key, {}).setdefault(ref.docname, ref.citation_ref_id)
    return {key: sorted(pages.items()) for key, pages in found.items()}


def chapter_number(docname: str) -> int:
    match = CHAPTER.match(docname)
    return int(match.group(2)) if match else -1


class AnchorCitations(SphinxPostTransform):
    """Keep an HTML anchor where each ``{cite}`` stands.

    sphinxcontrib-bibtex gives every citation an id (``CitationRef.citation_ref_id``),
    but the resolved link does not keep it. An empty ``<span id=…>`` before the link
    does, so the references page can link to the very place a chapter cites a work.
    Runs before the bibliography and the references are resolved (priorities 5, 10).
    """

    default_priority = 4
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("refdomain") == "cite" and node.get("ids"):
                anchor = nodes.inline("", "", ids=list(node["ids"]), classes=["dl-cite-anchor"])
                node.parent.insert(node.parent.index(node), anchor)
                node["ids"] = []


class CitedByLinks(SphinxPostTransform):
    """Under each entry of a references page: the chapters of its language that cite it.

    Runs after sphinxcontrib-bibtex's ``BibliographyTransform`` (priority 5) has
    put the entries in the page.
    """

    default_priority = 6
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        page = self.env.docname
        match = REFERENCES_PAGE.match(page)
        if not match:
            return
        lang = match.group(1)
        domain = self.env.get_domain("cite")
        keys_by_id = {
            node["ids"][0]: key
            for bib_key, bibliography in domain.bibliographies.items()
            if bib_key.docname == page
            for key, node in bibliography.citation_nodes.items()
        }
        cited = citing_chapters(domain.citation_refs)
        for entry in list(self.document.findall(nodes.citation)):
            key = keys_by_id.get(entry["ids"][0]) if entry["ids"] else None
            if key is None:
                continue
            entry["classes"] += ["dl-ref-entry", f"dl-ref-{key}"]
            entry["dl-key"] = key
            mine = [(doc, ref) for doc, ref in cited.get(key, []) if doc.startswith(f"chapters/{lang}/")]
            if mine:
                entry += self.cited_in(lang, page, mine)
            elif key in FURTHER_READING and f"chapters/{lang}/{FURTHER_READING[key][0]}" in self.env.all_docs:
                entry += self.further_reading(lang, page, key)

    def link(self, page: str, target: str, anchor: str | None, text: str) -> nodes.reference:
        uri = self.app.builder.get_relative_uri(page, target) + (f"#{anchor}" if anchor else "")
        title = self.env.titles[target].astext() if target in self.env.titles else target
        return nodes.reference("", text, internal=True, refuri=uri, reftitle=title, classes=["dl-cited-in"])

    def cited_in(self, lang: str, page: str, chapters: list[tuple[str, str]]) -> nodes.paragraph:
        words = WORDS[lang]
        para = nodes.paragraph(classes=["dl-cited-by"])
        para += nodes.Text(words["cited"] + ("：" if lang == "zh" else ": "))
        for i, (doc, ref) in enumerate(chapters):
            if i:
                para += nodes.Text("、" if lang == "zh" else ", ")
            title = self.env.titles[doc].astext() if doc in self.env.titles else doc
            text = words["chapter"].format(n=chapter_number(doc))
            label = f"{text} {title}" if lang == "zh" else f"{text.capitalize()}, {title}"
            para += self.link(page, doc, ref, label)
        return para

    def further_reading(self, lang: str, page: str, key: str) -> nodes.paragraph:
        name, en, zh = FURTHER_READING[key]
        doc = f"chapters/{lang}/{name}"
        para = nodes.paragraph(classes=["dl-cited-by", "dl-further-reading"])
        text = WORDS[lang]["chapter"].format(n=chapter_number(doc))
        if lang == "zh":
            para += self.link(page, doc, None, text)
            para += nodes.Text(f"的延伸阅读（{zh}）")
        else:
            para += nodes.Text(f"{WORDS['en']['further']} ")
            para += self.link(page, doc, None, text)
            para += nodes.Text(f" ({en})")
        return para


def check_coverage(app: Sphinx, env: Any) -> None:
    """Warn when an entry of the bibliography is neither cited nor listed as further reading."""
    if not any(REFERENCES_PAGE.match(d) for d in env.found_docs):
        return
    domain = env.get_domain("cite")
    keys = set(domain.bibdata.data.entries.keys())
    cited = set(citing_chapters(domain.citation_refs))
    for key in sorted(keys - cited - set(FURTHER_READING)):
        logger.warning(
            "dlbook_references: %s in references.bib is cited by no chapter; cite it or add it "
            "to FURTHER_READING in _ext/dlbook_references.py",
            key,
            type="dlbook",
        )
    for key in sorted(set(FURTHER_READING) & cited):
        logger.warning(
            "dlbook_references: %s is cited by a chapter; remove it from FURTHER_READING", key, type="dlbook"
        )
    for key in sorted(set(FURTHER_READING) - keys):
        logger.warning("dlbook_references: FURTHER_READING lists %s, which is not in references.bib", key)


def on_config_inited(app: Sphinx, config: Any) -> None:
    if str(STATIC) not in config.html_static_path:  # dlbook_site may have added it
        config.html_static_path = [*config.html_static_path, str(STATIC)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    app.add_post_transform(AnchorCitations)
    app.add_post_transform(CitedByLinks)
    app.connect("env-check-consistency", check_coverage)
    app.add_css_file(CSS)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
