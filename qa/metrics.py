"""Ranking metrics over one question's ranked document ids and its judgements.

``relevant`` maps document id to graded relevance (as in BEIR qrels); a grade above
0 counts as relevant. nDCG uses linear gains, as trec_eval and BEIR do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def ranking_metrics(ranked: Sequence[str], relevant: Mapping[str, int]) -> dict[str, float]:
    """The figures `qa eval` reports for one question."""
    return {
        "nDCG@10": ndcg_at_k(ranked, relevant, 10),
        "R@1": recall_at_k(ranked, relevant, 1),
        "R@5": recall_at_k(ranked, relevant, 5),
        "R@10": recall_at_k(ranked, relevant, 10),
        "R@100": recall_at_k(ranked, relevant, 100),
        "MRR@10": mrr_at_k(ranked, relevant, 10),
    }
