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

from qa.answer import answer_span
from qa.embedding import Embedder
from qa.errors import InvalidInput
from qa.fusion import reciprocal_rank_fusion
from qa.index import Index
from qa.tokens import terms

MODES = ("hybrid", "dense", "lexical")
DEFAULT_K = 5
MAX_K = 50
MAX_QUERY_CHARS = 1000
_INTEGER = re.compile(r"\s*\+?\d{1,9}\s*")


@dataclass(frozen=True)
class SearchRequest:
    """A validated question."""

    query: str
    k: int = DEFAULT_K
    mode: str = "hybrid"

    @classmethod
    def parse(cls, query: Any, k: Any = None, mode: Any = None) -> "SearchRequest":
        """Validate raw values (from a URL, JSON or the CLI); raises ``InvalidInput``."""
        return cls(_parse_query(query), _parse_k(k), _parse_mode(mode))


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
    """Searches one opened index with the model it was built with."""

    def __init__(self, index: Index, embedder: Embedder, candidates: int = 100, rrf_k: int = 60) -> None:
        self.index = index
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k

    @classmethod
    def open(cls, root: Path, model: str | None = None) -> "Searcher":
        """Open the index at ``root`` and load the model it was built with."""
        index = Index.open(root, model=model)
        return cls(index, Embedder(index.manifest.model))

    def warm_up(self) -> None:
        """Run one search so the first real question does not pay the model's
        one-off start-up cost (about a second on CPU)."""
        self.search(SearchRequest("warm up", 1, "hybrid"))

    def search(self, request: SearchRequest) -> dict[str, Any]:
        """The API's response body for ``request``."""
        started = time.perf_counter()
        question_terms = terms(request.query)
        ranked = self._rank(request, question_terms)[: request.k]
        results = self._results(ranked, question_terms)
        return {
            "query": request.query,
            "k": request.k,
            "mode": request.mode,
            "took_ms": round((time.perf_counter() - started) * 1000, 2),
            "results": results,
        }

    def _rank(self, request: SearchRequest, question_terms: list[str]) -> list[tuple[int, float]]:
        depth = request.k if request.mode != "hybrid" else max(self.candidates, request.k)
        dense = self._dense(request.query, depth) if request.mode != "lexical" else []
        lexical = self._lexical(question_terms, depth) if request.mode != "dense" else []
        if request.mode == "dense":
            return dense
        if request.mode == "lexical":
            return lexical
        return reciprocal_rank_fusion([[r for r, _ in dense], [r for r, _ in lexical]], k=self.rrf_k)

    def _dense(self, query: str, depth: int) -> list[tuple[int, float]]:
        if not len(self.index.vectors):
            return []
        vector = self.embedder.encode([query])
        scores, rows = self.index.vectors.search(vector, depth)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    def _lexical(self, question_terms: list[str], depth: int) -> list[tuple[int, float]]:
        scores, rows = self.index.lexical.search(question_terms, depth)
        return [(int(r), float(s)) for r, s in zip(rows, scores)]

    def _results(self, ranked: list[tuple[int, float]], question_terms: list[str]) -> list[dict[str, Any]]:
        records = self.index.store.passages([row for row, _ in ranked])
        results = []
        for rank, (row, score) in enumerate(ranked, start=1):
            record = records[row]
            passage = record.passage
            start, end = answer_span(passage.text, question_terms, self.index.lexical.idf)
            results.append({
                "rank": rank,
                "score": round(float(np.float32(score)), 6),
                "passage_id": passage.passage_id,
                "doc_id": passage.doc_id,
                "title": record.title,
                "source": record.source,
                "text": passage.text,
                "start": passage.start,
                "end": passage.end,
                "answer": {"text": passage.text[start:end], "start": start, "end": end},
            })
        return results
