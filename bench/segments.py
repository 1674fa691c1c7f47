"""Search over an index's segments, in process: everything but the encoder.

    python -m bench.segments INDEX MODEL [--questions 200]

Opens the embedded index at INDEX (as `qa ingest` built it, e.g. with the stand-in
encoder of bench/stand_in.py saved at MODEL), prints how long that took and what
each segment holds (passages, exact or IVF and its nprobe), encodes 200 SQuAD-dev
questions with MODEL once, then times each mode's search of the top 5 for every
question, two rounds (the first reads the memory-mapped files into the page cache),
without the encoder, the HTTP layer or the answer sentences; then each segment's
dense search alone, question after question, so that its files stay in the CPU's
caches (what searching all segments in turn does not get).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.engine import questions
from qa.embedded import EmbeddedEngine
from qa.index import Index
from qa.search import SearchRequest
from qa.tokens import terms


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.segments", description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    index = Index.open(args.index)
    print(f"opened {args.index} in {time.perf_counter() - started:.2f} s")
    snapshot = index.snapshot()
    for view in snapshot.views:
        vectors = view.segment.vectors
        print(f"  segment of {view.live:,} passages: {vectors.kind}"
              + (f", nprobe {vectors.nprobe} of {vectors.lists} lists" if vectors.lists else ""))
    asked = questions()[: args.questions]
    encoder = SentenceTransformer(str(args.model), device="cpu")
    vectors = encoder.encode(asked, normalize_embeddings=True, convert_to_numpy=True)
    engine = EmbeddedEngine(index)
    for round_ in ("first", "second"):
        for mode in ("hybrid", "dense", "lexical"):
            took = []
            for question, vector in zip(asked, vectors):
                request = SearchRequest.parse(question, 5, mode)
                started = time.perf_counter()
                engine.positions(request, vector, terms(question), snapshot)
                took.append((time.perf_counter() - started) * 1000)
            print(f"{round_} round, {mode:>7}: p50 {np.percentile(took, 50):6.2f} ms, "
                  f"p99 {np.percentile(took, 99):6.2f} ms")
    for number, view in enumerate(snapshot.views):  # each segment alone, its files and caches warm
        took = []
        for vector in vectors:
            started = time.perf_counter()
            view.segment.vectors.search(vector[np.newaxis], 5, view.selection)
            took.append((time.perf_counter() - started) * 1000)
        print(f"segment {number} alone, dense top 5: p50 {np.percentile(took, 50):.2f} ms")
    index.close()


if __name__ == "__main__":
    main()
