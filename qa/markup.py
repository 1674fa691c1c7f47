"""The main content of an HTML page as text, with its headings.

What a reader came for, not the page's furniture: when the page marks its main
content (``<main>``, ``role="main"``), only that is kept; navigation (``nav``, ARIA
navigation, banner, search and complementary roles), page headers and footers
outside an article, sidebars (``aside``) and permalink anchors (Sphinx's and
MkDocs' "¶") are dropped everywhere. Code blocks keep their lines; table cells are
kept apart by a space; each block element becomes a paragraph.

Headings are ``h1``-``h6`` and the terms of definition lists that name what they
define (a Sphinx signature such as ``class csv.DictReader(f, ...)``: a ``dt`` with
an ``id``), which sit below every heading level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from qa.blocks import BlockText
from qa.documents import Heading

HIDDEN = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "nav", "aside", "form",
          "button", "select", "textarea"}
# Page furniture when outside an article or the main content; an article's own header keeps its title.
FURNITURE = {"header", "footer"}
HIDDEN_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar", "toolbar"}
PERMALINK_CLASSES = {"headerlink", "anchor-link", "anchorjs-link", "permalink"}
BLOCKS = {
    "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "section", "article", "header", "footer", "blockquote", "pre", "hr", "main", "figure", "figcaption", "body",
    "caption", "details", "summary",
}
CELLS = {"td", "th"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
TERM_LEVEL = 7  # a definition term: below h6, one deeper per enclosing definition list


@dataclass
class _Element:
    tag: str
    hidden: bool
    main: bool
    article: bool
    pre: bool


@dataclass
class _Block:
    parts: list[str] = field(default_factory=list)
    level: int | None = None
    main: bool = False
    pre: bool = False

    def text(self) -> str:
        joined = "".join(self.parts).replace("\u00b6", "")
        if self.pre:
            return "\n".join(line.rstrip() for line in joined.splitlines() if line.strip())
        return " ".join(joined.split())


class _MainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Element] = [_Element("", False, False, False, False)]
        self.blocks: list[_Block] = [_Block()]
        self.title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        given = {name: value or "" for name, value in attrs}
        parent = self.stack[-1]
        main = parent.main or tag == "main" or given.get("role") == "main"
        article = parent.article or tag == "article"
        hidden = parent.hidden or _hides(tag, given, main or article)
        if tag in CELLS and not hidden:
            self.blocks[-1].parts.append(" ")
        if tag in BLOCKS:
            level = HEADING_LEVELS.get(tag)
            if tag == "dt" and "id" in given:
                level = TERM_LEVEL + sum(e.tag == "dl" for e in self.stack) - 1
            self._open_block(level, main, parent.pre or tag == "pre")
        if tag not in VOID:
            self.stack.append(_Element(tag, hidden, main, article, parent.pre or tag == "pre"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in VOID or not any(e.tag == tag for e in self.stack[1:]):
            return  # a stray end tag closes nothing
        while self.stack.pop().tag != tag:
            pass  # elements left open inside it (an unclosed <p> or <li>) end with it
        if tag in BLOCKS:
            top = self.stack[-1]
            self._open_block(None, top.main, top.pre)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        if not self.stack[-1].hidden:
            self.blocks[-1].parts.append(data)

    def _open_block(self, level: int | None, main: bool, pre: bool) -> None:
        if self.blocks[-1].parts or self.blocks[-1].level is not None:
            self.blocks.append(_Block())
        block = self.blocks[-1]
        block.level, block.main, block.pre = level, main, pre


def _hides(tag: str, attributes: dict[str, str], in_content: bool) -> bool:
    """Whether an element and all inside it are furniture rather than content."""
    if tag in HIDDEN or (tag in FURNITURE and not in_content):
        return True
    if attributes.get("role") in HIDDEN_ROLES or "hidden" in attributes or attributes.get("aria-hidden") == "true":
        return True
    return tag == "a" and bool(PERMALINK_CLASSES & set(attributes.get("class", "").split()))


@dataclass(frozen=True)
class PageText:
    """What an HTML page says: its title, main text, and the headings in that text."""

    title: str
    text: str
    headings: tuple[Heading, ...]


def page_text(markup: str) -> PageText:
    """The title, main text and headings of an HTML page; paragraphs separated by blank lines.

    The title is the page's ``<title>``, or its first ``h1`` where the title only adds
    the site's name to it."""
    parser = _MainText()
    parser.feed(markup)
    parser.close()
    blocks = parser.blocks
    if any(b.main for b in blocks):
        blocks = [b for b in blocks if b.main]
    text = BlockText()
    for block in blocks:
        text.add(block.text(), block.level)
    title = " ".join("".join(parser.title).split())
    first_heading = next((t for t, h in zip(text.heading_texts(), text.headings) if h.level == 1), "")
    if first_heading and title.startswith(first_heading):  # "Page — Site": the page's own name
        title = first_heading
    return PageText(title or first_heading, text.text, tuple(text.headings))
