"""The Milvus engine: passages, vectors and BM25 in Milvus, a server or Milvus Lite in one file.

Two collections per index, ``qa_<index>_passages`` and ``qa_<index>_documents``:

- a passage entity holds its vector, its BM25 terms (qa's own terms, stemmed as the
  embedded engine stems them, scored by Milvus's BM25 function), where it lies, its
  document's title, source and metadata (for filters), and its document's version;
- the documents collection holds one *head* per document (its current version, title,
  source, metadata, checksum and passage count), its text, headings and pages in
  *parts* of at most ``PART_CHARS`` characters (a VARCHAR holds 65,535 bytes), a
  *mark* per write under way, and the index's settings.

Milvus has no transaction across entities, so a write goes: marks, the new version's
passages and parts, the heads (one entity each: the commit), then older versions and
the marks are deleted. Searches read with Strong consistency and keep only passages of
their document's head version, so a search during a write sees each document wholly
old or wholly new, never both, and never a removed version once the write has
answered. A write killed on the way leaves its marks; the next open rolls each document
forward (its head was written) or back (it was not).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
from pymilvus.exceptions import ConnectionConfigException

from qa.database import PassageRecord, Revision, WriteResult
from qa.documents import Document, Heading, Passage
from qa.engine import DocumentSummary, EngineState, QuestionVectors
from qa.engines import EngineChoice
from qa.errors import DocumentExists, IndexUnavailable, InvalidInput
from qa.fusion import Fusion, Ranking, Scored, fuse
from qa.index import settings_differ
from qa.lexical import LexicalSettings, passage_terms
from qa.lru import LRUCache
from qa.milvus_expr import filter_expression, one_of, quoted

if TYPE_CHECKING:
    from qa.search import SearchRequest

# A Milvus Lite iterator cannot ask the server for its timestamp and says so on every
# listing; it then takes the latest, which is what qa wants.
logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)

# The layout of the collections; an index made otherwise is refused, to be rebuilt.
MILVUS_FORMAT = "1"
MAX_BYTES = 65_535  # the most a Milvus VARCHAR holds
PART_CHARS = 16_000  # a character is at most 4 bytes of UTF-8
INSERT_ROWS = 256  # passages per insert request, well under gRPC's message limit
READ_AT_ONCE = 4096  # keys per get, rows per iterator batch
SLACK = 20  # hits asked beyond k, in case some belong to versions a write is replacing
# A mark left this long ago belongs to a write that died (Milvus Lite serves one process,
# so there every mark found at open is one).
ABANDONED_AFTER_SECONDS = 600.0
PASSAGES_CACHED = 4096
SAMPLED_PASSAGES = 20_000
SAMPLE_SECONDS = 300.0
# Engines of this process using each Milvus Lite file.
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()
_PASSAGE_FIELDS = ["doc_id", "version", "ordinal", "start", "end", "section", "page", "title", "source", "text"]


@dataclass(frozen=True)
class Head:
    """A document's current version, and what is listed of it."""

    doc_id: str
    version: int
    data: dict[str, Any]


