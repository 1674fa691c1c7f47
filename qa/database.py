"""The source of truth: documents, passages and passage vectors in one SQLite file.

The file runs in WAL mode, so readers never wait for a writer. Every write is one
transaction that raises the store's ``generation``; the search indexes (FAISS, BM25)
are derived from it and say which generation they hold.

A replaced or deleted document is not erased at once: its version is marked removed
in the generation that removed it, so a search still holding an older snapshot can
read its passages. Later writes purge versions removed more than ``RETAIN_SECONDS``
ago. Passage rows are never reused, so a row number means one passage for good.

A rebuild with other settings (``qa ingest --replace --model ...``) writes the new
contents as staged versions (``removed`` = minus the rebuild's stage number), which
nothing reads, and swaps them in for the old ones in one last transaction: until
then the old contents stay whole and searchable, and a rebuild killed on the way
leaves only staged rows, cleared by the next rebuild.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.documents import Document, Heading, Passage
from qa.errors import DocumentExists, IndexUnavailable
from qa.filters import SearchFilter, Value

if TYPE_CHECKING:
    from qa.lexical import CountedTerms

FORMAT_VERSION = 3
RETAIN_SECONDS = 300.0
_BATCH = 10_000
# Rows one INSERT statement holds at most (fewer where SQLite takes fewer parameters).
ROWS_PER_STATEMENT = 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    version    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id     TEXT NOT NULL,
    title      TEXT NOT NULL,
    source     TEXT NOT NULL,
    text       TEXT NOT NULL,
    metadata   TEXT NOT NULL,
    structure  TEXT NOT NULL DEFAULT '{}',
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
    section TEXT NOT NULL DEFAULT '',
    page    INTEGER,
    vector  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_of_version ON passages (version);
CREATE INDEX IF NOT EXISTS documents_added ON documents (added);
CREATE INDEX IF NOT EXISTS documents_removed ON documents (removed) WHERE removed IS NOT NULL;
CREATE INDEX IF NOT EXISTS documents_removed_at ON documents (removed_at) WHERE removed_at IS NOT NULL;
"""

# Columns added since format 2, so that ``qa ingest --replace`` can rebuild such a store in place.
_ADDED_COLUMNS = {
    "documents": {"structure": "TEXT NOT NULL DEFAULT '{}'"},
    "passages": {"section": "TEXT NOT NULL DEFAULT ''", "page": "INTEGER"},
}

_LIVE_PASSAGES = "passages p JOIN documents d USING (version) WHERE d.removed IS NULL"

