"""One served index, as the web layer and the CLI ask of it: searches, documents,
writes, and how the index is doing. Nothing above this reaches into the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa.documents import Document, Passage
from qa.ingest import delete_documents, store_documents
from qa.search import Searcher, SearchRequest, SearchResponse


@dataclass(frozen=True)
class DocumentSummary:
    """A stored document without its text."""

    doc_id: str
    title: str
    source: str
    metadata: dict
    passages: int


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


class Service:
    """Searches and document operations on one index, through its ``Searcher``."""

    def __init__(self, searcher: Searcher) -> None:
        self._searcher = searcher
        # The sources last listed, with the snapshot and limit they were listed for.
        self._sources: tuple[tuple[str, int, int], list[str]] | None = None

    @classmethod
    def open(cls, root: Path, model: str | None = None, backend: str = "torch", cache_size: int = 1024) -> Service:
        return cls(Searcher.open(root, model, backend, cache_size))

    def search(self, request: SearchRequest) -> SearchResponse:
        return self._searcher.search(request)

    def warm_up(self) -> None:
        self._searcher.warm_up()

    def document(self, doc_id: str) -> tuple[Document, list[Passage]] | None:
        """A stored document and its passages, or None."""
        return self._searcher.index.store.document(doc_id)

    def documents(self, offset: int, limit: int) -> tuple[int, list[DocumentSummary]]:
        """How many documents are stored, and a page of them in id order."""
        store = self._searcher.index.store
        total, _ = store.counts()
        return total, [DocumentSummary(d["id"], d["title"], d["source"], d["metadata"], d["passages"])
                       for d in store.documents(offset, limit)]

    def sources(self, limit: int) -> list[str]:
        """The distinct sources of stored documents, in order, at most ``limit``; asked of
        the store again only once the index has changed (the page lists them each time)."""
        snapshot = self._searcher.index.snapshot()
        key = (snapshot.store_id, snapshot.generation, limit)
        listed = self._sources
        if listed is None or listed[0] != key:
            listed = self._sources = (key, self._searcher.index.store.sources(limit))
        return listed[1]

    def store(self, document: Document, create: bool = False) -> Stored:
        """Add or replace ``document`` (with ``create``, refuse a stored id: ``DocumentExists``);
        searches see it when this returns."""
        index = self._searcher.index
        report = store_documents(index, self._searcher.embedder, [document], create=create)
        unchanged = document.doc_id in report.unchanged
        if unchanged:
            stored = index.store.document(document.doc_id)
            passages = len(stored[1]) if stored else 0
        else:
            passages = report.stored[document.doc_id]
        return Stored(document, passages, document.doc_id in report.added, unchanged)

    def delete(self, doc_id: str) -> bool:
        """Remove a document; whether it was stored. Searches no longer see it when this returns."""
        return bool(delete_documents(self._searcher.index, [doc_id]))

    def status(self) -> Status:
        """The snapshot searches use now, and the model and backend serving it."""
        index = self._searcher.index
        snapshot = index.snapshot()
        return Status(snapshot.documents, len(snapshot), snapshot.generation, index.model,
                      self._searcher.embedder.backend, str(index.root))

    def check(self) -> None:
        """Raise unless the store can be read now and still fits the loaded model."""
        self._searcher.index.check()

    def save_every(self, seconds: float) -> None:
        """Save the derived indexes unless they were saved less than ``seconds`` ago."""
        self._searcher.index.save_every(seconds)
