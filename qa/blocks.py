"""A document's text built block by block, headings and pages marked where they land.

Readers of structured formats (HTML, .docx, reStructuredText, PDF) emit paragraphs,
headings and page breaks here; blocks are joined by blank lines, which is where the
chunker looks for paragraph breaks.
"""

from __future__ import annotations

from qa.documents import Heading


class BlockText:
    """Paragraphs joined by blank lines, with the offsets of headings and pages."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.headings: list[Heading] = []
        self.pages: list[int] = []

    def add(self, text: str, level: int | None = None) -> None:
        """Append a paragraph (a heading of ``level`` when given); blank ones are dropped."""
        text = text.strip()
        if not text:
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        if level is not None:
            self.headings.append(Heading(self._length, self._length + len(text), level))
        self._parts.append(text)
        self._length += len(text)

    def new_page(self) -> None:
        """Mark that what is added next begins a new page (the first page starts at 0)."""
        self.pages.append(self._length + 2 if self._parts else 0)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def heading_texts(self) -> list[str]:
        text = self.text
        return [text[h.start : h.end] for h in self.headings]
