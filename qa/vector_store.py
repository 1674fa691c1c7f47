"""Exact inner-product search over normalised vectors with FAISS.

The only module that imports faiss. Row ``i`` of the store is passage row ``i`` in
the documents database.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# FAISS's OpenMP threads wake up against torch's right after a question is encoded:
# on 2 cores, hybrid p50 on SciFact (qa eval) fell from 30 ms to 19 ms without them.
# Concurrency comes from the server's request threads instead.
faiss.omp_set_num_threads(1)


class VectorStore:
    """A flat FAISS index: exact search, right for up to a few hundred thousand rows."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray) -> "VectorStore":
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> "VectorStore":
        return cls(faiss.read_index(str(path)))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def vectors(self) -> np.ndarray:
        """Every stored vector, in row order."""
        return self._index.reconstruct_n(0, len(self))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, rows) per query row; rows are -1 where fewer exist."""
        k = max(1, min(k, len(self)))
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
