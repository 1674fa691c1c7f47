"""Documents and passages in one SQLite file.

A passage's text is not stored twice: it is the slice ``[start, end)`` of its
document's text. Passage ``row`` numbers match the rows of the vector and lexical
indexes built beside the file.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from qa.documents import Document, Passage

SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    title  TEXT NOT NULL,
    source TEXT NOT NULL,
    text   TEXT NOT NULL
);
CREATE TABLE passages (
    row     INTEGER PRIMARY KEY,
    doc_id  TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal INTEGER NOT NULL,
    start   INTEGER NOT NULL,
    "end"   INTEGER NOT NULL,
    UNIQUE (doc_id, ordinal)
);
"""

_PASSAGE_COLUMNS = """
    p.row, p.doc_id, p.ordinal, p.start, p."end",
    substr(d.text, p.start + 1, p."end" - p.start), d.title, d.source
"""


@dataclass(frozen=True)
class PassageRecord:
    """A stored passage with its document's title and source."""

    row: int
    passage: Passage
    title: str
    source: str


def write_database(path: Path, documents: Iterable[Document], passages: Iterable[Passage]) -> None:
    """Create ``path`` holding ``documents``; passage rows follow the given order."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.executescript(SCHEMA)
            connection.executemany(
                "INSERT INTO documents VALUES (?, ?, ?, ?)",
                ((d.doc_id, d.title, d.source, d.text) for d in documents),
            )
            connection.executemany(
                "INSERT INTO passages VALUES (?, ?, ?, ?, ?)",
                ((row, p.doc_id, p.ordinal, p.start, p.end) for row, p in enumerate(passages)),
            )
    finally:
        connection.close()


class DocumentStore:
    """Read access to a finished database file, shared by the server's threads."""

    def __init__(self, path: Path) -> None:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        self._connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def _query(self, sql: str, parameters: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, tuple(parameters)).fetchall()

    def counts(self) -> tuple[int, int]:
        """(documents, passages)."""
        (documents,), = self._query("SELECT count(*) FROM documents")
        (passages,), = self._query("SELECT count(*) FROM passages")
        return documents, passages

    def passages(self, rows: list[int]) -> dict[int, PassageRecord]:
        """The passages at ``rows``, keyed by row; unknown rows are left out."""
        marks = ",".join("?" * len(rows))
        found = self._query(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (doc_id) "
            f"WHERE p.row IN ({marks})",
            rows,
        )
        return {r[0]: PassageRecord(r[0], Passage(*r[1:6]), r[6], r[7]) for r in found}

    def documents(self) -> Iterator[Document]:
        for row in self._query("SELECT doc_id, title, source, text FROM documents ORDER BY doc_id"):
            yield Document(*row)

    def passage_rows(self) -> Iterator[PassageRecord]:
        """Every passage in row order."""
        for r in self._query(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (doc_id) ORDER BY p.row"
        ):
            yield PassageRecord(r[0], Passage(*r[1:6]), r[6], r[7])

    def close(self) -> None:
        self._connection.close()
