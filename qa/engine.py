"""The seam between qa and what holds its passages: the engine interface.

Search, ingest, the service and evaluation talk only to an ``Engine``. Two implement
it: the embedded engine (``qa.embedded``: SQLite + FAISS + BM25 in one folder, the
default) and the Milvus engine (``qa.milvus``: a Milvus server, or Milvus Lite in one
file). ``qa.engines.open_engine`` picks one from the settings.

Passages are known by an integer key that one engine gives them: a store row in the
embedded engine, a primary key in Milvus. A key means one passage for good.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.database import PassageRecord, Revision, WriteResult
from qa.documents import Document, Passage
from qa.fusion import Fusion, Ranking

if TYPE_CHECKING:
    from qa.lexical import LexicalSettings
    from qa.search import SearchRequest

# Encodes the questions of a batch of requests when called (None for lexical ones).
QuestionVectors = Callable[[], list[np.ndarray | None]]


@dataclass(frozen=True)
class DocumentSummary:
    """A stored document without its text."""

    doc_id: str
    title: str
    source: str
    metadata: dict
    passages: int


@dataclass(frozen=True)
class EngineState:
    """What an engine holds now: ``generation`` changes with every write it has seen."""

    documents: int
    passages: int
    generation: int


class Engine(Protocol):
    """An index of passages: their vectors, their BM25 terms and their documents.

    ``write`` is the one way in, and searches see a write once ``refresh`` (or, for an
    engine whose writes show at once, ``write`` itself) has returned. A search never
    returns a document half old and half new, nor a passage of a removed version."""

    location: str  # where it lives, as `qa serve` and /api/health name it

    def meta(self) -> dict[str, str]:
        """The settings its passages were made with: format_version, model, dimension, chunking."""
        ...

    @property
    def lexical(self) -> LexicalSettings:
        """How its passages' BM25 terms are made (``qa.lexical.passage_terms``), so that
        ingest can make them ahead, in its worker processes."""
        ...

    def rank_many(self, requests: list[SearchRequest], vectors: QuestionVectors,
                  question_terms: list[list[str]], fusion: Fusion, candidates: int) -> list[Ranking]:
        """Each request's best ``k`` passage keys with their scores, best first; each side of a
        hybrid search is ranked ``candidates`` deep. A filter is applied inside the search.
        ``vectors()`` encodes the questions (None for lexical ones), once: an engine may
        rank what needs no vector meanwhile."""
        ...

    def term_weights(self, question_terms: list[str]) -> dict[str, float]:
        """How much each question term counts when choosing a passage's answer sentence."""
        ...

    def passages(self, keys: Iterable[int]) -> dict[int, PassageRecord]:
        """The passages at ``keys``; keys of passages removed meanwhile are left out."""
        ...

    def passage_documents(self) -> dict[int, str]:
        """The document id of every passage key (for evaluation)."""
        ...

    def state(self) -> EngineState: ...

    def checksums(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """The stored checksum of each of ``doc_ids`` that is stored."""
        ...

    def write(self, revisions: Iterable[Revision] = (), delete: Iterable[str] = (),
              keep_only: set[str] | None = None, create: bool = False) -> WriteResult:
        """Replace documents by ``revisions`` (refused with ``create`` when an id is stored),
        remove ``delete``, and with ``keep_only`` every document not named in it. Each
        document changes whole or not at all, crash or no crash."""
        ...

    def rebuild(self, meta: dict[str, str], batches: Iterable[list[Revision]]) -> EngineState:
        """Replace every document with ``batches``, made with the settings ``meta``."""
        ...

    def refresh(self) -> EngineState:
        """Make every write so far visible to searches; what it holds then."""
        ...

    def document(self, doc_id: str) -> tuple[Document, list[Passage]] | None: ...

    def documents(self, offset: int, limit: int) -> tuple[int, list[DocumentSummary]]:
        """How many documents are stored, and ``limit`` of them from ``offset`` in id order."""
        ...

    def sources(self, limit: int) -> list[str]:
        """The distinct sources of stored documents, in order, at most ``limit``."""
        ...

    def check(self) -> None:
        """Raise unless it can be read now and still fits the model it was opened with."""
        ...

    def compact(self) -> None:
        """Merge what a bulk load wrote into as few parts as searches are quickest on,
        waiting (nothing, where the engine merges its own)."""
        ...

    def save(self) -> None:
        """Persist what makes the next start quick (nothing, where the engine keeps it)."""
        ...

    def save_every(self, seconds: float) -> None: ...

    def close(self) -> None: ...
