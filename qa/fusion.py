"""Combine a dense and a lexical ranking of passages into one ranking.

Two shapes of input. A search fuses score arrays that hold every snapshot position
(``fuse_scores``): a few numpy calls over whole arrays, with no candidate lists to
build, cut or merge. Experiments fuse ``Scored`` lists of any ids (``fuse``). Both
scale scores the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from qa.topk import best_positions

Ranking = list[tuple[Any, float]]


class Scored(NamedTuple):
    """Ids (passage rows, or any comparable ids) with their scores, best first."""

    ids: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, ranking: Ranking) -> Scored:
        """From (id, score) pairs."""
        if not ranking:
            return cls.empty()
        ids, scores = zip(*ranking)
        return cls(np.asarray(ids), np.asarray(scores, dtype=np.float64))

    @classmethod
    def empty(cls) -> Scored:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    @classmethod
    def best(cls, scores: np.ndarray, k: int, above: float | None = None) -> Scored:
        """The ``k`` best positions of ``scores`` (see ``best_positions``) with their scores."""
        positions = best_positions(scores, k, above)
        return cls(positions, scores[positions])

    def at(self, ids: np.ndarray) -> Scored:
        """The same ranking with each position ``i`` replaced by ``ids[i]``."""
        return Scored(ids[self.ids], self.scores)

    def top(self, k: int) -> Scored:
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


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int] | np.ndarray], k: int = 60) -> Scored:
    """Ids ordered by the sum of ``1 / (k + rank)`` over the lists they appear in.

    Ranks start at 1; ties keep the order in which ids were first seen.
    """
    parts = [np.asarray(ranking) for ranking in rankings if len(ranking)]
    if not parts:
        return Scored.empty()
    weights = [1.0 / (k + np.arange(1, len(part) + 1)) for part in parts]
    return _summed(np.concatenate(parts), np.concatenate(weights))


def _scaled(scores: np.ndarray, floor: float, weight: float) -> np.ndarray:
    """Scores mapped to [0, ``weight``]: the best to ``weight``, ``floor`` and below
    (and -inf) to 0, in the scores' own precision.

    Where nothing is above the floor, the lowest known score stands in for it, so the
    order among the scores still counts; where nothing differs, all map to 0.
    """
    best = scores.max(initial=-np.inf)
    if best <= floor and best > -np.inf:
        floor = scores[scores > -np.inf].min()
    span = float(best - floor)
    if not span > 0:  # nothing known, or nothing that differs
        return np.zeros_like(scores)
    return np.maximum(scores - floor, 0.0) * (weight / span)


def convex_combination(dense: Scored, lexical: Scored, dense_weight: float, dense_floor: float = 0.0) -> Scored:
    """Ids ordered by ``w * dense + (1 - w) * lexical`` on scaled scores."""
    if not len(dense) and not len(lexical):
        return Scored.empty()
    ids = np.concatenate([dense.ids, lexical.ids])
    values = np.concatenate([_scaled(dense.scores, dense_floor, dense_weight),
                             _scaled(lexical.scores, 0.0, 1 - dense_weight)])
    return _summed(ids, values)


def _summed(ids: np.ndarray, values: np.ndarray) -> Scored:
    """Each distinct id once with its values summed, best first; ties in order of first appearance."""
    order = np.argsort(ids, kind="stable")  # np.unique does the same, several times slower
    grouped = ids[order]
    starts = np.flatnonzero(np.concatenate([[True], grouped[1:] != grouped[:-1]]))
    totals = np.add.reduceat(values[order], starts)
    best = np.lexsort((order[starts], -totals))
    return Scored(grouped[starts][best], totals[best])


def convex_scores(dense: np.ndarray, lexical: np.ndarray, dense_weight: float, dense_floor: float = 0.0) -> np.ndarray:
    """``w * dense + (1 - w) * lexical`` of every position, each array scaled as in
    ``convex_combination``. A dense score of -inf (unknown) or a lexical 0 adds nothing."""
    return _scaled(dense, dense_floor, dense_weight) + _scaled(lexical, 0.0, 1 - dense_weight)


def fuse(dense: Scored, lexical: Scored, fusion: Fusion) -> Scored:
    """Two ranked lists of ids as one."""
    if fusion.method == "convex":
        return convex_combination(dense, lexical, fusion.dense_weight, fusion.dense_floor)
    return reciprocal_rank_fusion([dense.ids, lexical.ids], k=fusion.rrf_k)


def fuse_scores(dense: np.ndarray, lexical: np.ndarray, fusion: Fusion, k: int, candidates: int) -> Scored:
    """The ``k`` best positions from every position's dense score (-inf where unknown)
    and BM25 score (0 where no term matches).

    Convex fusion scores every position. RRF needs ranks, so it ranks the best
    ``candidates`` of each side, as it would lists.
    """
    if fusion.method == "convex":
        return Scored.best(convex_scores(dense, lexical, fusion.dense_weight, fusion.dense_floor), k)
    depth = max(candidates, k)
    return fuse(Scored.best(dense, depth, above=-np.inf), Scored.best(lexical, depth, above=0.0), fusion).top(k)
