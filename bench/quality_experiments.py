"""Retrieval ideas measured against the default hybrid search, on one BEIR split.

    python -m bench.quality_experiments ../shared/data/scifact --split train prf doc-level scaling sentences

- prf: dense pseudo-relevance feedback (the question vector moved towards the mean
  of the top fused passages, searched again, fused again);
- doc-level: fusing each list's best passage per document instead of passages;
- scaling: min-max and z-score scaling instead of the default's best-score scaling;
- sentences: every sentence embedded; a passage scored by its best sentence, by its
  pooled sentences, or by a mix with its own vector (embeds the whole corpus again
  sentence by sentence; cached under index/eval).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.quality_sweep import score, show
from qa.beir import Dataset, load_beir
from qa.chunking import ChunkSettings
from qa.embedding import DEFAULT_MODEL, Embedder
from qa.engines import EngineChoice
from qa.evaluation import eval_index_path, open_eval_index, snapshot_passages
from qa.fusion import Fusion, Scored, convex_combination, fuse
from qa.index import Index
from qa.lexical import passage_terms
from qa.metrics import ranking_metrics
from qa.sentences import sentence_spans
from qa.snapshot import Snapshot
from qa.tokens import terms
from qa.vector_store import VectorStore

CANDIDATES = 200


@dataclass
class Setup:
    dataset: Dataset
    root: Path
    index: Index
    embedder: Embedder
    qids: list[str]
    query_vectors: np.ndarray
    row_doc: dict[int, str]
    texts: list[str]
    dense: list[list[tuple[int, float]]]
    lexical: list[list[tuple[int, float]]]

    def score(self, rankings):
        return score(rankings, self.dataset, self.qids, self.row_doc)

    def default(self):
        return [fused_pairs(d, l) for d, l in zip(self.dense, self.lexical)]


def fused_pairs(dense: list[tuple[int, float]], lexical: list[tuple[int, float]], fusion: Fusion = Fusion()):
    return fuse(Scored.of(dense), Scored.of(lexical), fusion).pairs()


def _top(similarities: np.ndarray, depth: int = CANDIDATES):
    rows = np.argpartition(-similarities, depth, axis=1)[:, :depth]
    return [[(int(r), float(s[r])) for r in rr[np.argsort(-s[rr])]] for rr, s in zip(rows, similarities)]


def load(folder: Path, split: str) -> Setup:
    dataset = load_beir(folder, split)
    embedder = Embedder(DEFAULT_MODEL)
    root = eval_index_path(Path("index/eval"), folder, embedder.name, ChunkSettings())
    index = open_eval_index(dataset, EngineChoice(index=root), embedder, ChunkSettings(), progress=False).index
    records = snapshot_passages(index)  # position i holds records[i]
    titles = {d.doc_id: d.title for d in dataset.documents}
    lexical_index = Snapshot.single(np.zeros((len(records), 1), np.float32),
                                    [passage_terms(r.passage.text, titles[r.passage.doc_id]) for r in records])
    qids = list(dataset.queries)
    vectors = embedder.encode([dataset.queries[q] for q in qids])
    scores, rows = VectorStore.build(index.snapshot().vectors()).search(vectors, CANDIDATES)
    lexical = []
    for q in qids:
        lexical.append(lexical_index.lexical(terms(dataset.queries[q]), CANDIDATES).pairs())
    return Setup(
        dataset, root, index, embedder, qids, vectors, {i: r.passage.doc_id for i, r in enumerate(records)},
        [r.passage.text for r in records],
        [[(int(r), float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)], lexical,
    )


def prf(setup: Setup) -> None:
    passages = setup.index.snapshot().vectors()
    default = setup.default()
    for top, beta in [(3, 0.3), (5, 0.3), (5, 0.6), (10, 0.3)]:
        moved = np.array([q + beta * passages[[r for r, _ in f[:top]]].mean(0)
                          for q, f in zip(setup.query_vectors, default)], dtype=np.float32)
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        dense = _top(moved @ passages.T)
        show(f"prf top={top} beta={beta}, dense", setup.score(dense))
        for weight in (0.4, 0.5):
            fused = [fused_pairs(d, l, Fusion(dense_weight=weight)) for d, l in zip(dense, setup.lexical)]
            show(f"  fused w={weight}", setup.score(fused))


def doc_level(setup: Setup) -> None:
    def best_per_document(ranking):
        best: dict[str, float] = {}
        for row, s in ranking:
            best.setdefault(setup.row_doc[row], s)
        return list(best.items())

    for weight in (0.4, 0.5):
        fused = [convex_combination(Scored.of(best_per_document(d)), Scored.of(best_per_document(l)), weight,
                                    0.2).pairs()
                 for d, l in zip(setup.dense, setup.lexical)]
        figures = {}
        for qid, ranking in zip(setup.qids, fused):
            for name, value in ranking_metrics([d for d, _ in ranking][:100], setup.dataset.qrels[qid]).items():
                figures[name] = figures.get(name, 0.0) + value / len(setup.qids)
        show(f"document-level fusion w={weight}", figures)


def scaling(setup: Setup) -> None:
    def min_max(values):
        lo, hi = values.min(), values.max()
        return (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)

    def z_score(values):
        return (values - values.mean()) / (values.std() or 1.0)

    for name, scale in [("min-max", min_max), ("z-score", z_score)]:
        for weight in (0.4, 0.5):
            fused = []
            for d, l in zip(setup.dense, setup.lexical):
                parts = []
                for ranking in (d, l):
                    scaled = scale(np.array([s for _, s in ranking])) if ranking else np.zeros(0)
                    parts.append(({r: v for (r, _), v in zip(ranking, scaled)}, scaled.min() if len(scaled) else 0.0))
                (a, a_min), (b, b_min) = parts
                rows = dict.fromkeys([r for r, _ in d] + [r for r, _ in l])
                fused.append(sorted(((r, weight * a.get(r, a_min) + (1 - weight) * b.get(r, b_min)) for r in rows),
                                    key=lambda item: -item[1]))
            show(f"{name} scaling w={weight}", setup.score(fused))


def sentences(setup: Setup) -> None:
    cache = setup.root.with_name(setup.root.name + "-sentences.npz")
    spans = [(row, text[s:e]) for row, text in enumerate(setup.texts) for s, e in sentence_spans(text)]
    if cache.exists():
        vectors = np.load(cache)["vectors"]
    else:
        started = time.perf_counter()
        vectors = setup.embedder.encode([t for _, t in spans], progress=True)
        print(f"{len(spans)} sentences of {len(setup.texts)} passages embedded in {time.perf_counter() - started:.0f} s")
        np.savez(cache, vectors=vectors)
    owner = np.array([row for row, _ in spans])
    passages = setup.index.snapshot().vectors()
    pooled = np.zeros_like(passages)
    np.add.at(pooled, owner, vectors)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    passage_sims = setup.query_vectors @ passages.T
    best_sentence = np.full_like(passage_sims, -1.0)
    sentence_sims = setup.query_vectors @ vectors.T
    for i in range(len(setup.qids)):
        np.maximum.at(best_sentence[i], owner, sentence_sims[i])
    variants = {
        "passage vectors (default)": passage_sims,
        "pooled sentence vectors": setup.query_vectors @ pooled.T,
        "best sentence": best_sentence,
        "0.5 passage + 0.5 best sentence": 0.5 * passage_sims + 0.5 * best_sentence,
        "0.7 passage + 0.3 best sentence": 0.7 * passage_sims + 0.3 * best_sentence,
    }
    for name, similarities in variants.items():
        dense = _top(similarities)
        show(name, setup.score(dense))
        show("  fused", setup.score([fused_pairs(d, l) for d, l in zip(dense, setup.lexical)]))


EXPERIMENTS = {"prf": prf, "doc-level": doc_level, "scaling": scaling, "sentences": sentences}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("experiments", nargs="+", choices=list(EXPERIMENTS))
    args = parser.parse_args()
    setup = load(args.dataset, args.split)
    show("default hybrid", setup.score(setup.default()))
    for name in args.experiments:
        EXPERIMENTS[name](setup)


if __name__ == "__main__":
    main()
