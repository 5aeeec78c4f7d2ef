"""A Sphinx extension for how the built site behaves in a reader's browser.

* Math renders offline, from the book's own copy of MathJax (below).
* Badges are served from the build: the labs' "Open in Colab" badge image is a remote SVG in
  the notebooks (Colab and GitHub show it), replaced in the pages by ``_static/colab-badge.svg``
  so that the page loads nothing from the internet.
* The bibliography is labelled as the text cites: ``[Vaswani et al., 2017]``, not pybtex's
  default alpha labels (``[VSP+17]``) beside author-year citations (``bibtex_default_style:
  authoryear`` in ``_config.yml`` selects :class:`AuthorYearStyle`).
* "Going deeper" blocks: everything between ``{deeper-start} Title`` and ``{deeper-end}`` (prose
  and executed code cells alike) is folded into a ``<details class="deeper">`` that a reader
  opens on demand, so a chapter's main path stands alone (see :class:`FoldDeeperBlocks`).
* Each script is included once: sphinx-thebe registers its configuration script again on every
  read pass, and the duplicate ``const`` declaration is a JavaScript error on every page.

Sphinx's default loads MathJax from a CDN, which a reader without internet (or a test browser
on a closed machine) cannot reach: the equations then stay raw TeX. This extension serves
MathJax 3 from the build instead: it points ``mathjax_path`` at ``_static/mathjax`` and copies
``node_modules/mathjax/es5`` there (``scripts/setup.sh`` installs it with ``npm ci``).

Switch back to the CDN with ``LLM_INTERNALS_MATHJAX=cdn make book`` (a smaller build folder,
for a site that is only ever read online).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.errors import ExtensionError
from sphinx.transforms import SphinxTransform
from sphinx.util.docutils import SphinxDirective

MATHJAX_ENV = "LLM_INTERNALS_MATHJAX"
BUNDLE = Path("node_modules") / "mathjax" / "es5"
ENTRY = "mathjax/tex-chtml.js"


def _source(app) -> Path | None:
    """The MathJax bundle to copy, or None when the CDN was asked for."""
    if os.environ.get(MATHJAX_ENV, "local").strip().lower() == "cdn":
        return None
    for root in (Path(app.srcdir), Path(__file__).resolve().parent.parent):
        if (root / BUNDLE / "tex-chtml.js").is_file():
            return root / BUNDLE
    raise ExtensionError(
        f"MathJax is not installed ({BUNDLE} is missing): run `npm ci` in the repository "
        f"(scripts/setup.sh does), or build with {MATHJAX_ENV}=cdn to load it from the CDN."
    )


def _use_local_copy(app) -> None:
    if app.builder.format != "html":
        return
    source = _source(app)
    if source is None:
        return
    app.config.mathjax_path = ENTRY
    app.env.course_mathjax_source = str(source)


def _copy_bundle(app, exception) -> None:
    source = getattr(app.env, "course_mathjax_source", None)
    if exception is None and source and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        shutil.copytree(source, target, dirs_exist_ok=True)


# Remote badge images in the pages' sources and the copy in the book's _static folder each becomes.
LOCAL_BADGES = {"https://colab.research.google.com/assets/colab-badge.svg": "/_static/colab-badge.svg"}


class LocalBadges(SphinxTransform):
    """Point badge images at the book's own copies (a leading / is relative to the book's root)."""

    default_priority = 500

    def apply(self, **kwargs) -> None:
        for image in self.document.findall(nodes.image):
            local = LOCAL_BADGES.get(image.get("uri", ""))
            if local:
                image["uri"] = local


# -- "Going deeper" blocks ------------------------------------------------------------------------
DEEPER_PREFIX = "Going deeper: "


class deeper(nodes.General, nodes.Element):
    """A folded block of forensic material: ``<details class="deeper">`` with its title as summary."""


class deeper_start(nodes.General, nodes.Element):
    """Marks where a deeper block begins (replaced by :class:`deeper` when the page is read)."""


class deeper_end(nodes.General, nodes.Element):
    """Marks where a deeper block ends."""


class DeeperStart(SphinxDirective):
    """``{deeper-start} Title``: the start of a folded "Going deeper" block (its title is required)."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"name": directives.unchanged}

    def run(self):
        node = deeper_start(title=self.arguments[0])
        self.set_source_info(node)
        self.add_name(node)  # :name: is a label: {ref}`the fold <name>` links to the block
        return [node]


