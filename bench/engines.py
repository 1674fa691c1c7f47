"""`python -m bench --engine milvus`: the Milvus engine beside the embedded one, and Ray
ingest beside a plain one, each pair measured in the same run on the same machine.

- search: the same passages and vectors in both engines (the embedded index is built
  once, its passages copied into Milvus Lite), each question asked of both in turn,
  in every mode; p50/p99 of everything but the question's encoding (done once, shared);
- ingest: the same files through `qa ingest` as a user runs it (model load included),
  plain and with `--ray --ray-workers 1` and `2` (Ray's start included).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.speed import Workload, percentiles
from qa.chunking import ChunkSettings, chunk_document
from qa.database import Revision
from qa.embedded import EmbeddedEngine
from qa.embedding import Embedder
from qa.engine import Engine
from qa.engines import EngineChoice, open_engine_for_writing
from qa.fusion import Fusion
from qa.index import Index
from qa.ingest import index_meta, store_documents
from qa.lexical import LexicalSettings, passage_terms
from qa.search import MODES, SearchRequest
from qa.tokens import terms


def run(workload: Workload, backend: str, ingested: Workload) -> dict:
    """``workload`` searched in both engines, and ``ingested`` through each kind of `qa ingest`."""
    with tempfile.TemporaryDirectory(prefix="qa-bench-engines-") as work:
        base = Path(work)
        embedder = Embedder(backend=backend, cache_size=0)
        written: dict = {}
        embedded, milvus = _both_engines(workload, embedder, base, written)
        try:
            search = _search(workload.questions, embedder, {"embedded": embedded, "milvus": milvus})
        finally:
            embedded.close()
            milvus.close()
        ingest = _ray_ingest(ingested, base)
    return {"workload": workload.name, "passages": search.pop("passages"), "search": search, "ingest": ingest,
            "per_passage": _per_passage(workload), "milvus_write": written}


def _per_passage(workload: Workload) -> dict:
    """What one passage of the workload weighs, for sizing an index on paper (docs/SCALING.md):
    its distinct BM25 terms (a sparse vector's entries) and its text's UTF-8 bytes."""
    passages = [(p, d.title) for d in workload.documents for p in chunk_document(d, ChunkSettings())]
    distinct = [len(set(passage_terms(p.text, title, LexicalSettings(), p.section))) for p, title in passages]
    return {"distinct_terms": float(np.mean(distinct)),
            "text_bytes": float(np.mean([len(p.text.encode()) for p, _ in passages]))}


def _both_engines(workload: Workload, embedder: Embedder, base: Path, written: dict) -> tuple[Engine, Engine]:
    """The workload in the embedded engine, and the same passages and vectors in Milvus Lite;
    ``written`` gets the passages/s of those writes to Milvus (in batches of 256 documents)."""
    meta = index_meta(embedder, ChunkSettings())
    embedded = EmbeddedEngine(Index.open_for_writing(base / "embedded", meta))
    store_documents(embedded, embedder, workload.documents)
    milvus = open_engine_for_writing(EngineChoice("milvus", base / "milvus"), meta)
    rows_of: dict[str, list[int]] = {}
    for row, doc_id in sorted(embedded.passage_documents().items()):  # a document's rows rise with its ordinals
        rows_of.setdefault(doc_id, []).append(row)
    revisions = []
    for summary in embedded.documents(0, len(workload.documents) + 1)[1]:
        document, passages = embedded.document(summary.doc_id)
        found = embedded.index.store.vectors(rows_of[document.doc_id], embedder.dimension)
        revisions.append(Revision(document, passages, np.stack([found[r] for r in rows_of[document.doc_id]])))
    started = time.perf_counter()
    for first in range(0, len(revisions), 256):
        milvus.write(revisions[first : first + 256])
    written["passages_per_s"] = sum(len(r.passages) for r in revisions) / (time.perf_counter() - started)
    return embedded, milvus


def _search(questions: list[str], embedder: Embedder, engines: dict[str, Engine]) -> dict:
    vectors = embedder.encode_questions(questions)
    timings: dict[str, dict[str, list[float]]] = {name: {mode: [] for mode in MODES} for name in engines}
    for question, vector in zip(questions, vectors):
        words = terms(question)
        for mode in MODES:
            request = SearchRequest(question, 5, mode)
            for name, engine in engines.items():
                started = time.perf_counter()
                given = [vector if mode != "lexical" else None]
                engine.rank_many([request], lambda given=given: given, [words], Fusion(), 200)
                timings[name][mode].append((time.perf_counter() - started) * 1000)
    figures: dict = {name: {mode: percentiles(values) for mode, values in by_mode.items()}
                     for name, by_mode in timings.items()}
    figures["passages"] = engines["embedded"].state().passages
    return figures


def _ray_ingest(workload: Workload, base: Path) -> dict:
    """Passages/s of `qa ingest` on the workload's documents as files: plain, and on a local
    Ray with 1 and 2 embedding actors."""
    corpus = base / "corpus"
    corpus.mkdir()
    chosen = workload.documents
    for n, document in enumerate(chosen):
        (corpus / f"{n:06}.txt").write_text(f"{document.title}\n\n{document.text}" if document.title else document.text)
    passages = None
    figures = {}
    for name, extra in (("plain", []), ("ray, 1 actor", ["--ray", "--ray-workers", "1"]),
                        ("ray, 2 actors", ["--ray", "--ray-workers", "2"])):
        index = base / f"ingest-{len(figures)}"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "qa", "ingest", str(corpus), "--index", str(index), *extra],
                              capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        passages = int(re.search(r"(\d+) passage\(s\)", done.stdout).group(1))
        figures[name] = {"seconds": seconds, "passages_per_s": passages / seconds}
    plain = figures["plain"]["passages_per_s"]
    for values in figures.values():
        values["ratio"] = values["passages_per_s"] / plain
    return {"corpus": workload.name, "documents": len(chosen), "passages": passages, **figures}


def format_table(figures: dict) -> str:
    search = figures["search"]
    lines = [f"{figures['workload']}: {figures['passages']} passages, k=5, everything but the question's encoding",
             "mode      embedded p50 / p99 ms   Milvus Lite p50 / p99 ms   ratio of p50s"]
    for mode in MODES:
        ours, theirs = search["embedded"][mode], search["milvus"][mode]
        lines.append(f"{mode:8}  {ours['p50_ms']:8.2f} / {ours['p99_ms']:6.2f}     {theirs['p50_ms']:8.2f} / "
                     f"{theirs['p99_ms']:6.2f}        {theirs['p50_ms'] / ours['p50_ms']:6.1f}x")
    lines.append(f"writing passages with their vectors into Milvus Lite: "
                 f"{figures['milvus_write']['passages_per_s']:.0f} passages/s")
    sizes = figures["per_passage"]
    lines += ["", f"a passage: {sizes['distinct_terms']:.0f} distinct BM25 terms, "
                  f"{sizes['text_bytes']:.0f} bytes of text"]
    ingest = figures["ingest"]
    lines += ["", f"qa ingest of {ingest['corpus']} as files: {ingest['passages']} passages, start-up included",
              "run             seconds   passages/s   ratio to plain"]
    for name in ("plain", "ray, 1 actor", "ray, 2 actors"):
        values = ingest[name]
        lines.append(f"{name:14}  {values['seconds']:7.1f}   {values['passages_per_s']:10.1f}   "
                     f"{values['ratio']:.2f}x")
    return "\n".join(lines)


def write_json(figures: dict, path: Path) -> None:
    path.write_text(json.dumps(figures, indent=2) + "\n")
