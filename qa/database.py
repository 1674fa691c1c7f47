"""The source of truth: documents, passages and passage vectors in one SQLite file.

The file runs in WAL mode, so readers never wait for a writer. Every write is one
transaction that raises the store's ``generation``; the search indexes (FAISS, BM25)
are derived from it and say which generation they hold.

A replaced or deleted document is not erased at once: its version is marked removed
in the generation that removed it, so a search still holding an older snapshot can
read its passages. Later writes purge versions removed more than ``RETAIN_SECONDS``
ago. Passage rows are never reused, so a row number means one passage for good.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from qa.documents import Document, Passage
from qa.errors import IndexUnavailable

FORMAT_VERSION = 2
RETAIN_SECONDS = 300.0
_BATCH = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    version    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id     TEXT NOT NULL,
    title      TEXT NOT NULL,
    source     TEXT NOT NULL,
    text       TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    added      INTEGER NOT NULL,
    removed    INTEGER,
    removed_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS live_documents ON documents (doc_id) WHERE removed IS NULL;
CREATE TABLE IF NOT EXISTS passages (
    row     INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL REFERENCES documents (version) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start   INTEGER NOT NULL,
    "end"   INTEGER NOT NULL,
    vector  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_of_version ON passages (version);
"""

_LIVE_PASSAGES = "passages p JOIN documents d USING (version) WHERE d.removed IS NULL"

_PASSAGE_COLUMNS = """
    p.row, d.doc_id, p.ordinal, p.start, p."end",
    substr(d.text, p.start + 1, p."end" - p.start), d.title, d.source
"""


@dataclass(frozen=True)
class PassageRecord:
    """A stored passage with its document's title and source."""

    row: int
    passage: Passage
    title: str
    source: str


@dataclass(frozen=True)
class Revision:
    """A document to store, chunked and embedded: one row of vectors per passage."""

    document: Document
    passages: list[Passage]
    vectors: np.ndarray


@dataclass(frozen=True)
class LiveRows:
    """Which passage rows one generation holds, read in one transaction."""

    generation: int
    rows: np.ndarray
    documents: int
    meta: dict[str, str]