class DeeperEnd(SphinxDirective):
    """``{deeper-end}``: the end of the block the last ``{deeper-start}`` opened."""

    def run(self):
        node = deeper_end()
        self.set_source_info(node)
        return [node]


class FoldDeeperBlocks(SphinxTransform):
    """Move everything between a ``deeper-start`` and its ``deeper-end`` into one :class:`deeper` node.

    Both markers must have the same parent: a block cannot contain a heading (a section break
    would separate them). Code cells between them stay executed; only their display is folded.
    """

    default_priority = 200

    def apply(self, **kwargs) -> None:
        for start in list(self.document.findall(deeper_start)):
            parent = start.parent
            index = parent.index(start)
            end = next((i for i, child in enumerate(parent.children[index + 1:], index + 1)
                        if isinstance(child, (deeper_end, deeper_start))), None)
            where = f"{start.source or self.env.docname}:{start.line}"
            if end is None or isinstance(parent.children[end], deeper_start):
                raise ExtensionError(
                    f"{where}: the deeper block {start['title']!r} has no {{deeper-end}} before the next heading "
                    f"or block; close it with {{deeper-end}} (a deeper block cannot contain a heading).")
            block = deeper(title=start["title"], ids=start["ids"], names=start["names"])
            block.source, block.line = start.source, start.line
            for target in start["ids"]:
                self.document.ids[target] = block
            block.extend(parent.children[index + 1:end])
            parent.children[index:end + 1] = [block]
            block.parent = parent
        for stray in list(self.document.findall(deeper_end)):
            raise ExtensionError(f"{stray.source or self.env.docname}:{stray.line}: a {{deeper-end}} without its "
                                 f"{{deeper-start}}; remove it or open the block above it.")


def _visit_deeper_html(self, node) -> None:
    ids = f' id="{node["ids"][0]}"' if node["ids"] else ""
    self.body.append(f'<details class="deeper"{ids}><summary>{DEEPER_PREFIX}{self.encode(node["title"])}</summary>'
                     f'<div class="deeper-body">')


def _depart_deeper_html(self, node) -> None:
    self.body.append("</div></details>")


def _visit_deeper_other(self, node) -> None:
    pass


def _depart_deeper_other(self, node) -> None:
    pass


def _deduplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts, seen = context.get("script_files", []), set()
    unique = []
    for script in scripts:
        # sphinx-thebe's copies differ only in a filename of None against '' (both mean "inline")
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def _surname(person) -> str:
    # Organisations are written in braces in references.bib ("{Gemma Team}"): keep them whole.
    return " ".join(person.prelast_names + person.last_names).replace("{", "").replace("}", "")


def author_year_label(entry) -> str:
    """``Vaswani et al., 2017``, ``Kudo and Richardson, 2018``, ``Sennrich, 2016``: the label of a bibliography entry."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    if not names:
        who = entry.fields.get("title", entry.key).replace("{", "").replace("}", "")
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


def _register_bibliography_style() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = [author_year_label(entry) for entry in sorted_entries]
            seen: dict[str, int] = {}
            for label in labels:  # two papers of one first author in one year: 2024a, 2024b
                seen[label] = seen.get(label, 0) + 1
            suffix: dict[str, int] = {}
            for label in labels:
                if seen[label] > 1:
                    suffix[label] = suffix.get(label, 0) + 1
                    yield label + "abcdefghijklmnopqrstuvwxyz"[suffix[label] - 1]
                else:
                    yield label

    class AuthorYearStyle(UnsrtStyle):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle, force=True)


def setup(app):
    _register_bibliography_style()
    app.add_transform(LocalBadges)
    app.add_node(deeper, html=(_visit_deeper_html, _depart_deeper_html),
                 latex=(_visit_deeper_other, _depart_deeper_other), text=(_visit_deeper_other, _depart_deeper_other))
    app.add_node(deeper_start)
    app.add_node(deeper_end)
    app.add_directive("deeper-start", DeeperStart)
    app.add_directive("deeper-end", DeeperEnd)
    app.add_transform(FoldDeeperBlocks)
    app.connect("html-page-context", _deduplicate_scripts, priority=900)
    app.connect("builder-inited", _use_local_copy)
    app.connect("build-finished", _copy_bundle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
