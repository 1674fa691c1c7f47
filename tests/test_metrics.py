"""Ranking metrics against values worked out by hand."""

import math

import pytest

from qa.metrics import mrr_at_k, ndcg_at_k, ranking_metrics, recall_at_k

# Question 1: two relevant documents, found at ranks 2 and 4.
RANKED_1 = ["x", "a", "y", "b", "z"]
QRELS_1 = {"a": 1, "b": 1}
# Question 2: graded relevance, the best document at rank 3, the other missing.
RANKED_2 = ["p", "q", "c", "r"]
QRELS_2 = {"c": 2, "d": 1}


def test_ndcg_by_hand():
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(RANKED_1, QRELS_1, 10) == pytest.approx(dcg / idcg)  # 0.6509...
    assert ndcg_at_k(RANKED_1, QRELS_1, 10) == pytest.approx(0.650921, abs=1e-6)
    assert ndcg_at_k(RANKED_1, QRELS_1, 1) == 0.0
    graded = (2 / math.log2(4)) / (2 / math.log2(2) + 1 / math.log2(3))
    assert ndcg_at_k(RANKED_2, QRELS_2, 10) == pytest.approx(graded)  # 0.3801...


def test_recall_by_hand():
    assert recall_at_k(RANKED_1, QRELS_1, 1) == 0.0
    assert recall_at_k(RANKED_1, QRELS_1, 2) == 0.5
    assert recall_at_k(RANKED_1, QRELS_1, 5) == 1.0
    assert recall_at_k(RANKED_2, QRELS_2, 100) == 0.5


def test_mrr_by_hand():
    assert mrr_at_k(RANKED_1, QRELS_1, 10) == 0.5
    assert mrr_at_k(RANKED_2, QRELS_2, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(RANKED_2, QRELS_2, 2) == 0.0
    assert mrr_at_k([], QRELS_2, 10) == 0.0


def test_zero_grades_are_not_relevant():
    assert ranking_metrics(["a", "b"], {"a": 0, "b": 1}) == {
        "nDCG@10": pytest.approx(1 / math.log2(3)), "R@1": 0.0, "R@5": 1.0, "R@10": 1.0, "R@100": 1.0,
        "MRR@10": 0.5,
    }
