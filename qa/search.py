"""Questions to ranked passages with their answer sentences: dense, lexical or hybrid.

The API, the page, the CLI and evaluation all search through ``Searcher``, and
every request is validated by ``SearchRequest.parse`` first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa.answer import answer_span, matched_words
from qa.chunking import after_headings
from qa.embedding import Embedder
from qa.errors import InvalidInput
from qa.filters import SearchFilter
from qa.fusion import Fusion, Ranking
from qa.tokens import terms

if TYPE_CHECKING:
    import numpy as np

    from qa.engine import Engine

MODES = ("hybrid", "dense", "lexical")
DEFAULT_K = 5
MAX_K = 50
MAX_QUERY_CHARS = 1000
_INTEGER = re.compile(r"\s*\+?\d{1,9}\s*")


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
    """Searches one engine with the model its passages were embedded with.

    ``candidates`` is how deep each side of a hybrid search is ranked where a whole
    ranking is not at hand (each engine says where that is); ``fusion`` how the two
    sides are combined.
    """

    def __init__(
        self, engine: Engine, embedder: Embedder, candidates: int = 200, fusion: Fusion = Fusion()
    ) -> None:
        self.engine = engine
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion

    @classmethod
    def open(cls, engine: Engine, backend: str = "torch", cache_size: int = 1024) -> Searcher:
        """A searcher of ``engine`` with the model it was built with, loaded here."""
        return cls(engine, Embedder(engine.meta()["model"], backend=backend, cache_size=cache_size))

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
        question_terms = [terms(r.query) for r in requests]
        rankings = self.rank_many(requests, question_terms)
        took_ms = round((time.perf_counter() - started) * 1000 / max(1, len(requests)), 2)
        return [
            SearchResponse(request.query, request.k, request.mode, request.filter, took_ms,
                           self.results(ranking, words))
            for request, ranking, words in zip(requests, rankings, question_terms)
        ]

    def rank_many(self, requests: list[SearchRequest], question_terms: list[list[str]]) -> list[Ranking]:
        """Each request's top ``k`` passage keys with their scores; the questions that
        need the model are embedded in one batch, when the engine asks."""

        def vectors() -> list[np.ndarray | None]:
            encoded = iter(self.embedder.encode_questions([r.query for r in requests if r.mode != "lexical"]))
            return [next(encoded) if r.mode != "lexical" else None for r in requests]

        return self.engine.rank_many(requests, vectors, question_terms, self.fusion, self.candidates)

    def results(self, ranked: Ranking, question_terms: list[str]) -> list[SearchResult]:
        """The ranked passages as results, each with its answer sentence."""
        weights = self.engine.term_weights(question_terms)
        records = self.engine.passages([key for key, _ in ranked])
        results: list[SearchResult] = []
        for key, score in ranked:
            record = records.get(key)
            if record is None:  # removed since it was ranked: not a result any more
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
