"""What each part of a hybrid search costs, alone in a loop and right after the encoder.

    python -m bench.search_parts [--index DIR] [--documents 1000] [--questions 200]

Without ``--index`` it indexes SQuAD-dev paragraphs as ``python -m bench`` does
(about two minutes). Each part runs once per question, timed twice: "warm" right
after the same part ran for the previous question, and "after encoding" right
after the question went through the model, as it does inside a search.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bench.speed import SQUAD, squad_workload
from qa.chunking import ChunkSettings
from qa.embedded import EmbeddedEngine
from qa.embedding import Embedder
from qa.fusion import fuse_scores
from qa.index import Index
from qa.ingest import index_meta, store_documents
from qa.search import Searcher, SearchRequest
from qa.tokens import terms


def build(root: Path, documents: list) -> None:
    embedder = Embedder(cache_size=0)
    index = Index.open_for_writing(root, index_meta(embedder, ChunkSettings()))
    store_documents(EmbeddedEngine(index), embedder, documents)
    index.save()
    index.close()


def parts(searcher: Searcher, questions: list[str]) -> dict[str, Callable[[str], object]]:
    """Each part of a hybrid search for one question, its inputs computed beforehand."""
    snapshot = searcher.engine.index.snapshot()
    depth = searcher.candidates
    words = {q: terms(q) for q in questions}
    vectors = {q: searcher.embedder.encode_questions([q]) for q in questions}
    dense = {q: snapshot.dense_scores(vectors[q][0], depth) for q in questions}
    lexical = {q: snapshot.lexical_scores(words[q]) for q in questions}
    ranked = {q: searcher.rank_many([SearchRequest(q, 5, "hybrid")], [words[q]], snapshot)[0] for q in questions}
    return {
        "question terms": lambda q: terms(q),
        "dense score of every passage": lambda q: snapshot.dense_scores(vectors[q][0], depth),
        "BM25 score of every passage": lambda q: snapshot.lexical_scores(words[q]),
        "fusion, top 5": lambda q: fuse_scores(dense[q], lexical[q], searcher.fusion, 5, depth),
        "five results with answers": lambda q: searcher.results(ranked[q], words[q], snapshot),
        "whole search but the encoder": lambda q: searcher.search(SearchRequest(q, 5, "hybrid")),
    }


def timed(part: Callable[[str], object], question: str, before: Callable[[], object]) -> float:
    before()
    started = time.perf_counter()
    part(question)
    return (time.perf_counter() - started) * 1000


def measure(searcher: Searcher, questions: list[str]) -> list[tuple[str, float, float]]:
    """(part, warm p50 ms, after-encoding p50 ms) for each part. Question vectors are
    cached first, so that no part runs the model but the encoding before it."""
    searcher.embedder.questions.capacity = len(questions)
    encode = searcher.embedder._encode_questions_now  # the model itself, past the cache
    figures = []
    for name, part in parts(searcher, questions).items():
        for question in questions:  # answers' analyses and passages cached, as in a long run
            part(question)
        warm = [timed(part, q, lambda: part(q)) for q in questions]
        cold = [timed(part, q, lambda: encode([q])) for q in questions]
        figures.append((name, float(np.percentile(warm, 50)), float(np.percentile(cold, 50))))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_parts", description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="An index to search. [default: SQuAD-dev, indexed now]")
    parser.add_argument("--documents", type=int, default=1000, help="Documents to index. [default: 1000]")
    parser.add_argument("--questions", type=int, default=200, help="Questions to ask. [default: 200]")
    args = parser.parse_args()
    workload = squad_workload(SQUAD, args.documents, args.questions)
    work = None
    if args.index is None:
        work = Path(tempfile.mkdtemp(prefix="qa-parts-"))
        args.index = work / "index"
        build(args.index, workload.documents)
    try:
        searcher = Searcher.open(EmbeddedEngine.open(args.index), backend="onnx", cache_size=0)
        searcher.warm_up()
        print(f"{'part of a hybrid search':32}{'warm p50':>12}{'after encoding p50':>22}")
        for name, warm, cold in measure(searcher, workload.questions):
            print(f"{name:32}{warm:>9.3f} ms{cold:>19.3f} ms")
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