def checksum(document: Document) -> str:
    """A fingerprint of everything stored about ``document``: same input, same passages."""
    fields = [document.doc_id, document.title, document.source, document.text, document.metadata]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class DocumentStore:
    """One SQLite file, shared by a process's threads: one connection reads, one writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._reader = _connect(path)
            self._writer = _connect(path)
            self._writer.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise IndexUnavailable(f"{path} is not a readable index database: {error}", code="index_corrupt") from error
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The read connection inside one transaction: every query sees one generation."""
        with self._read_lock:
            self._reader.execute("BEGIN")
            try:
                yield self._reader
            finally:
                self._reader.execute("COMMIT")

    def _query(self, sql: str, parameters: Iterable = ()) -> list[tuple]:
        with self._reading() as connection:
            return connection.execute(sql, tuple(parameters)).fetchall()

    def meta(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM meta"))

    def generation(self) -> int:
        found = self._query("SELECT value FROM meta WHERE key = 'generation'")
        return int(found[0][0]) if found else 0

    def live_rows(self) -> LiveRows:
        with self._reading() as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta"))
            rows = connection.execute(
                f"SELECT p.row FROM {_LIVE_PASSAGES} ORDER BY p.row"
            ).fetchall()
            (documents,), = connection.execute("SELECT count(*) FROM documents WHERE removed IS NULL")
        return LiveRows(int(meta.get("generation", 0)), np.array([r for r, in rows], dtype=np.int64), documents, meta)

    def passages(self, rows: Iterable[int]) -> dict[int, PassageRecord]:
        """The passages at ``rows``, keyed by row; rows purged meanwhile are left out."""
        found = self._query_in(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (version) WHERE p.row IN", rows
        )
        return {r[0]: PassageRecord(r[0], Passage(*r[1:6]), r[6], r[7]) for r in found}

    def vectors(self, rows: Iterable[int], dimension: int) -> dict[int, np.ndarray]:
        found = self._query_in("SELECT row, vector FROM passages WHERE row IN", rows)
        return {row: np.frombuffer(blob, dtype=np.float32, count=dimension) for row, blob in found}

    def _query_in(self, sql: str, values: Iterable) -> list[tuple]:
        """``sql`` ending in ``IN``, for every value, asked in batches SQLite accepts."""
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        found = []
        for first in range(0, len(values), _BATCH):
            batch = values[first : first + _BATCH]
            found += self._query(f"{sql} ({','.join('?' * len(batch))})", batch)
        return found

    def counts(self) -> tuple[int, int]:
        """(documents, passages) stored now."""
        with self._reading() as connection:
            (documents,), = connection.execute("SELECT count(*) FROM documents WHERE removed IS NULL")
            (passages,), = connection.execute(f"SELECT count(*) FROM {_LIVE_PASSAGES}")
        return documents, passages

    def documents(self, offset: int = 0, limit: int = -1) -> list[dict[str, Any]]:
        """Stored documents in id order, without their text: id, title, source, metadata, passages."""
        found = self._query(
            "SELECT d.doc_id, d.title, d.source, d.metadata, count(p.row) FROM documents d "
            "LEFT JOIN passages p USING (version) WHERE d.removed IS NULL "
            "GROUP BY d.version ORDER BY d.doc_id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [
            {"id": i, "title": t, "source": s, "metadata": json.loads(m), "passages": n} for i, t, s, m, n in found
        ]

    def document(self, doc_id: str) -> tuple[Document, list[Passage]] | None:
        """A stored document and its passages, or None."""
        with self._reading() as connection:
            found = connection.execute(
                "SELECT version, title, source, text, metadata FROM documents WHERE doc_id = ? AND removed IS NULL",
                (doc_id,),
            ).fetchone()
            if found is None:
                return None
            version, title, source, text, metadata = found
            spans = connection.execute(
                'SELECT ordinal, start, "end" FROM passages WHERE version = ? ORDER BY ordinal', (version,)
            ).fetchall()
        document = Document(doc_id, title, source, text, json.loads(metadata))
        return document, [Passage(doc_id, o, s, e, text[s:e]) for o, s, e in spans]

    def row_documents(self) -> dict[int, str]:
        """The document id of every stored passage row."""
        return dict(self._query(f"SELECT p.row, d.doc_id FROM {_LIVE_PASSAGES}"))

    def checksums(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """The stored checksum of each of ``doc_ids`` that is stored."""
        sql = "SELECT doc_id, checksum FROM documents WHERE removed IS NULL AND doc_id IN"
        return dict(self._query_in(sql, doc_ids))

    def write(
        self,
        revisions: Iterable[Revision] = (),
        delete: Iterable[str] = (),
        keep_only: set[str] | None = None,
        meta: dict[str, str] | None = None,
    ) -> tuple[int, list[str]]:
        """Apply one change in one transaction; returns (generation, ids deleted).

        ``revisions`` replace documents of the same id; ``delete`` removes ids;
        ``keep_only`` removes every other document; ``meta`` replaces settings and,
        as a change of model or chunking invalidates them, removes every document first.
        """
        with self._write_lock:
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                generation = int(dict(connection.execute("SELECT key, value FROM meta")).get("generation", 0)) + 1
                now = time.time()
                remove = "UPDATE documents SET removed = ?, removed_at = ? WHERE removed IS NULL"
                if meta is not None:
                    connection.execute(remove, (generation, now))
                    connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
                deleted = [
                    doc_id for doc_id in delete
                    if connection.execute(remove + " AND doc_id = ?", (generation, now, doc_id)).rowcount
                ]
                for revision in revisions:
                    connection.execute(remove + " AND doc_id = ?", (generation, now, revision.document.doc_id))
                    _insert(connection, revision, generation)
                if keep_only is not None:
                    live = [i for i, in connection.execute("SELECT doc_id FROM documents WHERE removed IS NULL")]
                    gone = [(generation, now, i) for i in live if i not in keep_only]
                    connection.executemany(remove + " AND doc_id = ?", gone)
                connection.execute("DELETE FROM documents WHERE removed_at < ?", (now - RETAIN_SECONDS,))
                connection.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(generation),))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return generation, deleted

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def initialise_store(store: DocumentStore, meta: dict[str, str]) -> None:
    """Give a new store its format version, its own id and ``meta`` (model, dimension, chunking)."""
    store.write(meta={"format_version": str(FORMAT_VERSION), "store_id": uuid.uuid4().hex, **meta})


def _insert(connection: sqlite3.Connection, revision: Revision, generation: int) -> None:
    d = revision.document
    (version,), = connection.execute(
        "INSERT INTO documents (doc_id, title, source, text, metadata, checksum, added) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING version",
        (d.doc_id, d.title, d.source, d.text, json.dumps(d.metadata, ensure_ascii=False), checksum(d), generation),
    )
    vectors = np.ascontiguousarray(revision.vectors, dtype=np.float32)
    connection.executemany(
        'INSERT INTO passages (version, ordinal, start, "end", vector) VALUES (?, ?, ?, ?, ?)',
        ((version, p.ordinal, p.start, p.end, v.tobytes()) for p, v in zip(revision.passages, vectors)),
    )


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection
