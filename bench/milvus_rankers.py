"""Milvus's own hybrid rankers beside qa's convex fusion, on the same Milvus collections.

    python -m bench.milvus_rankers [DATASET_DIR ...]

For each BEIR folder (default: SciFact and SQuAD-dev), the Milvus index `qa eval
--engine milvus` made of it (it is built first, as `qa eval` would, when missing) is
searched three ways for every question: qa's hybrid search (each side's 200 best,
fused by convex fusion in qa), and Milvus's `hybrid_search` over the same two sides
ranked by its `RRFRanker(60)` and by its `WeightedRanker(0.4, 0.6)` (qa's dense and
BM25 weights). Documents rank by their best passage, as in `qa eval`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

from qa.beir import load_beir
from qa.chunking import ChunkSettings
from qa.embedding import DEFAULT_MODEL, Embedder
from qa.engines import EngineChoice
from qa.evaluation import document_ranking, eval_index_path, open_eval_index
from qa.metrics import ranking_metrics
from qa.search import Searcher, SearchRequest
from qa.tokens import terms

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEPTH = 200
BATCH = 64


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.milvus_rankers", description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, nargs="*", default=[DATA / "scifact", DATA / "squad" / "paragraphs"])
    args = parser.parse_args()
    embedder = Embedder(DEFAULT_MODEL, backend="onnx", cache_size=0)
    print("dataset    ranking                         nDCG@10    R@1   R@10")
    for folder in args.datasets:
        for name, figures in compare(folder, embedder).items():
            print(f"{folder.name:10} {name:30} {figures['nDCG@10']:8.3f} {figures['R@1']:6.3f} {figures['R@10']:6.3f}")


def compare(folder: Path, embedder: Embedder) -> dict[str, dict[str, float]]:
    dataset = load_beir(folder, "test")
    root = eval_index_path(Path("index/eval"), folder, embedder.name, ChunkSettings())
    engine = open_eval_index(dataset, EngineChoice("milvus", root), embedder, ChunkSettings(), progress=False)
    searcher = Searcher(engine, embedder)
    documents = engine.passage_documents()
    client, collection = engine._client, engine._passages_name
    totals: dict[str, dict[str, float]] = {}
    ids = list(dataset.queries)
    rankers = {"Milvus RRFRanker(60)": RRFRanker(60), "Milvus WeightedRanker(0.4, 0.6)": WeightedRanker(0.4, 0.6)}
    for first in range(0, len(ids), BATCH):
        batch = ids[first : first + BATCH]
        questions = [dataset.queries[q] for q in batch]
        words = [terms(q) for q in questions]
        requests = [SearchRequest(q, DEPTH, "hybrid") for q in questions]
        rankings = {"qa convex fusion (in qa)": searcher.rank_many(requests, words)}
        vectors = embedder.encode_questions(questions)
        for name, ranker in rankers.items():
            found = []
            for vector, question_terms in zip(vectors, words):
                sides = [AnnSearchRequest([vector.tolist()], "vector", {"metric_type": "IP"}, DEPTH),
                         AnnSearchRequest([" ".join(question_terms) or "_"], "sparse", {"metric_type": "BM25"}, DEPTH)]
                (hits,) = client.hybrid_search(collection, sides, ranker, limit=DEPTH, output_fields=["doc_id"])
                found.append([(hit["id"], hit["distance"]) for hit in hits])
            rankings[name] = found
        for name, ranked in rankings.items():
            for qid, ranking in zip(batch, ranked):
                kept = document_ranking([(key, score) for key, score in ranking if key in documents], documents, 100)
                for metric, value in ranking_metrics(kept, dataset.qrels[qid]).items():
                    totals.setdefault(name, {}).setdefault(metric, 0.0)
                    totals[name][metric] += value
    engine.close()
    return {name: {metric: value / len(ids) for metric, value in by.items()} for name, by in totals.items()}


if __name__ == "__main__":
    main()
