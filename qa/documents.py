"""The plain records that flow from readers through chunking into the index."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Heading:
    """A heading of a document: ``text[start:end]`` is its text, ``level`` its depth
    (1 for a title or HTML ``h1``; definition terms sit below every heading level)."""

    start: int
    end: int
    level: int


@dataclass(frozen=True)
class Document:
    """A document's extracted text, where it came from, and the caller's own fields.

    ``headings`` are in text order; ``pages`` holds the offset where each page of a
    paginated source (a PDF) begins, the first at 0, and is empty for other documents.
    """

    doc_id: str
    title: str
    source: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    headings: tuple[Heading, ...] = ()
    pages: tuple[int, ...] = ()

    @property
    def structure(self) -> dict[str, list]:
        """Its headings and page offsets, as stored (JSON)."""
        return {"headings": [[h.start, h.end, h.level] for h in self.headings], "pages": list(self.pages)}

    @cached_property
    def checksum(self) -> str:
        """A fingerprint of everything stored about it: same input, same passages. Made
        once: an ingest compares it with the stored copy's, then stores it."""
        fields = [self.doc_id, self.title, self.source, self.text, self.metadata, self.structure]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Passage:
    """A span of a document's text: ``document.text[start:end] == text``.

    ``section`` is the path of headings it lies under (title > section > subsection),
    empty for a document without headings; ``page`` is the page it begins on, from 1,
    for a paginated document."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    section: str = ""
    page: int | None = None

    @property
    def passage_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"
