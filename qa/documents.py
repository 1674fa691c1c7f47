"""The plain records that flow from readers through chunking into the index."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """A document's extracted text and where it came from."""

    doc_id: str
    title: str
    source: str
    text: str


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
