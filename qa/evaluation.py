"""Run a BEIR dataset's questions through the search code the API uses, and score them."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from qa.beir import Dataset
from qa.chunking import ChunkSettings
from qa.database import FORMAT_VERSION, PassageRecord
from qa.embedding import Embedder
from qa.engine import Engine
from qa.engines import EngineChoice, open_engine_for_writing
from qa.fusion import Ranking
from qa.index import Index
from qa.ingest import index_meta, store_documents
from qa.metrics import ranking_metrics
from qa.search import Searcher, SearchRequest
from qa.tokens import terms

BATCH = 256
LATENCY_SAMPLE = 100


@dataclass
class ModeReport:
    """Averaged figures of one mode over a dataset's questions."""

    mode: str
    metrics: dict[str, float]
    answer_hit: float | None
    questions: int
    seconds: float
    p50_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, **{k: round(v, 4) for k, v in self.metrics.items()},
            "answer_in_first_sentence": None if self.answer_hit is None else round(self.answer_hit, 4),
            "questions": self.questions, "seconds": round(self.seconds, 1), "p50_ms": round(self.p50_ms, 2),
        }


def eval_index_path(cache: Path, folder: Path, model: str, settings: ChunkSettings) -> Path:
    """Where the index of ``folder``'s corpus is cached for these settings."""
    key = json.dumps([str(folder.resolve()), model, settings.as_dict(), FORMAT_VERSION])
    return cache / f"{folder.resolve().name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def open_eval_index(dataset: Dataset, choice: EngineChoice, embedder: Embedder, settings: ChunkSettings,
                    progress: bool) -> Engine:
    """The cached index of the dataset's corpus, embedding only documents it lacks."""
    engine = open_engine_for_writing(choice, index_meta(embedder, settings), bulk=True)
    store_documents(engine, embedder, dataset.documents, replace=True, progress=progress)
    engine.compact()
    engine.save()
    return engine


def snapshot_passages(index: Index) -> list[PassageRecord]:
    """The passages of the index's current snapshot in position order, for experiments
    that work on FAISS and BM25 positions directly."""
    snapshot = index.snapshot()
    found = index.store.passages(snapshot.rows)
    return [found[int(row)] for row in snapshot.rows]


def document_ranking(ranking: Ranking, row_document: dict[int, str], depth: int) -> list[str]:
    """Document ids in rank order, each once: a document ranks by its best passage."""
    return list(dict.fromkeys(row_document[row] for row, _ in ranking))[:depth]


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def answer_found(sentence: str, answers: Iterable[str]) -> bool:
    """Whether a gold answer appears in ``sentence``, ignoring case and punctuation."""
    haystack = f" {_normalise(sentence)} "
    return any(f" {_normalise(a)} " in haystack for a in answers if _normalise(a))


def evaluate(searcher: Searcher, dataset: Dataset, mode: str, depth: int = 100,
             progress: bool = False) -> ModeReport:
    """Score every question of ``dataset`` in ``mode``, ranking documents to ``depth``.

    Rankings come from the searcher's own ``rank_many``; the answer sentence, as the
    API would give it, is computed for the first result only.
    """
    started = time.perf_counter()
    row_document = searcher.engine.passage_documents()
    ids = list(dataset.queries)
    totals: dict[str, float] = {}
    hits = judged = 0
    for first in tqdm(range(0, len(ids), BATCH), desc=f"{dataset.name} {mode}", disable=not progress):
        batch = ids[first : first + BATCH]
        # Ask for more passages than documents: a document may fill several ranks.
        requests = [SearchRequest(dataset.queries[q], 3 * depth, mode) for q in batch]
        question_terms = [terms(r.query) for r in requests]
        for qid, ranking, words in zip(batch, searcher.rank_many(requests, question_terms), question_terms):
            ranked = document_ranking(ranking, row_document, depth)
            for name, value in ranking_metrics(ranked, dataset.qrels[qid]).items():
                totals[name] = totals.get(name, 0.0) + value
            if qid in dataset.answers and ranked and dataset.qrels[qid].get(ranked[0], 0) > 0:
                judged += 1
                (top,) = searcher.results(ranking[:1], words)
                hits += answer_found(top.answer.text, dataset.answers[qid])
    seconds = time.perf_counter() - started
    return ModeReport(
        mode=mode,
        metrics={name: total / len(ids) for name, total in totals.items()},
        answer_hit=hits / judged if judged else None,
        questions=len(ids),
        seconds=seconds,
        p50_ms=single_question_p50(searcher, dataset, mode),
    )


def single_question_p50(searcher: Searcher, dataset: Dataset, mode: str, count: int = LATENCY_SAMPLE) -> float:
    """Median milliseconds of one API-sized search (k=5), one question at a time."""
    timings = []
    for query in list(dataset.queries.values())[:count]:
        started = time.perf_counter()
        searcher.search(SearchRequest(query, 5, mode))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def format_table(dataset: Dataset, reports: list[ModeReport]) -> str:
    names = list(reports[0].metrics)
    header = ["mode", *names, "answer", "p50 ms", "seconds"]
    rows = [header]
    for r in reports:
        answer = "-" if r.answer_hit is None else f"{r.answer_hit:.3f}"
        rows.append([r.mode, *(f"{r.metrics[n]:.3f}" for n in names), answer, f"{r.p50_ms:.1f}", f"{r.seconds:.0f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"{dataset.name}: {reports[0].questions} questions, {len(dataset.documents)} documents"]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    if any(r.answer_hit is not None for r in reports):
        lines.append("answer: share of rank-1 hits whose answer sentence contains a gold answer")
    return "\n".join(lines)
