"""The vector index at scale: synthetic 384-d unit vectors, 100k and 1M of them.

For each size, ``VectorStore.build`` picks the index (exact up to EXACT_UP_TO, IVF
above, its nprobe calibrated on the data), and this measures against exact search
of the same vectors in the same run: recall@10, p50/p99 of one question at a time
(one thread, as the server searches), build time, the index's memory, and the same
search after saving it and opening it memory-mapped.

Two distributions: "clustered" (unit vectors about 0.7 cosine from one of 1,000
random centres, questions drawn the same way: topics, as real embeddings have) and
"uniform" (uniformly random directions, where no index can find structure: the
worst case).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.speed import memory_mb
from qa.vector_store import VectorStore

DIMENSION = 384
QUESTIONS = 200
CENTRES = 1000
CHUNK = 100_000


def synthetic(n: int, distribution: str, seed: int) -> np.ndarray:
    """``n`` unit vectors; rows with any seed share the clustered distribution's centres."""
    rng = np.random.default_rng(seed)
    centres = _unit(np.random.default_rng(2024).standard_normal((CENTRES, DIMENSION), dtype=np.float32))
    out = np.empty((n, DIMENSION), np.float32)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        noise = rng.standard_normal((size, DIMENSION), dtype=np.float32)
        if distribution == "clustered":
            noise = centres[rng.integers(0, CENTRES, size)] + noise / np.sqrt(DIMENSION)
        out[start : start + size] = _unit(noise)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _one_at_a_time(store: VectorStore, questions: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found, times = [], []
    for question in questions:
        started = time.perf_counter()
        _, rows = store.search(question[None, :], 10)
        times.append((time.perf_counter() - started) * 1000)
        found.append(rows[0])
    return np.array(found), times


def measure(n: int, distribution: str, exact_questions: int = 20) -> dict:
    vectors = synthetic(n, distribution, seed=1)
    questions = synthetic(QUESTIONS, distribution, seed=2)
    truth = _brute_force_top10(questions, vectors)
    exact = VectorStore(_flat(vectors))
    _, exact_times = _one_at_a_time(exact, questions[:exact_questions])
    del exact
    started = time.perf_counter()
    store = VectorStore.build(vectors)
    build_s = time.perf_counter() - started
    found, times = _one_at_a_time(store, questions)
    with tempfile.TemporaryDirectory(prefix="qa-scale-") as folder:
        path = Path(folder) / "vectors.faiss"
        store.save(path)
        del store
        before = memory_mb()
        opened = VectorStore.load(path)
        mapped_found, mapped_times = _one_at_a_time(opened, questions)
        kind, nprobe = opened.kind, opened.nprobe
        opened_mb = memory_mb() - before
        file_mb = path.stat().st_size / 2**20
    return {
        "vectors": n, "distribution": distribution, "index": kind, "nprobe": nprobe, "build_s": build_s,
        "recall_at_10": _recall(found, truth), "p50_ms": float(np.median(times)),
        "p99_ms": float(np.percentile(times, 99)), "exact_p50_ms": float(np.median(exact_times)),
        "index_mb": file_mb, "mmap_recall_at_10": _recall(mapped_found, truth),
        "mmap_p50_ms": float(np.median(mapped_times)), "mmap_rss_growth_mb": opened_mb,
    }


def _brute_force_top10(questions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The exact 10 nearest by numpy alone: the reference every index is measured against."""
    out = []
    for start in range(0, len(questions), 20):
        scores = questions[start : start + 20] @ vectors.T
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        out.append(np.take_along_axis(top, order, 1))
    return np.vstack(out)


def _flat(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))


def run(sizes: list[int], distributions: list[str]) -> list[dict]:
    return [measure(n, distribution) for n in sizes for distribution in distributions]


def format_table(rows: list[dict]) -> str:
    lines = [f"{'vectors':>9} {'data':>9} {'index':>5} {'nprobe':>6} {'recall@10':>9} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'exact p50':>9} {'build s':>7} {'file MiB':>8} {'mmap p50':>8} {'mmap RSS+':>9}"]
    for r in rows:
        lines.append(
            f"{r['vectors']:>9,} {r['distribution']:>9} {r['index']:>5} {r['nprobe'] or '-':>6} "
            f"{r['recall_at_10']:>9.3f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['exact_p50_ms']:>9.2f} "
            f"{r['build_s']:>7.1f} {r['index_mb']:>8.0f} {r['mmap_p50_ms']:>8.2f} {r['mmap_rss_growth_mb']:>6.0f} MiB")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--distributions", nargs="+", default=["clustered", "uniform"],
                        choices=["clustered", "uniform"])
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    figures = run(args.sizes, args.distributions)
    print(format_table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
