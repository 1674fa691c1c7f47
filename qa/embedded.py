"""The embedded engine: one folder holding a SQLite store, FAISS and BM25 (``qa.index``).

It ranks on the snapshot a search takes, so a write landing meanwhile is seen whole
or not at all, and it is the default engine: nothing to run beside qa.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.database import PassageRecord, Revision, WriteResult
from qa.documents import Document, Passage
from qa.engine import DocumentSummary, EngineState, QuestionVectors
from qa.filters import SearchFilter
from qa.fusion import Fusion, Ranking, Scored, fuse, fuse_scores
from qa.index import Index
from qa.lexical import LexicalSettings
from qa.lru import LRUCache
from qa.snapshot import Snapshot

if TYPE_CHECKING:
    from qa.search import SearchRequest

# Up to this many passages, hybrid search fuses every passage's dense and BM25 scores
# as whole arrays; above, the dense top ``candidates`` with their BM25 scores and the
# BM25 top k (the same ranking for convex fusion), which costs what the postings and
# the IVF lists read, not what the index holds (python -m bench.hybrid_at_scale). The
# BM25 side is then ranked on another thread while the question is encoded.
WHOLE_ARRAYS_UP_TO = 200_000
# Passages shown again (a popular one, the next question on the same topic) are not
# read from the store again. A row means one passage for good, so none goes stale.
PASSAGES_CACHED = 4096
# The positions each recent filter allows, per snapshot: a filter used again (the
# page's source selector) is not asked of the store again until the index changes.
FILTERS_CACHED = 64


class EmbeddedEngine:
    """An ``Engine`` over one opened ``Index``; passage keys are store rows."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.location = str(index.root)
        self._passages: LRUCache[int, PassageRecord] = LRUCache(PASSAGES_CACHED)
        self._allowed: LRUCache[tuple[tuple, SearchFilter], np.ndarray] = LRUCache(FILTERS_CACHED)
        # The sources last listed, with the snapshot and limit they were listed for.
        self._sources: tuple[tuple[str, int, int], list[str]] | None = None
        # BM25's side of hybrid searches (_lexical_ahead); its threads start with the first one.
        self._lexical_side = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="qa-bm25")

    @classmethod
    def open(cls, root: Path, model: str | None = None) -> EmbeddedEngine:
        """The index at ``root``, for searching; ``model`` must match, if given."""
        return cls(Index.open(root, model=model))

    @classmethod
    def open_for_writing(cls, root: Path, meta: dict[str, str], replace: bool = False,
                         bulk: bool = False) -> EmbeddedEngine:
        return cls(Index.open_for_writing(root, meta, replace, bulk))

    def meta(self) -> dict[str, str]:
        return self.index.store.meta()

    @property
    def lexical(self) -> LexicalSettings:
        return self.index.lexical

    def rank_many(self, requests: list[SearchRequest], vectors: QuestionVectors,
                  question_terms: list[list[str]], fusion: Fusion, candidates: int) -> list[Ranking]:
        snapshot = self.index.snapshot()
        if not len(snapshot):
            return [[] for _ in requests]
        allowed = [self.allowed(r.filter, snapshot) if r.filter else None for r in requests]
        ahead = [self._lexical_ahead(r, words, snapshot, fusion, candidates, only)
                 for r, words, only in zip(requests, question_terms, allowed)]
        rankings = []
        for request, vector, words, only, lexical in zip(requests, vectors(), question_terms, allowed, ahead):
            found = self.positions(request, vector, words, snapshot, fusion, candidates, only, lexical)
            rankings.append(Scored(snapshot.row_at(found.ids), found.scores).pairs())
        return rankings

    def positions(self, request: SearchRequest, vector: np.ndarray | None, question_terms: list[str],
                  snapshot: Snapshot, fusion: Fusion = Fusion(), candidates: int = 200,
                  allowed: np.ndarray | None = None, lexical: Future[Scored] | None = None) -> Scored:
        """One question's top ``k`` snapshot positions in its mode, best first; with a
        filter, only positions it allows are ranked, on both sides, so that none of the
        ``k`` is lost to a passage the filter drops (nor to a deleted one). ``allowed``
        is what the filter allows, where already found; ``lexical`` the BM25 side of a
        hybrid search of candidates, where already under way (``_lexical_ahead``)."""
        if request.filter and allowed is None:
            allowed = self.allowed(request.filter, snapshot)
        if allowed is not None and not len(allowed):
            return Scored.empty()
        if request.mode == "lexical":
            return snapshot.lexical(question_terms, request.k, allowed)
        if vector is None:
            raise ValueError(f"a {request.mode} search needs the question's vector")
        if request.mode == "dense":
            return snapshot.dense(vector, request.k, allowed)
        depth = max(candidates, request.k)
        if snapshot.size > WHOLE_ARRAYS_UP_TO:
            best_lexical = lexical.result() if lexical else _lexical_side(snapshot, question_terms, request.k, depth,
                                                                            allowed, fusion)
            if fusion.method == "convex":
                return _convex_of_candidates(snapshot, vector, question_terms, request.k, depth, allowed, fusion,
                                             best_lexical)
            return fuse(snapshot.dense(vector, depth, allowed), best_lexical, fusion).top(request.k)  # RRF: lists
        if allowed is None:
            allowed = snapshot.live_positions  # None when nothing is deleted
        dense = snapshot.dense_scores(vector, depth, allowed)
        lexical_scores = snapshot.lexical_scores(question_terms)
        if allowed is None:
            return fuse_scores(dense, lexical_scores, fusion, request.k, candidates)
        fused = fuse_scores(dense[allowed], lexical_scores[allowed], fusion, request.k, candidates)
        return Scored(allowed[fused.ids], fused.scores)

    def _lexical_ahead(self, request: SearchRequest, question_terms: list[str], snapshot: Snapshot, fusion: Fusion,
                       candidates: int, allowed: np.ndarray | None) -> Future[Scored] | None:
        """The BM25 side of a hybrid search of candidates, ranked on another thread: it
        needs no vector, so it runs while the question is encoded and searched by it."""
        if request.mode != "hybrid" or snapshot.size <= WHOLE_ARRAYS_UP_TO or (allowed is not None
                                                                               and not len(allowed)):
            return None
        return self._lexical_side.submit(_lexical_side, snapshot, question_terms, request.k,
                                         max(candidates, request.k), allowed, fusion)

    def allowed(self, search_filter: SearchFilter, snapshot: Snapshot) -> np.ndarray:
        """The sorted live snapshot positions of passages whose documents pass ``search_filter``."""
        key = (snapshot.key, search_filter)
        found = self._allowed.get(key)
        if found is None:
            found = snapshot.positions_of(self.index.store.filtered_rows(search_filter))
            self._allowed.put(key, found)
        return found

    def term_weights(self, question_terms: list[str]) -> dict[str, float]:
        return self.index.snapshot().idf(question_terms)

    def passages(self, keys: Iterable[int]) -> dict[int, PassageRecord]:
        """The stored passages at ``keys``, from the cache where shown before."""
        keys = list(keys)
        found = {row: record for row in keys if (record := self._passages.get(row)) is not None}
        missing = [row for row in keys if row not in found]
        if missing:
            for row, record in self.index.store.passages(missing).items():
                found[row] = record
                self._passages.put(row, record)
        return found

    def passage_documents(self) -> dict[int, str]:
        return self.index.store.row_documents()

    def state(self) -> EngineState:
        return _state(self.index.snapshot())

    def checksums(self, doc_ids: Iterable[str]) -> dict[str, str]:
        return self.index.store.checksums(doc_ids)

    def write(self, revisions: Iterable[Revision] = (), delete: Iterable[str] = (),
              keep_only: set[str] | None = None, create: bool = False) -> WriteResult:
        return self.index.write(revisions, delete, keep_only, create)

    def rebuild(self, meta: dict[str, str], batches: Iterable[list[Revision]]) -> EngineState:
        return _state(self.index.rebuild(meta, batches))

    def refresh(self) -> EngineState:
        return _state(self.index.refresh())

    def document(self, doc_id: str) -> tuple[Document, list[Passage]] | None:
        return self.index.store.document(doc_id)

    def documents(self, offset: int, limit: int) -> tuple[int, list[DocumentSummary]]:
        store = self.index.store
        total, _ = store.counts()
        return total, [DocumentSummary(d["id"], d["title"], d["source"], d["metadata"], d["passages"])
                       for d in store.documents(offset, limit)]

    def sources(self, limit: int) -> list[str]:
        """Asked of the store again only once the index has changed (the page lists them each time)."""
        snapshot = self.index.snapshot()
        key = (snapshot.store_id, snapshot.generation, limit)
        listed = self._sources
        if listed is None or listed[0] != key:
            listed = self._sources = (key, self.index.store.sources(limit))
        return listed[1]

    def check(self) -> None:
        self.index.check()

    def compact(self) -> None:
        self.index.compact()

    def save(self) -> None:
        self.index.save()

    def save_every(self, seconds: float) -> None:
        self.index.save_every(seconds)

    def close(self) -> None:
        self._lexical_side.shutdown()
        self.index.close()