_PASSAGE_COLUMNS = """
    p.row, d.doc_id, p.ordinal, p.start, p."end",
    substr(d.text, p.start + 1, p."end" - p.start), p.section, p.page, d.title, d.source
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
    """A document to store, chunked and embedded: one row of vectors per passage; and,
    where ingest made them ahead, its passages' BM25 terms, made with the settings of
    the engine written to (``Engine.lexical``). None: the engine makes them."""

    document: Document
    passages: list[Passage]
    vectors: np.ndarray
    terms: CountedTerms | None = None


@dataclass(frozen=True)
class WriteResult:
    """What one write did: the generation it made, the ids it deleted and those it
    replaced; the rows it stored (the passages of each revision in turn) and the rows
    it removed; how many more documents the store holds after it."""

    generation: int
    deleted: list[str]
    replaced: set[str]
    added_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    removed_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    documents_added: int = 0


@dataclass(frozen=True)
class StoreChanges:
    """What the generations after one changed: rows added and rows removed (each
    sorted), and how many more documents the store holds."""

    generation: int
    meta: dict[str, str]
    added_rows: np.ndarray
    removed_rows: np.ndarray
    documents_added: int


@dataclass(frozen=True)
class LiveRows:
    """Which passage rows one generation holds, read in one transaction."""

    generation: int
    rows: np.ndarray
    documents: int
    meta: dict[str, str]


class DocumentStore:
    """One SQLite file, shared by a process's threads: one connection reads, one writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._reader = _connect(path)
            self._writer = _connect(path)
            self._writer.executescript(SCHEMA)
            _add_missing_columns(self._writer)
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

    def changes(self, since: int) -> StoreChanges | None:
        """What the generations after ``since`` changed, read in one transaction; None
        when some of it was purged already (``RETAIN_SECONDS``): compare ``live_rows``."""
        with self._reading() as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta"))
            if int(meta.get("purged", meta.get("generation", 0))) > since:
                return None

            def rows(where: str, parameters: tuple) -> np.ndarray:
                found = connection.execute(f"SELECT p.row FROM passages p JOIN documents d USING (version) "
                                           f"WHERE {where} ORDER BY p.row", parameters).fetchall()
                return np.array([r for r, in found], dtype=np.int64)

            def documents(where: str, parameters: tuple) -> int:
                (count,), = connection.execute(f"SELECT count(*) FROM documents d WHERE {where}", parameters)
                return count

            added, removed = "d.added > ? AND d.removed IS NULL", "d.removed > ? AND d.added <= ?"
            return StoreChanges(int(meta.get("generation", 0)), meta, rows(added, (since,)),
                                rows(removed, (since, since)),
                                documents(added, (since,)) - documents(removed, (since, since)))

    def passages(self, rows: Iterable[int]) -> dict[int, PassageRecord]:
        """The passages at ``rows``, keyed by row; rows purged meanwhile are left out."""
        found = self._query_in(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (version) WHERE p.row IN", rows
        )
        return {r[0]: PassageRecord(r[0], Passage(*r[1:8]), r[8], r[9]) for r in found}

    def vectors(self, rows: Iterable[int], dimension: int) -> dict[int, np.ndarray]:
        found = self._query_in("SELECT row, vector FROM passages WHERE row IN", rows)
        return {row: np.frombuffer(blob, dtype=np.float32, count=dimension) for row, blob in found}

    def _query_in(self, sql: str, values: Iterable) -> list[tuple]:
        return _select_in(self._query, sql, values)

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
                "SELECT version, title, source, text, metadata, structure FROM documents "
                "WHERE doc_id = ? AND removed IS NULL", (doc_id,),
            ).fetchone()
            if found is None:
                return None
            version, title, source, text, metadata, structure = found
            spans = connection.execute(
                'SELECT ordinal, start, "end", section, page FROM passages WHERE version = ? ORDER BY ordinal',
                (version,),
            ).fetchall()
        parts = json.loads(structure)
        headings = tuple(Heading(*h) for h in parts.get("headings", ()))
        document = Document(doc_id, title, source, text, json.loads(metadata), headings, tuple(parts.get("pages", ())))
        return document, [Passage(doc_id, o, s, e, text[s:e], section, page) for o, s, e, section, page in spans]

    def filtered_rows(self, search_filter: SearchFilter) -> np.ndarray:
        """The stored passage rows whose documents pass ``search_filter``, in row order."""
        where, parameters = _filter_sql(search_filter)
        found = self._query(f"SELECT p.row FROM {_LIVE_PASSAGES} AND {where} ORDER BY p.row", parameters)
        return np.array([row for row, in found], dtype=np.int64)

    def sources(self, limit: int) -> list[str]:
        """The distinct sources of stored documents, in order, at most ``limit``."""
        found = self._query("SELECT DISTINCT source FROM documents WHERE removed IS NULL ORDER BY source LIMIT ?",
                            (limit,))
        return [source for source, in found]

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
        store_id: str | None = None,
        create: bool = False,
    ) -> WriteResult:
        """Apply one change in one transaction.

        ``revisions`` replace documents of the same id, or with ``create`` are refused
        (``DocumentExists``) when one of their ids is stored; ``delete`` removes ids;
        ``keep_only`` removes every other document. With ``store_id``, the write is
        refused when the store has been rebuilt since (its vectors would not fit).
        """
        with self._transaction(store_id) as (connection, generation, now):
            versions: list[int] = []
            revisions, delete = list(revisions), list(delete)

            def removed(doc_ids: Iterable[str]) -> set[str]:
                found = _remove(connection, doc_ids, generation, now)
                versions.extend(version for _, version in found)
                return {doc_id for doc_id, _ in found}

            gone = removed(delete)
            deleted = [doc_id for doc_id in dict.fromkeys(delete) if doc_id in gone]
            replaced: set[str] = set()
            added_rows: list[np.ndarray] = []
            numbers = _Numbers(connection)
            for group in _distinct_runs(revisions):
                ids = [revision.document.doc_id for revision in group]
                stored = removed(ids)
                if create and stored:
                    raise DocumentExists(next(doc_id for doc_id in ids if doc_id in stored))
                replaced |= stored
                added_rows.append(_insert(connection, group, generation, numbers))
            if keep_only is not None:
                live = [i for i, in connection.execute("SELECT doc_id FROM documents WHERE removed IS NULL")]
                removed(doc_id for doc_id in live if doc_id not in keep_only)
            removed_rows = _rows_of(connection, versions)
        rows = np.concatenate(added_rows) if added_rows else np.zeros(0, np.int64)
        return WriteResult(generation, deleted, replaced, rows, removed_rows, len(revisions) - len(versions))

    def initialise(self, meta: dict[str, str]) -> None:
        """Give an empty store its settings (format version, store id, model, ...)."""
        with self._transaction() as (connection, _, _):
            connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def begin_rebuild(self) -> int:
        """Start staging new contents; returns the stage number that ``stage`` and
        ``commit_rebuild`` take. Rows staged by an earlier, unfinished rebuild are dropped."""
        with self._writing() as connection:
            stage = int(dict(connection.execute("SELECT key, value FROM meta")).get("stage", 0)) + 1
            connection.execute("INSERT OR REPLACE INTO meta VALUES ('stage', ?)", (str(stage),))
            connection.execute("DELETE FROM documents WHERE removed < 0")
        return stage

    def stage(self, revisions: Iterable[Revision], stage: int) -> None:
        """Store ``revisions`` for the rebuild ``stage``, unseen until it is committed."""
        with self._writing() as connection:
            _check_stage(connection, stage)
            _insert(connection, list(revisions), 0, _Numbers(connection), removed=-stage)

    def commit_rebuild(self, stage: int, meta: dict[str, str]) -> int:
        """Swap the staged contents of ``stage`` in for every stored document, and the
        store's settings for ``meta``, in one transaction; returns the new generation."""
        with self._transaction() as (connection, generation, now):
            _check_stage(connection, stage)
            connection.execute("UPDATE documents SET removed = ?, removed_at = ? WHERE removed IS NULL",
                               (generation, now))
            connection.execute("UPDATE documents SET removed = NULL, added = ? WHERE removed = ?", (generation, -stage))
            connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
        return generation

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The write connection inside one immediate transaction, committed unless it raises."""
        with self._write_lock:
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    @contextmanager
    def _transaction(self, store_id: str | None = None) -> Iterator[tuple[sqlite3.Connection, int, float]]:
        """A write that makes a new generation: (connection, generation, now). Old
        versions past ``RETAIN_SECONDS`` are purged in it."""
        with self._writing() as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta"))
            if store_id is not None and meta.get("store_id") != store_id:
                raise IndexUnavailable(f"index {self.path.parent} was rebuilt with other settings while open; "
                                       f"nothing was written", code="index_settings")
            generation, now = int(meta.get("generation", 0)) + 1, time.time()
            yield connection, generation, now
            # The newest generation whose removals may be gone: changes() reads none older.
            (latest,), = connection.execute("SELECT max(removed) FROM documents WHERE removed_at < ?",
                                            (now - RETAIN_SECONDS,))
            purged = max(int(meta.get("purged", generation - 1)), latest or 0)
            connection.execute("DELETE FROM documents WHERE removed_at < ?", (now - RETAIN_SECONDS,))
            connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                   [("generation", str(generation)), ("purged", str(purged))])

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def initialise_store(store: DocumentStore, meta: dict[str, str]) -> None:
    """Give a new store its format version, its own id and ``meta`` (model, dimension, chunking)."""
    store.initialise({"format_version": str(FORMAT_VERSION), "store_id": new_store_id(), "purged": "0", **meta})


def new_store_id() -> str:
    """A fresh id for a store's contents: derived files made from other contents never match it."""
    return uuid.uuid4().hex


