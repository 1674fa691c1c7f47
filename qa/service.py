"""One served index, as the web layer and the CLI ask of it: searches, documents,
writes, and how the index is doing. Nothing above this reaches into the store."""

from __future__ import annotations

import time
from dataclasses import dataclass

from qa.documents import Document, Passage
from qa.engine import DocumentSummary
from qa.engines import EngineChoice, open_engine
from qa.ingest import delete_documents, store_documents
from qa.search import Searcher, SearchRequest, SearchResponse


@dataclass(frozen=True)
class Stored:
    """What a write of one document did: ``created`` when its id was new, ``unchanged``
    when it equalled the stored copy (which keeps its passages)."""

    document: Document
    passages: int
    created: bool
    unchanged: bool


@dataclass(frozen=True)
class Status:
    """What the index holds now, and what serves it."""

    documents: int
    passages: int
    generation: int
    model: str
    backend: str
    index: str


@dataclass(frozen=True)
class Opened:
    """How long opening took: the index, then the model that encodes questions (its
    libraries' import included; the passage model loads apart, for writes)."""

    index_s: float
    model_s: float


class Service:
    """Searches and document operations on one index, whichever engine holds it."""

    def __init__(self, searcher: Searcher, opened: Opened | None = None) -> None:
        self._searcher = searcher
        self._engine = searcher.engine
        self.opened = opened

    @classmethod
    def open(cls, choice: EngineChoice, model: str | None = None, backend: str = "torch",
             cache_size: int = 1024) -> Service:
        started = time.perf_counter()
        engine = open_engine(choice, model)
        index_s = time.perf_counter() - started
        searcher = Searcher.open(engine, backend, cache_size)
        return cls(searcher, Opened(index_s, time.perf_counter() - started - index_s))

    def search(self, request: SearchRequest) -> SearchResponse:
        return self._searcher.search(request)

    def warm_up(self) -> None:
        self._searcher.warm_up()

    def prepare_writes(self) -> None:
        """Load what writes need (the passage model) in the background, so that the
        first write does not wait for it; searches never need it."""
        self._searcher.embedder.load_in_background()

    def document(self, doc_id: str) -> tuple[Document, list[Passage]] | None:
        """A stored document and its passages, or None."""
        return self._engine.document(doc_id)

    def documents(self, offset: int, limit: int) -> tuple[int, list[DocumentSummary]]:
        """How many documents are stored, and a page of them in id order."""
        return self._engine.documents(offset, limit)

    def sources(self, limit: int) -> list[str]:
        """The distinct sources of stored documents, in order, at most ``limit``."""
        return self._engine.sources(limit)

    def store(self, document: Document, create: bool = False) -> Stored:
        """Add or replace ``document`` (with ``create``, refuse a stored id: ``DocumentExists``);
        searches see it when this returns."""
        report = store_documents(self._engine, self._searcher.embedder, [document], create=create)
        if report.unchanged:
            stored = self._engine.document(document.doc_id)
            passages = len(stored[1]) if stored else 0
        else:
            passages = report.stored_passages
        return Stored(document, passages, report.added == 1, report.unchanged == 1)

    def delete(self, doc_id: str) -> bool:
        """Remove a document; whether it was stored. Searches no longer see it when this returns."""
        return bool(delete_documents(self._engine, [doc_id]))

    def status(self) -> Status:
        """What searches see now, and the model and backend serving it."""
        state = self._engine.state()
        return Status(state.documents, state.passages, state.generation, self._engine.meta()["model"],
                      self._searcher.embedder.backend, self._engine.location)

    def check(self) -> None:
        """Raise unless the index can be read now and still fits the loaded model."""
        self._engine.check()

    def save_every(self, seconds: float) -> None:
        """Save what makes the next start quick unless it was saved less than ``seconds`` ago."""
        self._engine.save_every(seconds)
