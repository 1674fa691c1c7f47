"""Combine a dense and a lexical ranking of passage rows into one ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

Ranking = list[tuple[int, float]]


@dataclass(frozen=True)
class Fusion:
    """How hybrid search fuses its two rankings.

    ``rrf``: reciprocal rank fusion, ranks only. ``convex``: a weighted sum of scores,
    each list scaled to [0, 1] by its own best score and a floor (``dense_floor`` for
    cosine, 0 for BM25); a row missing from a list scores 0 there.
    """

    # Chosen on SciFact train and SQuAD-dev (docs/EVALUATION.md): scaled scores beat
    # RRF on both, and lexical evidence deserves a little more weight than dense.
    method: str = "convex"
    rrf_k: int = 60
    dense_weight: float = 0.4
    dense_floor: float = 0.2


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> Ranking:
    """Rows ordered by the sum of ``1 / (k + rank)`` over the lists they appear in.

    Ranks start at 1; ties keep the order in which rows were first seen.
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def _scaled(ranking: Ranking, floor: float) -> dict[int, float]:
    if not ranking:
        return {}
    top = max(score for _, score in ranking)
    span = top - floor
    if span <= 0:
        return {row: 1.0 for row, _ in ranking}
    return {row: max(0.0, (score - floor) / span) for row, score in ranking}


def convex_combination(dense: Ranking, lexical: Ranking, dense_weight: float, dense_floor: float = 0.0) -> Ranking:
    """Rows ordered by ``w * dense + (1 - w) * lexical`` on scaled scores."""
    scaled_dense = _scaled(dense, dense_floor)
    scaled_lexical = _scaled(lexical, 0.0)
    rows = dict.fromkeys([row for row, _ in dense] + [row for row, _ in lexical])
    fused = {
        row: dense_weight * scaled_dense.get(row, 0.0) + (1 - dense_weight) * scaled_lexical.get(row, 0.0)
        for row in rows
    }
    return sorted(fused.items(), key=lambda item: -item[1])


def fuse(dense: Ranking, lexical: Ranking, fusion: Fusion) -> Ranking:
    if fusion.method == "convex":
        return convex_combination(dense, lexical, fusion.dense_weight, fusion.dense_floor)
    return reciprocal_rank_fusion([[r for r, _ in dense], [r for r, _ in lexical]], k=fusion.rrf_k)