def _check_stage(connection: sqlite3.Connection, stage: int) -> None:
    current = dict(connection.execute("SELECT key, value FROM meta")).get("stage")
    if current != str(stage):
        raise IndexUnavailable("another rebuild of this index started meanwhile; this one stopped",
                               code="index_busy")


def _select_in(run: Callable[[str, list], list[tuple]], sql: str, values: Iterable, suffix: str = "") -> list[tuple]:
    """``sql`` ending in ``IN`` (then ``suffix``), for every value, asked through ``run``
    in batches SQLite accepts."""
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    found = []
    for first in range(0, len(values), _BATCH):
        batch = values[first : first + _BATCH]
        found += run(f"{sql} ({','.join('?' * len(batch))}){suffix}", batch)
    return found


def _rows_of(connection: sqlite3.Connection, versions: list[int]) -> np.ndarray:
    """The passage rows of document ``versions``, sorted."""
    found = _select_in(lambda sql, batch: connection.execute(sql, batch).fetchall(),
                       "SELECT row FROM passages WHERE version IN", versions)
    return np.array(sorted(r for r, in found), dtype=np.int64)


def _distinct_runs(revisions: list[Revision]) -> Iterator[list[Revision]]:
    """``revisions`` in order, cut where a document id repeats, so that each run is
    written at once and a later revision of an id still replaces an earlier one."""
    run: list[Revision] = []
    ids: set[str] = set()
    for revision in revisions:
        if revision.document.doc_id in ids:
            yield run
            run, ids = [], set()
        run.append(revision)
        ids.add(revision.document.doc_id)
    if run:
        yield run


