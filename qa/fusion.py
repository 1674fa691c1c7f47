"""Combine a dense and a lexical ranking of passage rows into one ranking.

Rankings are ``Scored`` arrays, so fusing 200 candidates a side is a handful of
numpy calls rather than a Python loop over dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

Ranking = list[tuple[Any, float]]


class Scored(NamedTuple):
    """Ids (passage rows, or any comparable ids) with their scores, best first."""

    ids: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, ranking: Ranking) -> "Scored":
        """From (id, score) pairs."""
        if not ranking:
            return cls.empty()
        ids, scores = zip(*ranking)
        return cls(np.asarray(ids), np.asarray(scores, dtype=np.float64))

    @classmethod
    def empty(cls) -> "Scored":
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    def top(self, k: int) -> "Scored":
        return Scored(self.ids[:k], self.scores[:k])

    def pairs(self) -> Ranking:
        """As (id, score) pairs of Python numbers."""
        return list(zip(self.ids.tolist(), self.scores.tolist()))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Fusion:
    """How hybrid search fuses its two rankings.

    ``rrf``: reciprocal rank fusion, ranks only. ``convex``: a weighted sum of scores,
    each list scaled to [0, 1] by its own best score and a floor (``dense_floor`` for
    cosine, 0 for BM25); an id missing from a list scores 0 there.
    """

    # Chosen on SciFact train and SQuAD-dev (docs/EVALUATION.md): scaled scores beat
    # RRF on both, and lexical evidence deserves a little more weight than dense.
    method: str = "convex"
    rrf_k: int = 60
    dense_weight: float = 0.4
    dense_floor: float = 0.2


def reciprocal_rank_fusion(rankings: Sequence[Sequence], k: int = 60) -> Scored:
    """Ids ordered by the sum of ``1 / (k + rank)`` over the lists they appear in.

    Ranks start at 1; ties keep the order in which ids were first seen.
    """
    parts = [np.asarray(ranking) for ranking in rankings if len(ranking)]
    if not parts:
        return Scored.empty()
    weights = [1.0 / (k + np.arange(1, len(part) + 1)) for part in parts]
    return _summed(np.concatenate(parts), np.concatenate(weights))


def _scaled(scores: np.ndarray, floor: float) -> np.ndarray:
    scores = scores.astype(np.float64)
    if not len(scores):
        return scores
    span = scores.max() - floor
    if span <= 0:
        return np.ones_like(scores)
    return np.maximum(0.0, (scores - floor) / span)


def convex_combination(dense: Scored, lexical: Scored, dense_weight: float, dense_floor: float = 0.0) -> Scored:
    """Ids ordered by ``w * dense + (1 - w) * lexical`` on scaled scores."""
    if not len(dense) and not len(lexical):
        return Scored.empty()
    ids = np.concatenate([dense.ids, lexical.ids])
    values = np.concatenate([dense_weight * _scaled(dense.scores, dense_floor),
                             (1 - dense_weight) * _scaled(lexical.scores, 0.0)])
    return _summed(ids, values)


def _summed(ids: np.ndarray, values: np.ndarray) -> Scored:
    """Each distinct id once with its values summed, best first; ties in order of first appearance."""
    order = np.argsort(ids, kind="stable")  # np.unique does the same, several times slower
    grouped = ids[order]
    starts = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
    totals = np.add.reduceat(values[order], starts)
    best = np.lexsort((order[starts], -totals))
    return Scored(grouped[starts][best], totals[best])


def fuse(dense: Scored, lexical: Scored, fusion: Fusion) -> Scored:
    if fusion.method == "convex":
        return convex_combination(dense, lexical, fusion.dense_weight, fusion.dense_floor)
    return reciprocal_rank_fusion([dense.ids, lexical.ids], k=fusion.rrf_k)
