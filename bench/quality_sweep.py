"""Score retrieval variants on a BEIR dataset without re-running the whole pipeline.

Dense candidates are computed once per question; BM25 is rebuilt in memory for each
(k1, b); every fusion variant reuses both. Figures are document-level, as in `qa eval`.

    python -m bench.quality_sweep ../shared/data/scifact --split train
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from qa.beir import load_beir
from qa.chunking import ChunkSettings
from qa.embedding import DEFAULT_MODEL, Embedder
from qa.engines import EngineChoice
from qa.evaluation import document_ranking, eval_index_path, open_eval_index, snapshot_passages
from qa.fusion import Fusion, Scored, fuse
from qa.lexical import LexicalSettings, passage_terms
from qa.metrics import ranking_metrics
from qa.snapshot import Snapshot
from qa.tokens import terms
from qa.vector_store import VectorStore

DEPTH = 300


def score(rankings, dataset, qids, row_doc):
    totals = {}
    for qid, ranking in zip(qids, rankings):
        for name, value in ranking_metrics(document_ranking(ranking, row_doc, 100), dataset.qrels[qid]).items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: total / len(qids) for name, total in totals.items()}


def show(label, figures):
    print(f"{label:46s} " + "  ".join(f"{k} {v:.4f}" for k, v in figures.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--k1", type=float, nargs="*", default=[1.5, 1.2, 0.9])
    parser.add_argument("--b", type=float, nargs="*", default=[0.75, 0.4])
    parser.add_argument("--weights", type=float, nargs="*", default=[0.2, 0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--candidates", type=int, nargs="*", default=[100])
    parser.add_argument("--title", choices=["every", "first"], default="every",
                        help="BM25: the title in every passage, or only where the text has it")
    args = parser.parse_args()

    dataset = load_beir(args.dataset, args.split)
    embedder = Embedder(DEFAULT_MODEL)
    root = eval_index_path(Path("index/eval"), args.dataset, embedder.name, ChunkSettings())
    index = open_eval_index(dataset, EngineChoice(index=root), embedder, ChunkSettings(), progress=False).index
    records = snapshot_passages(index)  # position i holds records[i]
    row_doc = {i: r.passage.doc_id for i, r in enumerate(records)}
    titles = {d.doc_id: d.title for d in dataset.documents}
    qids = list(dataset.queries)
    started = time.perf_counter()
    vectors = embedder.encode([dataset.queries[q] for q in qids])
    scores, rows = VectorStore.build(index.snapshot().vectors()).search(vectors, max(DEPTH, *args.candidates))
    dense = [[(int(r), float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]
    print(f"{len(qids)} questions, {len(records)} passages; dense candidates in {time.perf_counter() - started:.0f} s")
    show("dense", score(dense, dataset, qids, row_doc))
    question_terms = [terms(dataset.queries[q]) for q in qids]
    for k1, b in itertools.product(args.k1, args.b):
        settings = LexicalSettings(k1=k1, b=b, title_in_every_passage=args.title == "every")
        lexical_index = Snapshot.single(np.zeros((len(records), 1), np.float32), [
            passage_terms(r.passage.text, titles[r.passage.doc_id], settings) for r in records], settings)
        lexical = []
        for words in question_terms:
            found = lexical_index.lexical(words, max(DEPTH, *args.candidates))
            lexical.append(found.pairs())
        show(f"bm25 k1={k1} b={b} title={args.title}", score(lexical, dataset, qids, row_doc))
        for depth in args.candidates:
            fusions = [Fusion("rrf", rrf_k=60)] + [
                Fusion("convex", dense_weight=w, dense_floor=floor)
                for w in args.weights for floor in (0.0, 0.2)
            ]
            for fusion in fusions:
                fused = [fuse(Scored.of(d[:depth]), Scored.of(l[:depth]), fusion).pairs()
                         for d, l in zip(dense, lexical)]
                label = (f"  {fusion.method} w={fusion.dense_weight} floor={fusion.dense_floor}"
                         if fusion.method == "convex" else "  rrf k=60") + f" c={depth}"
                show(label, score(fused, dataset, qids, row_doc))


if __name__ == "__main__":
    main()