def _remove(connection: sqlite3.Connection, doc_ids: Iterable[str], generation: int, now: float
            ) -> list[tuple[str, int]]:
    """Mark the live versions of ``doc_ids`` removed in ``generation``; (id, version) of each."""
    return _select_in(lambda sql, batch: connection.execute(sql, [generation, now, *batch]).fetchall(),
                      "UPDATE documents SET removed = ?, removed_at = ? WHERE removed IS NULL AND doc_id IN",
                      doc_ids, suffix=" RETURNING doc_id, version")


class _Numbers:
    """Hands out document versions and passage rows in one transaction: above every
    one ever used, as AUTOINCREMENT would, but known without reading each one back."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.version, self.row = (_next(connection, table, column)
                                  for table, column in (("documents", "version"), ("passages", "row")))

    def take(self, versions: int, rows: int) -> tuple[int, np.ndarray]:
        """The first of ``versions`` consecutive versions, and ``rows`` rows."""
        first, taken = self.version, np.arange(self.row, self.row + rows, dtype=np.int64)
        self.version += versions
        self.row += rows
        return first, taken


def _next(connection: sqlite3.Connection, table: str, column: str) -> int:
    (number,), = connection.execute(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), "
        f"coalesce((SELECT max({column}) FROM {table}), 0)) + 1")
    return int(number)


def _insert(connection: sqlite3.Connection, revisions: list[Revision], generation: int, numbers: _Numbers,
            removed: int | None = None) -> np.ndarray:
    """Store ``revisions`` (of distinct ids); returns the rows of their passages, in turn."""
    sizes = [len(revision.passages) for revision in revisions]
    first, rows = numbers.take(len(revisions), sum(sizes))
    documents = [revision.document for revision in revisions]
    _insert_rows(connection, "documents (version, doc_id, title, source, text, metadata, structure, checksum, added, "
                 "removed)", [(first + n, d.doc_id, d.title, d.source, d.text,
                              _json(d.metadata), _json(d.structure), d.checksum,
                              generation, removed) for n, d in enumerate(documents)])
    versions = np.repeat(np.arange(first, first + len(revisions)), sizes).tolist()
    passages = [p for revision in revisions for p in revision.passages]
    vectors = np.ascontiguousarray(np.concatenate([r.vectors for r in revisions]) if revisions else
                                   np.zeros((0, 0)), dtype=np.float32)
    _insert_rows(connection, 'passages (row, version, ordinal, start, "end", section, page, vector)',
                 [(row, version, p.ordinal, p.start, p.end, p.section, p.page, v.tobytes())
                  for row, version, p, v in zip(rows.tolist(), versions, passages, vectors)])
    return rows


# What a document without headings or pages stores as its structure.
_NO_STRUCTURE: dict[str, list] = {"headings": [], "pages": []}
_NO_STRUCTURE_JSON = json.dumps(_NO_STRUCTURE)


def _json(value: dict[str, Any]) -> str:
    """``value`` as stored: JSON, its text unescaped. Most documents have no fields of
    their own and no headings: their rows take a string made once."""
    if not value:
        return "{}"
    if value == _NO_STRUCTURE:
        return _NO_STRUCTURE_JSON
    return json.dumps(value, ensure_ascii=False)


def _insert_rows(connection: sqlite3.Connection, into: str, rows: list[tuple]) -> None:
    """``INSERT INTO into VALUES`` each of ``rows``, as many to a statement as SQLite
    takes parameters. Python's sqlite3 lets go of the interpreter at each statement
    it steps: ``executemany``, one step per row, waited for it again at every row
    while another thread ran Python (40 times slower, measured)."""
    if not rows:
        return
    width = len(rows[0])
    most = min(ROWS_PER_STATEMENT, max(1, _parameter_limit(connection) // width))
    placeholder, first = f"({','.join('?' * width)})", 0
    while first < len(rows):
        # Statements of a few sizes only (powers of two), so that each is prepared once.
        size = min(most, 1 << ((len(rows) - first).bit_length() - 1))
        part = rows[first : first + size]
        connection.execute(f"INSERT INTO {into} VALUES {','.join([placeholder] * size)}",
                           list(itertools.chain.from_iterable(part)))
        first += size


def _parameter_limit(connection: sqlite3.Connection) -> int:
    """How many parameters one statement may hold (999 where Python cannot ask SQLite)."""
    getlimit, which = getattr(connection, "getlimit", None), getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    return int(getlimit(which)) if getlimit is not None and which is not None else 999  # Python 3.11+ can ask


def _filter_sql(search_filter: SearchFilter) -> tuple[str, list[Any]]:
    """A condition on documents ``d`` that holds where ``search_filter`` passes, and its parameters."""
    conditions, parameters = ["1"], []
    if search_filter.source is not None:
        conditions.append("d.source = ?")
        parameters.append(search_filter.source)
    if search_filter.doc_id_prefix is not None:
        conditions.append("substr(d.doc_id, 1, length(?)) = ?")
        parameters += [search_filter.doc_id_prefix] * 2
    for key, values in search_filter.metadata:
        item, item_parameters = _any_value("m", values)
        listed, listed_parameters = _any_value("e", values)
        conditions.append(
            f"EXISTS (SELECT 1 FROM json_each(d.metadata) m WHERE m.key = ? AND ({item} OR (m.type = 'array' AND "
            f"EXISTS (SELECT 1 FROM json_each(m.value) e WHERE {listed}))))")
        parameters += [key, *item_parameters, *listed_parameters]
    return " AND ".join(conditions), parameters


def _any_value(alias: str, values: tuple[Value, ...]) -> tuple[str, list[Any]]:
    """A condition that the JSON item ``alias`` (a ``json_each`` row) is one of ``values``."""
    parts, parameters = [], []
    for kind, value in values:
        if kind == "text":
            parts.append(f"({alias}.type = 'text' AND {alias}.value = ?)")
            parameters.append(value)
        elif kind == "number":
            parts.append(f"({alias}.type IN ('integer', 'real') AND {alias}.value = ?)")
            parameters.append(value)
        else:  # true, false, null
            parts.append(f"{alias}.type = ?")
            parameters.append(kind)
    return "(" + " OR ".join(parts) + ")", parameters


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Give a store made by an earlier format the columns this one writes."""
    for table, columns in _ADDED_COLUMNS.items():
        present = {name for _, name, *_ in connection.execute(f"PRAGMA table_info({table})")}
        for name, declaration in columns.items():
            if name not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection
