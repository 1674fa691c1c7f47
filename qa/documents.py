"""The plain records that flow from readers through chunking into the index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A document's extracted text, where it came from, and the caller's own fields."""

    doc_id: str
    title: str
    source: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """A span of a document's text: ``document.text[start:end] == text``."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str

    @property
    def passage_id(self) -> str:
        return f"{self.doc_id}#{self.ordinal}"
