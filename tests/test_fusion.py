import pytest

from qa.fusion import reciprocal_rank_fusion


def test_rrf_sums_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)


def test_rrf_orders_by_fused_score_and_keeps_first_seen_on_ties():
    fused = reciprocal_rank_fusion([[10, 20], [20, 10], [30]])
    assert [row for row, _ in fused] == [10, 20, 30]


def test_rrf_of_nothing_is_empty():
    assert reciprocal_rank_fusion([[], []]) == []