def _lexical_side(snapshot: Snapshot, question_terms: list[str], k: int, depth: int, allowed: np.ndarray | None,
                  fusion: Fusion) -> Scored:
    """What a hybrid search of candidates needs of BM25: its top ``k`` for convex
    fusion (``_convex_of_candidates``), its top ``depth`` for RRF, which fuses lists."""
    return snapshot.lexical(question_terms, k if fusion.method == "convex" else depth, allowed)


def _convex_of_candidates(snapshot: Snapshot, vector: np.ndarray, question_terms: list[str], k: int, depth: int,
                          allowed: np.ndarray | None, fusion: Fusion, best_lexical: Scored) -> Scored:
    """Convex fusion's top ``k``, the same as fusing every passage's scores: a passage
    outside the dense top ``depth`` has no dense score (as IVF gives none), so one
    outside BM25's top ``k`` (``best_lexical``) too is beaten by those ``k``, and
    only the passages of the two lists can place, the dense ones with their own BM25
    scores. Either list holds each side's best score, which scales it."""
    dense = snapshot.dense(vector, depth, allowed)
    order = np.argsort(dense.ids)
    near, near_scores = dense.ids[order], dense.scores[order]
    others = ~np.isin(best_lexical.ids, near, assume_unique=True)
    ids = np.concatenate([near, best_lexical.ids[others]])
    dense_scores = np.concatenate([near_scores, np.full(np.count_nonzero(others), -np.inf, np.float32)])
    lexical_scores = np.concatenate([snapshot.lexical_at(question_terms, near), best_lexical.scores[others]])
    by_position = np.argsort(ids, kind="stable")  # ties to the lower position, as over whole arrays
    fused = fuse_scores(dense_scores[by_position], lexical_scores[by_position], fusion, k, depth)
    return Scored(ids[by_position][fused.ids], fused.scores)


def _state(snapshot: Snapshot) -> EngineState:
    return EngineState(snapshot.documents, len(snapshot), snapshot.generation)
