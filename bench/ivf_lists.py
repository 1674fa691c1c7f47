"""How many lists an IVF index of a million passages should have: what each count
costs to build, and what it gives searches.

    python -m bench.ivf_lists [--paragraphs 570000] [--per-root 4 2] [--iterations 10] [--keep DIR]

Embeds the bench's corpus (bench.engine's paragraphs, chunked as qa ingest chunks
them) with the stand-in encoder of bench/stand_in.py, read through qa's own export of
it (NumPy, no PyTorch); with ``--keep``, the model and the vectors stay in DIR and a
later run reads them from there. For each count of lists per √n and of k-means
iterations it then builds the IVF index as a merge does (k-means on 39 vectors a
list, every vector assigned, nprobe calibrated on the data) and times 200 SQuAD-dev
questions encoded the same way, one at a time on one thread (as the server searches,
200 deep as hybrid search asks), beside exact search of the same vectors: recall@10
against it, p50 and p99.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from bench.engine import export_once, questions, write_corpus
from bench.stand_in import build_static_model
from qa import vector_store
from qa.chunking import chunk_document
from qa.exports import StaticEncoder
from qa.readers import read_document

DEPTH = 200  # what hybrid search asks of the dense side at a million passages


def embedded_corpus(work: Path, paragraphs: int) -> tuple[np.ndarray, StaticEncoder]:
    """The corpus's passages' vectors and the encoder that made them, both kept in ``work``."""
    if not (work / "stand-in").exists():
        build_static_model(work / "stand-in")
        export_once(work / "stand-in", work / "cache")
    encoder = StaticEncoder(next((work / "cache" / "qa" / "onnx").iterdir()))
    vectors = work / "vectors.npy"
    if not vectors.exists():
        write_corpus(work / "corpus", paragraphs, 400)
        parts = [encoder.encode([p.text for p in chunk_document(read_document(f, f.name))])
                 for f in sorted((work / "corpus").iterdir())]
        np.save(vectors, np.concatenate(parts).astype(np.float32), allow_pickle=False)
    return np.load(vectors), encoder


def measure(data: np.ndarray, asked: np.ndarray, per_root: float, iterations: int) -> dict:
    """Build the IVF index of ``data`` with ``per_root``·√n lists as a merge does; time ``asked``."""
    vector_store.LISTS_PER_ROOT, vector_store.KMEANS_ITERATIONS = per_root, iterations
    started = time.perf_counter()
    sources = [vector_store.VectorSource.of(data)]
    plan = vector_store._ivf_plan(sources, data.shape[1])
    planned = time.perf_counter() - started
    index = vector_store._filled(plan, sources)
    with vector_store._all_cores():
        index.nprobe = vector_store._calibrated_nprobe(index, plan.queries, plan.truth)
    built = time.perf_counter() - started
    store = vector_store.VectorStore(index)
    times, found = [], []
    for question in asked:
        begun = time.perf_counter()
        _, rows = store.search(question[None, :], DEPTH)
        times.append((time.perf_counter() - begun) * 1000)
        found.append(rows[0, :10])
    return {"lists": index.nlist, "nprobe": index.nprobe, "plan_s": planned, "build_s": built,
            "p50_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99)), "found": np.array(found)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ivf_lists", description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=570_000)
    parser.add_argument("--per-root", type=float, nargs="+", default=[4, 2], help="Lists per √n to compare.")
    parser.add_argument("--iterations", type=int, nargs="+", default=[10], help="k-means iterations to compare.")
    parser.add_argument("--keep", type=Path, help="A folder to keep the encoder and vectors in, and read them from.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-ivf-lists-") as folder:
        work = args.keep or Path(folder)
        work.mkdir(parents=True, exist_ok=True)
        data, encoder = embedded_corpus(work, args.paragraphs)
    asked = encoder.encode(questions()).astype(np.float32)
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    exact = vector_store.VectorStore(flat)
    times = []
    for question in asked:
        begun = time.perf_counter()
        exact.search(question[None, :], DEPTH)
        times.append((time.perf_counter() - begun) * 1000)
    truth = exact.search(asked, 10)[1]
    print(f"{len(data):,} passages; exact search p50 {np.median(times):.2f} ms, p99 {np.percentile(times, 99):.2f} ms")
    print("lists per √n  k-means iterations  lists  build s (k-means and lists found)"
          "  nprobe  p50 ms  p99 ms  recall@10")
    for per_root, iterations in itertools.product(args.per_root, args.iterations):
        row = measure(data, asked, per_root, iterations)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(row["found"], truth)])
        print(f"{per_root:>12g}  {iterations:>18}  {row['lists']:>5,}  {row['build_s']:>7.1f} ({row['plan_s']:.1f})"
              f"                      {row['nprobe']:>6}  {row['p50_ms']:>6.3f}  {row['p99_ms']:>6.3f}  {recall:>9.3f}")


if __name__ == "__main__":
    main()
