"""Questions to ranked passages with their answer sentences: dense, lexical or hybrid.

The API, the page, the CLI and evaluation all search through ``Searcher``, and
every request is validated by ``SearchRequest.parse`` first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer import answer_span, matched_words
from qa.chunking import after_headings
from qa.database import PassageRecord
from qa.embedding import Embedder
from qa.errors import InvalidInput
from qa.filters import SearchFilter
from qa.fusion import Fusion, Ranking, Scored, fuse, fuse_scores
from qa.index import Index, Snapshot
from qa.lru import LRUCache
from qa.tokens import terms

MODES = ("hybrid", "dense", "lexical")
DEFAULT_K = 5
MAX_K = 50
MAX_QUERY_CHARS = 1000
_INTEGER = re.compile(r"\s*\+?\d{1,9}\s*")
# Up to this many passages, hybrid search fuses every passage's dense and BM25 scores
# as whole arrays; above, the best ``candidates`` of each side, which costs what the
# postings and the IVF lists read, not what the index holds (python -m bench.hybrid_at_scale).
WHOLE_ARRAYS_UP_TO = 200_000
# Passages shown again (a popular one, the next question on the same topic) are not
# read from the store again. A row means one passage for good, so none goes stale.
PASSAGES_CACHED = 4096
# The positions each recent filter allows, per snapshot: a filter used again (the
# page's source selector) is not asked of the store again until the index changes.
FILTERS_CACHED = 64


@dataclass(frozen=True)
class Answer:
    """The sentence of a passage that best answers: ``text`` is ``passage[start:end]``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class SearchResult:
    """One ranked passage: where it lies in its document, and its answer sentence.

    ``matches`` holds the [start, end] of each word of ``text`` that matches a word of
    the question."""

    rank: int
    score: float
    passage_id: str
    doc_id: str
    title: str
    source: str
    section: str
    page: int | None
    text: str
    start: int
    end: int
    answer: Answer
    matches: list[list[int]]


@dataclass(frozen=True)
class SearchResponse:
    """What one search found: the request's question, k, mode and filter, and its results."""

    query: str
    k: int
    mode: str
    filter: SearchFilter | None
    took_ms: float
    results: list[SearchResult]


@dataclass(frozen=True)
class SearchRequest:
    """A validated question."""

    query: str
    k: int = DEFAULT_K
    mode: str = "hybrid"
    filter: SearchFilter | None = None

    @classmethod
    def parse(cls, query: Any, k: Any = None, mode: Any = None, search_filter: SearchFilter | None = None
              ) -> SearchRequest:
        """Validate raw values (from a URL, JSON or the CLI); raises ``InvalidInput``.
        ``search_filter`` comes parsed (``SearchFilter.from_json`` or ``from_query``)."""
        return cls(_parse_query(query), _parse_k(k), _parse_mode(mode), search_filter)


def _parse_query(query: Any) -> str:
    if query is None:
        raise InvalidInput("the question (q) is missing", code="missing_query")
    if not isinstance(query, str):
        raise InvalidInput("the question (q) must be a string", code="invalid_query")
    query = query.strip()
    if not query:
        raise InvalidInput("the question (q) is empty", code="empty_query")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(
            f"the question (q) is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}", code="query_too_long"
        )
    return query


def _parse_k(k: Any) -> int:
    if k is None:
        return DEFAULT_K
    if isinstance(k, str) and _INTEGER.fullmatch(k):
        k = int(k)
    if isinstance(k, float) and k.is_integer():  # 14.0 is an integer to JSON Schema, so to the API too
        k = int(k)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be a whole number from 1 to {MAX_K}", code="invalid_k")
    return k


def _parse_mode(mode: Any) -> str:
    if mode is None:
        return "hybrid"
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}", code="invalid_mode")
    return mode


