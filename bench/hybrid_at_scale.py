"""Hybrid search at scale, everything but the encoder: whole-array fusion against
fusing each side's best candidates, on the same passages and questions.

    python -m bench.hybrid_at_scale [--sizes 20000 50000 100000 1000000]

The passages are SQuAD-dev and SciFact texts repeated to each size (each copy marked
with a term of its own), indexed by BM25 as qa indexes them; their vectors are
synthetic clustered unit vectors (bench/scale.py), in the index qa picks for the
size. The questions are 200 SQuAD-dev questions with synthetic vectors. For each
size it prints p50/p99 of a hybrid search both ways, dense and lexical p50, and how
many of the top 5 the two ways share. ``qa.embedded.WHOLE_ARRAYS_UP_TO`` is chosen from it.

    python -m bench.hybrid_at_scale --quality ../shared/data/squad/paragraphs ../shared/data/scifact

prints ``qa eval``'s hybrid figures on real questions both ways instead: what fusing
candidates costs in quality, where it is used (above the threshold).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.scale import synthetic
from bench.speed import SQUAD
from qa.engines import EngineChoice
from qa.fusion import Fusion, Scored, fuse, fuse_scores
from qa.lexical import passage_terms
from qa.snapshot import Snapshot
from qa.tokens import terms

SCIFACT = SQUAD.parent.parent / "scifact"
QUESTIONS = 200
K, CANDIDATES = 5, 200


def passages(n: int) -> list[list[str]]:
    """BM25 terms of ``n`` passages: the two corpora's texts over and over, each copy marked."""
    texts = []
    for corpus in (SQUAD, SCIFACT):
        with open(corpus / "corpus.jsonl", encoding="utf-8") as lines:
            texts += [passage_terms(d["text"], d["title"]) for d in map(json.loads, lines)]
    return [texts[i % len(texts)] + [f"copy{i // len(texts)}"] for i in range(n)]


def questions() -> list[list[str]]:
    with open(SQUAD.parent / "dev-v1.1.json", encoding="utf-8") as file:
        data = json.load(file)["data"]
    asked = [q["question"] for article in data for p in article["paragraphs"] for q in p["qas"]]
    return [terms(q) for q in asked[:QUESTIONS]]


def _times(search, count: int) -> tuple[float, float]:
    took = []
    for i in range(count):
        started = time.perf_counter()
        search(i)
        took.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(took, 50)), float(np.percentile(took, 99))


def measure(n: int) -> dict:
    index = Snapshot.single(synthetic(n, "clustered", seed=1), passages(n))
    asked, vectors_asked = questions(), synthetic(QUESTIONS, "clustered", seed=2)
    fusion = Fusion()

    def whole(i: int) -> Scored:
        dense = index.dense_scores(vectors_asked[i], CANDIDATES)
        return fuse_scores(dense, index.lexical_scores(asked[i]), fusion, K, CANDIDATES)

    def candidates(i: int) -> Scored:
        return fuse(index.dense(vectors_asked[i], CANDIDATES), index.lexical(asked[i], CANDIDATES), fusion).top(K)

    shared = np.mean([len(set(whole(i).ids.tolist()) & set(candidates(i).ids.tolist())) / K
                      for i in range(QUESTIONS)])
    whole_ms, candidates_ms = _times(whole, QUESTIONS), _times(candidates, QUESTIONS)
    return {
        "passages": n, "vector_index": index.views[0].segment.vectors.kind,
        "whole_p50_ms": whole_ms[0], "whole_p99_ms": whole_ms[1],
        "candidates_p50_ms": candidates_ms[0], "candidates_p99_ms": candidates_ms[1],
        "dense_p50_ms": _times(lambda i: index.dense(vectors_asked[i], K), QUESTIONS)[0],
        "lexical_p50_ms": _times(lambda i: index.lexical(asked[i], K), QUESTIONS)[0],
        "top5_shared": float(shared),
    }


def quality(dataset_dir: Path, cache: Path) -> str:
    """``qa eval``'s hybrid figures on a BEIR folder, fusing whole arrays and then candidates."""
    from qa import embedded, evaluation, search
    from qa.beir import load_beir
    from qa.chunking import ChunkSettings
    from qa.embedding import DEFAULT_MODEL, Embedder

    dataset = load_beir(dataset_dir, "test")
    embedder = Embedder(DEFAULT_MODEL, backend="onnx", cache_size=0)
    root = evaluation.eval_index_path(cache, dataset_dir, embedder.name, ChunkSettings())
    engine = evaluation.open_eval_index(dataset, EngineChoice(index=root), embedder, ChunkSettings(), False)
    searcher = search.Searcher(engine, embedder)
    reports, threshold = [], embedded.WHOLE_ARRAYS_UP_TO
    try:
        for name, up_to in (("whole arrays", engine.state().passages), ("candidates", 0)):
            embedded.WHOLE_ARRAYS_UP_TO = up_to
            report = evaluation.evaluate(searcher, dataset, "hybrid", 100)
            report.mode = f"hybrid, {name}"
            reports.append(report)
    finally:
        embedded.WHOLE_ARRAYS_UP_TO = threshold
    return evaluation.format_table(dataset, reports)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hybrid_at_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 50_000, 100_000, 1_000_000])
    parser.add_argument("--quality", type=Path, nargs="*", metavar="DATASET_DIR",
                        help="Instead, qa eval's hybrid figures on these BEIR folders, both ways.")
    parser.add_argument("--cache", type=Path, default=Path("index/eval"), help="qa eval's index cache.")
    args = parser.parse_args()
    if args.quality:
        for folder in args.quality:
            print(quality(folder, args.cache))
        return
    print("passages   vectors  whole p50/p99 ms  candidates p50/p99 ms  dense p50  lexical p50  top-5 shared")
    for n in args.sizes:
        row = measure(n)
        print(f"{n:>9,}  {row['vector_index']:>7}  {row['whole_p50_ms']:>7.2f} / {row['whole_p99_ms']:<7.2f}"
              f"  {row['candidates_p50_ms']:>9.2f} / {row['candidates_p99_ms']:<9.2f}"
              f"  {row['dense_p50_ms']:>9.2f}  {row['lexical_p50_ms']:>11.2f}  {row['top5_shared']:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