class MilvusEngine:
    """An ``Engine`` on one Milvus database; passage keys are Milvus primary keys."""

    def __init__(self, client: MilvusClient, choice: EngineChoice) -> None:
        self._client = client
        self.location = choice.describe()
        self._uri = choice.uri
        self._lite = choice.uri.endswith(".db")
        prefix = "qa_" + re.sub(r"\W", "_", choice.name, flags=re.ASCII)
        self._passages_name, self._documents_name = f"{prefix}_passages", f"{prefix}_documents"
        self._lexical = LexicalSettings()
        self._writing = threading.Lock()
        self._cache: LRUCache[int, PassageRecord] = LRUCache(PASSAGES_CACHED)
        self._sides = ThreadPoolExecutor(2, thread_name_prefix="milvus-search")
        self._sources: tuple[tuple[int, int], list[str]] | None = None
        self._model: str | None = None
        self._sampled: tuple[float, int, Counter[str]] | None = None

    @classmethod
    def open(cls, choice: EngineChoice, model: str | None = None) -> MilvusEngine:
        missing = IndexUnavailable(f"no index {choice.name!r} in Milvus at {choice.uri}: build one with "
                                   f"`qa ingest PATH --engine milvus --index {choice.index}`", code="index_missing")
        if choice.uri.endswith(".db") and not Path(choice.uri).is_file():
            raise missing  # rather than make an empty Milvus Lite file
        engine = cls(_connect(choice), choice)
        if not engine._client.has_collection(engine._documents_name):
            engine.close()
            raise missing
        meta = engine._checked_meta()
        if model is not None and model != meta["model"]:
            engine.close()
            raise IndexUnavailable(f"index {choice.name!r} in Milvus was built with model {meta['model']!r}, not "
                                   f"{model!r}; query it with that model or rebuild it with `qa ingest --replace`",
                                   code="index_model")
        engine.recover()
        return engine

    @classmethod
    def open_for_writing(cls, choice: EngineChoice, meta: dict[str, str], replace: bool = False) -> MilvusEngine:
        engine = cls(_connect(choice), choice)
        if not engine._client.has_collection(engine._documents_name):
            engine._create(meta)
        differs = settings_differ(engine.meta(), meta)
        if differs and not replace:
            engine.close()
            raise IndexUnavailable(f"index {choice.name!r} in Milvus was built with other settings {differs}; "
                                   f"ingest with --replace to rebuild it", code="index_settings")
        if not differs:
            engine._checked_meta()
        engine.recover()
        return engine

    # Settings and state

    @property
    def lexical(self) -> LexicalSettings:
        return self._lexical

    def meta(self) -> dict[str, str]:
        rows = self._client.query(self._documents_name, filter='kind == "meta"', output_fields=["doc_id", "data"])
        return {row["doc_id"]: row["data"] for row in rows}

    def _checked_meta(self) -> dict[str, str]:
        meta = self.meta()
        if meta.get("format") != MILVUS_FORMAT:
            self.close()
            raise IndexUnavailable(f"index {self.location} has Milvus layout {meta.get('format')!r}; this version "
                                   f"of qa reads {MILVUS_FORMAT}. Rebuild it with `qa ingest --replace`.",
                                   code="index_format")
        self._model = meta["model"]
        return meta

    def state(self) -> EngineState:
        documents = self._count(self._documents_name, 'kind == "head"')
        return EngineState(documents, self._count(self._passages_name, ""), int(self.meta().get("generation", 0)))

    def check(self) -> None:
        model = self.meta().get("model")
        if self._model is not None and model != self._model:
            raise IndexUnavailable(f"index {self.location} was rebuilt with model {model!r} while this process "
                                   f"served {self._model!r}; restart it to serve the rebuilt index",
                                   code="index_settings")

    def refresh(self) -> EngineState:
        return self.state()  # writes are seen once they answer

    def compact(self) -> None:
        """Nothing to wait for: Milvus merges its own segments."""

    def save(self) -> None:
        """Nothing to save: Milvus keeps its own indexes."""

    def save_every(self, seconds: float) -> None:
        """Nothing to save: Milvus keeps its own indexes."""

    def close(self) -> None:
        self._sides.shutdown(wait=False)
        self._client.close()
        if self._lite:
            _let_go(self._uri)

    # Searching

    def rank_many(self, requests: list[SearchRequest], vectors: QuestionVectors,
                  question_terms: list[list[str]], fusion: Fusion, candidates: int) -> list[Ranking]:
        """Each side searched in Milvus (the filter applied there), hits of versions that are
        not their document's head dropped, and the two sides fused here, as the embedded
        engine fuses them: Milvus's own rankers do worse with BM25's unbounded scores."""
        dense, lexical = self._hits(requests, vectors(), question_terms, candidates)
        current = self._head_versions({hit["entity"]["doc_id"] for hits in (*dense.values(), *lexical.values())
                                       for hit in hits})
        rankings = []
        for at, request in enumerate(requests):
            dense_side, lexical_side = _scored(dense.get(at, []), current), _scored(lexical.get(at, []), current)
            if request.mode == "dense":
                ranked = dense_side
            elif request.mode == "lexical":
                ranked = lexical_side
            else:
                ranked = fuse(dense_side, lexical_side, fusion)
            rankings.append(ranked.top(request.k).pairs())
        return rankings

    def _hits(self, requests: list[SearchRequest], vectors: list[np.ndarray | None], question_terms: list[list[str]],
              candidates: int) -> tuple[dict[int, list[dict]], dict[int, list[dict]]]:
        """Each request's dense and BM25 hits by its position, deep enough for its mode: one
        Milvus search a side for all requests with the same filter, the two sides at once."""
        groups: dict[str, list[int]] = {}
        for at, request in enumerate(requests):
            groups.setdefault(filter_expression(request.filter) if request.filter else "", []).append(at)
        dense: dict[int, list[dict]] = {}
        lexical: dict[int, list[dict]] = {}
        for expression, members in groups.items():
            depth = max(max(candidates, requests[i].k) if requests[i].mode == "hybrid" else requests[i].k
                        for i in members)
            limit = min(16_384, depth + SLACK)
            wanted = [i for i in members if requests[i].mode != "lexical"]
            worded = [i for i in members if requests[i].mode != "dense" and question_terms[i]]
            dense_hits = self._sides.submit(self._search, "vector", [vectors[i] for i in wanted], limit, expression)
            lexical_hits = self._search("sparse", [" ".join(question_terms[i]) for i in worded], limit, expression)
            dense.update(zip(wanted, dense_hits.result()))
            lexical.update(zip(worded, lexical_hits))
        return dense, lexical

    def _search(self, field: str, data: list, limit: int, expression: str) -> list[list[dict]]:
        if not data:
            return []
        if field == "vector":
            data = [np.asarray(v, dtype=np.float32).tolist() for v in data]
        metric = "IP" if field == "vector" else "BM25"
        return self._client.search(self._passages_name, data=data, anns_field=field, limit=limit, filter=expression,
                                   output_fields=["doc_id", "version"], search_params={"metric_type": metric})

    def term_weights(self, question_terms: list[str]) -> dict[str, float]:
        """Each term's BM25 IDF among up to ``SAMPLED_PASSAGES`` passages (all of a smaller
        index): Milvus does not say how many passages hold a term. Counted again at most
        every ``SAMPLE_SECONDS``; weights a little stale only move the answer sentence."""
        sampled = self._sampled
        if sampled is None or time.monotonic() - sampled[0] > SAMPLE_SECONDS:
            sampled = self._sampled = (time.monotonic(), *self._document_frequencies())
        _, total, frequency = sampled
        return {term: math.log(1 + (total - frequency.get(term, 0) + 0.5) / (frequency.get(term, 0) + 0.5))
                for term in question_terms}

    def _document_frequencies(self) -> tuple[int, Counter[str]]:
        """How many passages were sampled, and how many of them hold each term."""
        frequency: Counter[str] = Counter()
        total = 0
        for row in self._iterate(self._passages_name, "", ["lexical"]):
            frequency.update(set(row["lexical"].split()))
            total += 1
            if total >= SAMPLED_PASSAGES:
                break
        return total, frequency

    def passages(self, keys: Iterable[int]) -> dict[int, PassageRecord]:
        keys = list(keys)
        found = {key: record for key in keys if (record := self._cache.get(key)) is not None}
        missing = [key for key in keys if key not in found]
        for row in self._get(self._passages_name, missing, ["pk", *_PASSAGE_FIELDS]):
            page = row["page"] or None
            passage = Passage(row["doc_id"], row["ordinal"], row["start"], row["end"], row["text"], row["section"],
                              page)
            found[row["pk"]] = record = PassageRecord(row["pk"], passage, row["title"], row["source"])
            self._cache.put(row["pk"], record)
        return found

    def passage_documents(self) -> dict[int, str]:
        current = {head.doc_id: head.version for head in self._all_heads()}
        return {row["pk"]: row["doc_id"] for row in self._iterate(self._passages_name, "", ["pk", "doc_id", "version"])
                if current.get(row["doc_id"]) == row["version"]}

    # Documents

    def checksums(self, doc_ids: Iterable[str]) -> dict[str, str]:
        return {doc_id: head.data["checksum"] for doc_id, head in self._heads(doc_ids).items()}

    def document(self, doc_id: str) -> tuple[Document, list[Passage]] | None:
        head = self._heads([doc_id]).get(doc_id)
        if head is None:
            return None
        match = f"doc_id == {quoted(doc_id)} and version == {head.version}"
        parts = self._client.query(self._documents_name, filter=f'kind == "part" and {match}',
                                   output_fields=["part", "data"])
        stored = json.loads("".join(row["data"] for row in sorted(parts, key=lambda row: row["part"])))
        document = Document(doc_id, head.data["title"], head.data["source"], stored["text"], head.data["metadata"],
                            tuple(Heading(*h) for h in stored["headings"]), tuple(stored["pages"]))
        spans = self._client.query(self._passages_name, filter=match,
                                   output_fields=["ordinal", "start", "end", "section", "page"])
        passages = [Passage(doc_id, s["ordinal"], s["start"], s["end"], document.text[s["start"] : s["end"]],
                            s["section"], s["page"] or None) for s in sorted(spans, key=lambda s: s["ordinal"])]
        return document, passages

    def documents(self, offset: int, limit: int) -> tuple[int, list[DocumentSummary]]:
        heads = sorted(self._all_heads(), key=lambda head: head.doc_id)
        return len(heads), [DocumentSummary(h.doc_id, h.data["title"], h.data["source"], h.data["metadata"],
                                            h.data["passages"]) for h in heads[offset : offset + limit]]

    def sources(self, limit: int) -> list[str]:
        """Listed again only once the index has changed (the page lists them each time)."""
        key = (int(self.meta().get("generation", 0)), limit)
        listed = self._sources
        if listed is None or listed[0] != key:
            listed = self._sources = (key, sorted({h.data["source"] for h in self._all_heads()})[:limit])
        return listed[1]

    # Writing

    def write(self, revisions: Iterable[Revision] = (), delete: Iterable[str] = (),
              keep_only: set[str] | None = None, create: bool = False) -> WriteResult:
        revisions, delete = list(revisions), list(dict.fromkeys(delete))
        with self._writing:
            self._check_writable()
            heads = self._heads([r.document.doc_id for r in revisions] + delete)
            if create:
                for revision in revisions:
                    if revision.document.doc_id in heads:
                        raise DocumentExists(revision.document.doc_id)
            deleted = [doc_id for doc_id in delete if doc_id in heads]
            if keep_only is not None:
                deleted += [h.doc_id for h in self._all_heads() if h.doc_id not in keep_only and h.doc_id not in heads]
            written = [r.document.doc_id for r in revisions]
            version = time.time_ns()
            rows = [_entity_rows(r, version, self._lexical) for r in revisions]  # checked before anything is written
            touched = written + deleted
            if touched:
                self._upsert(self._documents_name, [_mark(doc_id, version) for doc_id in touched])
                self._insert(self._passages_name, (row for passages, _, _ in rows for row in passages))
                self._insert(self._documents_name, (row for _, parts, _ in rows for row in parts))
                superseded = self._superseded(written, version)
                self._upsert(self._documents_name, [head for _, _, head in rows if head["doc_id"] not in superseded])
                if deleted:
                    self._client.delete(self._documents_name, ids=[_head_key(doc_id) for doc_id in deleted])
                self._remove_older(touched, version)
                if superseded:  # its newer version stands: this one's passages and parts go
                    self._remove(f"{one_of('doc_id', sorted(superseded))} and version == {version}")
                self._client.delete(self._documents_name, ids=[_mark_key(doc_id, version) for doc_id in touched])
            generation = self._next_generation()
        return WriteResult(generation, deleted, {doc_id for doc_id in written if doc_id in heads})

    def rebuild(self, meta: dict[str, str], batches: Iterable[list[Revision]]) -> EngineState:
        """Drop every document and store ``batches`` with the settings ``meta``. Unlike the
        embedded engine, the old contents are not served while the new ones are written."""
        with self._writing:
            for name in (self._passages_name, self._documents_name):
                self._client.drop_collection(name)
            self._create(meta)
        for revisions in batches:
            self.write(revisions)
        return self.state()

    def recover(self) -> None:
        """Finish or undo each write that died on the way, as its marks say: a document
        whose head is the marked version keeps it, any other drops it."""
        oldest = time.time_ns() - (0 if self._lite else int(ABANDONED_AFTER_SECONDS * 1e9))
        with self._writing:
            marks = [m for m in self._iterate(self._documents_name, 'kind == "mark"', ["key", "doc_id", "version"])
                     if m["version"] <= oldest]
            if not marks:
                return
            heads = self._heads({mark["doc_id"] for mark in marks})
            for mark in marks:
                head = heads.get(mark["doc_id"])
                keep = f" and version != {head.version}" if head else ""
                self._remove(f"doc_id == {quoted(mark['doc_id'])} and version <= {mark['version']}{keep}")
            self._client.delete(self._documents_name, ids=[mark["key"] for mark in marks])

    def _superseded(self, doc_ids: list[str], version: int) -> set[str]:
        """Those of ``doc_ids`` that another process has committed a newer version of since
        this write began: that version stands."""
        return {doc_id for doc_id, current in self._head_versions(set(doc_ids)).items() if current > version}

    def _check_writable(self) -> None:
        if self._model is not None:
            self.check()

    def _remove_older(self, doc_ids: list[str], version: int) -> None:
        """Drop the passages and parts of versions of ``doc_ids`` older than ``version``."""
        for first in range(0, len(doc_ids), READ_AT_ONCE):
            self._remove(f"{one_of('doc_id', doc_ids[first : first + READ_AT_ONCE])} and version < {version}")

    def _remove(self, where: str) -> None:
        """Drop the passages and text parts ``where`` selects (by doc_id and version)."""
        self._client.delete(self._passages_name, filter=where)
        self._client.delete(self._documents_name, filter=f'kind == "part" and {where}')

    def _next_generation(self) -> int:
        generation = int(self.meta().get("generation", 0)) + 1
        self._upsert(self._documents_name, [_meta_row("generation", str(generation))])
        return generation

    # Reading heads and rows

    def _heads(self, doc_ids: Iterable[str]) -> dict[str, Head]:
        keys = [_head_key(doc_id) for doc_id in dict.fromkeys(doc_ids)]
        return {row["doc_id"]: Head(row["doc_id"], row["version"], json.loads(row["data"]))
                for row in self._get(self._documents_name, keys, ["doc_id", "version", "data"])}

    def _head_versions(self, doc_ids: set[str]) -> dict[str, int]:
        keys = [_head_key(doc_id) for doc_id in doc_ids]
        return {row["doc_id"]: row["version"] for row in self._get(self._documents_name, keys, ["doc_id", "version"])}

    def _all_heads(self) -> Iterator[Head]:
        for row in self._iterate(self._documents_name, 'kind == "head"', ["doc_id", "version", "data"]):
            yield Head(row["doc_id"], row["version"], json.loads(row["data"]))

    def _get(self, collection: str, keys: list, fields: list[str]) -> list[dict]:
        found: list[dict] = []
        for first in range(0, len(keys), READ_AT_ONCE):
            found += self._client.get(collection, ids=keys[first : first + READ_AT_ONCE], output_fields=fields)
        return found

    def _iterate(self, collection: str, expression: str, fields: list[str]) -> Iterator[dict]:
        iterator = self._client.query_iterator(collection, batch_size=READ_AT_ONCE, filter=expression,
                                               output_fields=fields)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def _count(self, collection: str, expression: str) -> int:
        (row,) = self._client.query(collection, filter=expression, output_fields=["count(*)"])
        return int(row["count(*)"])

    def _insert(self, collection: str, rows: Iterable[dict]) -> None:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) == INSERT_ROWS:
                self._client.insert(collection, batch)
                batch = []
        if batch:
            self._client.insert(collection, batch)

    def _upsert(self, collection: str, rows: list[dict]) -> None:
        for first in range(0, len(rows), INSERT_ROWS):
            self._client.upsert(collection, rows[first : first + INSERT_ROWS])

    # Making the collections

    def _create(self, meta: dict[str, str]) -> None:
        """The two collections, empty, with ``meta`` as the index's settings."""
        client, dimension = self._client, int(meta["dimension"])
        passages = client.create_schema(auto_id=True)
        passages.add_field("pk", DataType.INT64, is_primary=True)
        for name in ("doc_id", "section", "title", "source", "text"):
            passages.add_field(name, DataType.VARCHAR, max_length=MAX_BYTES)
        for name in ("version", "ordinal", "start", "end", "page"):
            passages.add_field(name, DataType.INT64)
        passages.add_field("metadata", DataType.JSON)
        passages.add_field("lexical", DataType.VARCHAR, max_length=MAX_BYTES, enable_analyzer=True,
                           analyzer_params={"tokenizer": "whitespace"})  # qa's own terms, already stemmed
        passages.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        passages.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        passages.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["lexical"],
                                       output_field_names=["sparse"]))
        indexes = client.prepare_index_params()
        indexes.add_index("vector", index_type="FLAT" if self._lite else "AUTOINDEX", metric_type="IP")
        indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                          params={"bm25_k1": self._lexical.k1, "bm25_b": self._lexical.b})
        client.create_collection(self._passages_name, schema=passages, index_params=indexes,
                                 consistency_level="Strong")
        documents = client.create_schema(auto_id=False)
        documents.add_field("key", DataType.VARCHAR, is_primary=True, max_length=128)
        documents.add_field("kind", DataType.VARCHAR, max_length=16)
        for name in ("doc_id", "data"):
            documents.add_field(name, DataType.VARCHAR, max_length=MAX_BYTES)
        documents.add_field("version", DataType.INT64)
        documents.add_field("part", DataType.INT64)
        documents.add_field("placeholder", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector in every collection
        indexes = client.prepare_index_params()
        indexes.add_index("placeholder", index_type="FLAT", metric_type="L2")
        client.create_collection(self._documents_name, schema=documents, index_params=indexes,
                                 consistency_level="Strong")
        settings = {**meta, "format": MILVUS_FORMAT, "generation": "0", "store_id": hashlib.sha256(
            str(time.time_ns()).encode()).hexdigest()[:32]}
        self._upsert(self._documents_name, [_meta_row(key, value) for key, value in settings.items()])
        self._model = meta["model"]


def _connect(choice: EngineChoice) -> MilvusClient:
    """A client of the Milvus at ``choice.uri``; Milvus Lite's file is made if missing."""
    lite = choice.uri.endswith(".db")
    if lite:
        Path(choice.uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # milvus-lite 2.5 imports pkg_resources, and says so
            warnings.simplefilter("ignore", UserWarning)
            client = MilvusClient(choice.uri, token=choice.milvus_token or "")
        if lite:
            with _LITE_LOCK:
                _LITE_USERS[choice.uri] = _LITE_USERS.get(choice.uri, 0) + 1
        return client
    except ConnectionConfigException as error:
        busy = " (Milvus Lite serves one process: is another qa using it?)" if choice.uri.endswith(".db") else ""
        raise IndexUnavailable(f"cannot open Milvus at {choice.uri}{busy}: {error.message}",
                               code="index_unavailable") from None
    except MilvusException as error:
        raise IndexUnavailable(f"cannot reach Milvus at {choice.uri}: {error.message}",
                               code="index_unavailable") from None


def _let_go(uri: str) -> None:
    """Stop this process's Milvus Lite server of ``uri`` once no engine here uses it, so that
    another process can open the file (pymilvus itself keeps it until the process ends)."""
    with _LITE_LOCK:
        _LITE_USERS[uri] -= 1
        if _LITE_USERS[uri]:
            return
        del _LITE_USERS[uri]
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def _scored(hits: list[dict], current: dict[str, int]) -> Scored:
    """Hits of their document's current version, as ranked."""
    kept = [(hit["id"], hit["distance"]) for hit in hits
            if current.get(hit["entity"]["doc_id"]) == hit["entity"]["version"]]
    return Scored.of(kept)


def _entity_rows(revision: Revision, version: int, lexical: LexicalSettings
                 ) -> tuple[list[dict], list[dict], dict]:
    """The passage entities, text parts and head of one revision, each checked to fit Milvus."""
    document = revision.document
    listed = {"title": document.title, "source": document.source, "metadata": document.metadata,
              "checksum": document.checksum, "passages": len(revision.passages)}
    stored = json.dumps({"text": document.text, "headings": [[h.start, h.end, h.level] for h in document.headings],
                         "pages": list(document.pages)}, ensure_ascii=False)
    chunks = [stored[i : i + PART_CHARS] for i in range(0, len(stored), PART_CHARS)] or [""]
    listed["parts"] = len(chunks)
    head = {"key": _head_key(document.doc_id), "kind": "head", "doc_id": document.doc_id, "version": version,
            "part": 0, "data": _fitting(json.dumps(listed, ensure_ascii=False), "its title, source and metadata"),
            "placeholder": [0.0, 0.0]}
    _fitting(document.doc_id, "its id")
    parts = [{"key": f"part:{_digest(document.doc_id)}:{version}:{n}", "kind": "part", "doc_id": document.doc_id,
              "version": version, "part": n, "data": chunk, "placeholder": [0.0, 0.0]}
             for n, chunk in enumerate(chunks)]
    passages = []
    terms = revision.terms.expanded() if revision.terms is not None else [
        " ".join(passage_terms(p.text, document.title, lexical, p.section)) for p in revision.passages]
    for passage, vector, words in zip(revision.passages, revision.vectors, terms):
        passages.append({
            "doc_id": document.doc_id, "version": version, "ordinal": passage.ordinal, "start": passage.start,
            "end": passage.end, "page": passage.page or 0, "section": _cut(passage.section),
            "title": _cut(document.title),
            "source": _fitting(document.source, "its source"), "metadata": document.metadata,
            "text": _fitting(passage.text, f"passage {passage.ordinal}"), "lexical": _cut(words),
            "vector": vector.tolist(),
        })
    return passages, parts, head


def _fitting(text: str, what: str) -> str:
    if len(text.encode()) > MAX_BYTES:
        raise InvalidInput(f"the Milvus engine keeps at most {MAX_BYTES} bytes of a document's {what}; "
                           f"this one is longer", code="too_long_for_milvus")
    return text


def _cut(text: str) -> str:
    """``text`` cut to what a VARCHAR holds, at a character boundary."""
    encoded = text.encode()
    return text if len(encoded) <= MAX_BYTES else encoded[:MAX_BYTES].decode(errors="ignore")


def _digest(doc_id: str) -> str:
    return hashlib.sha256(doc_id.encode()).hexdigest()[:40]


def _head_key(doc_id: str) -> str:
    return f"head:{_digest(doc_id)}"


def _mark_key(doc_id: str, version: int) -> str:
    return f"mark:{_digest(doc_id)}:{version}"


def _mark(doc_id: str, version: int) -> dict:
    return {"key": _mark_key(doc_id, version), "kind": "mark", "doc_id": doc_id, "version": version, "part": 0,
            "data": "", "placeholder": [0.0, 0.0]}


def _meta_row(key: str, value: str) -> dict:
    return {"key": f"meta:{key}", "kind": "meta", "doc_id": key, "version": 0, "part": 0, "data": value,
            "placeholder": [0.0, 0.0]}