class Searcher:
    """Searches one opened index with the model it was built with.

    Hybrid search fuses every passage's dense and BM25 scores up to
    ``WHOLE_ARRAYS_UP_TO`` passages, and each side's best ``candidates`` above.
    ``candidates`` is also how deep each side is ranked where a whole ranking is not
    at hand: the dense side of an approximate (IVF) index, and both sides of RRF.
    """

    def __init__(
        self, index: Index, embedder: Embedder, candidates: int = 200, fusion: Fusion = Fusion()
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion
        self._passages: LRUCache[int, PassageRecord] = LRUCache(PASSAGES_CACHED)
        self._allowed: LRUCache[tuple[str, int, SearchFilter], np.ndarray] = LRUCache(FILTERS_CACHED)

    @classmethod
    def open(cls, root: Path, model: str | None = None, backend: str = "torch", cache_size: int = 1024) -> Searcher:
        """Open the index at ``root`` and load the model it was built with."""
        index = Index.open(root, model=model)
        return cls(index, Embedder(index.model, backend=backend, cache_size=cache_size))

    def warm_up(self) -> None:
        """Run one search so the first real question does not pay the model's
        one-off start-up cost (about a second on CPU)."""
        self.search(SearchRequest("warm up", 1, "hybrid"))

    def search(self, request: SearchRequest) -> SearchResponse:
        """The ranked passages that answer ``request``."""
        return self.search_many([request])[0]

    def search_many(self, requests: list[SearchRequest]) -> list[SearchResponse]:
        """Responses to several questions, their embeddings computed in one batch."""
        started = time.perf_counter()
        snapshot = self.index.snapshot()
        question_terms = [terms(r.query) for r in requests]
        rankings = self.rank_many(requests, question_terms, snapshot)
        took_ms = round((time.perf_counter() - started) * 1000 / max(1, len(requests)), 2)
        return [
            SearchResponse(request.query, request.k, request.mode, request.filter, took_ms,
                           self.results(ranking, words, snapshot))
            for request, ranking, words in zip(requests, rankings, question_terms)
        ]

    def rank_many(
        self, requests: list[SearchRequest], question_terms: list[list[str]], snapshot: Snapshot | None = None
    ) -> list[Ranking]:
        """Each request's top ``k`` passage rows with their scores; the questions that
        need the model are embedded in one batch."""
        snapshot = snapshot or self.index.snapshot()
        if not len(snapshot):
            return [[] for _ in requests]
        vectors = iter(self.embedder.encode_questions([r.query for r in requests if r.mode != "lexical"]))
        return [
            self.positions(request, next(vectors) if request.mode != "lexical" else None, words, snapshot)
            .at(snapshot.rows).pairs()
            for request, words in zip(requests, question_terms)
        ]

    def positions(
        self, request: SearchRequest, vector: np.ndarray | None, question_terms: list[str], snapshot: Snapshot
    ) -> Scored:
        """One question's top ``k`` snapshot positions in its mode, best first; with a
        filter, only positions it allows are ranked, on both sides, so that none of the
        ``k`` is lost to a passage the filter drops."""
        allowed = self.allowed(request.filter, snapshot) if request.filter else None
        if allowed is not None and not len(allowed):
            return Scored.empty()
        if request.mode == "lexical":
            scores, positions = snapshot.lexical.search(question_terms, request.k, allowed)
            return Scored(positions, scores)
        if vector is None:
            raise ValueError(f"a {request.mode} search needs the question's vector")
        if request.mode == "dense":
            return self._dense(snapshot, vector, request.k, allowed)
        depth = max(self.candidates, request.k)
        if len(snapshot) > WHOLE_ARRAYS_UP_TO:  # each side's best candidates, fused as lists
            scores, positions = snapshot.lexical.search(question_terms, depth, allowed)
            dense_side = self._dense(snapshot, vector, depth, allowed)
            return fuse(dense_side, Scored(positions, scores), self.fusion).top(request.k)
        dense = snapshot.vectors.scores(vector[np.newaxis], depth, allowed)[0]
        lexical = snapshot.lexical.scores(question_terms)
        if allowed is None:
            return fuse_scores(dense, lexical, self.fusion, request.k, self.candidates)
        fused = fuse_scores(dense[allowed], lexical[allowed], self.fusion, request.k, self.candidates)
        return Scored(allowed[fused.ids], fused.scores)

    def allowed(self, search_filter: SearchFilter, snapshot: Snapshot) -> np.ndarray:
        """The sorted snapshot positions of passages whose documents pass ``search_filter``."""
        key = (snapshot.store_id, snapshot.generation, search_filter)
        found = self._allowed.get(key)
        if found is None:
            rows = self.index.store.filtered_rows(search_filter)
            at = np.minimum(np.searchsorted(snapshot.rows, rows), max(len(snapshot) - 1, 0))
            found = at[snapshot.rows[at] == rows] if len(snapshot) else np.zeros(0, np.int64)
            self._allowed.put(key, found)
        return found

    @staticmethod
    def _dense(snapshot: Snapshot, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Scored:
        (scores,), (positions,) = snapshot.vectors.search(vector[np.newaxis], k, allowed)
        return Scored(positions[positions >= 0], scores[positions >= 0])

    def passages(self, rows: list[int]) -> dict[int, PassageRecord]:
        """The stored passages at ``rows``, from the cache where shown before."""
        found = {row: record for row in rows if (record := self._passages.get(row)) is not None}
        missing = [row for row in rows if row not in found]
        if missing:
            for row, record in self.index.store.passages(missing).items():
                found[row] = record
                self._passages.put(row, record)
        return found

    def results(
        self, ranked: Ranking, question_terms: list[str], snapshot: Snapshot | None = None
    ) -> list[SearchResult]:
        """The ranked rows as results, each with its answer sentence."""
        weights = (snapshot or self.index.snapshot()).lexical.idf(question_terms)
        records = self.passages([row for row, _ in ranked])
        results: list[SearchResult] = []
        for row, score in ranked:
            record = records.get(row)
            if record is None:  # purged since this snapshot was taken: not a result any more
                continue
            passage = record.passage
            start, end = answer_span(passage.text, weights, after_headings(passage.text, record.title,
                                                                           passage.section))
            results.append(SearchResult(
                rank=len(results) + 1, score=round(score, 6), passage_id=passage.passage_id, doc_id=passage.doc_id,
                title=record.title, source=record.source, section=passage.section, page=passage.page,
                text=passage.text, start=passage.start, end=passage.end,
                answer=Answer(passage.text[start:end], start, end),
                matches=matched_words(passage.text, question_terms),
            ))
        return results
