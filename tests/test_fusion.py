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


def test_convex_combination_scales_each_list_by_its_best_score():
    from qa.fusion import convex_combination

    dense = [(1, 0.8), (2, 0.4)]
    lexical = [(2, 10.0), (3, 5.0)]
    fused = dict(convex_combination(dense, lexical, dense_weight=0.5))
    assert fused[1] == pytest.approx(0.5 * 1.0)
    assert fused[2] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert fused[3] == pytest.approx(0.5 * 0.5)
    assert [row for row, _ in convex_combination(dense, lexical, 0.5)] == [2, 1, 3]


def test_convex_weight_moves_the_balance_and_floor_stretches_dense_scores():
    from qa.fusion import convex_combination

    dense = [(1, 0.9), (2, 0.5)]
    lexical = [(2, 3.0), (1, 1.0)]
    assert convex_combination(dense, lexical, 0.9)[0][0] == 1
    assert convex_combination(dense, lexical, 0.1)[0][0] == 2
    stretched = dict(convex_combination(dense, [], 1.0, dense_floor=0.4))
    assert stretched[2] == pytest.approx((0.5 - 0.4) / (0.9 - 0.4))


def test_fuse_dispatches_on_the_method():
    from qa.fusion import Fusion, fuse

    dense, lexical = [(1, 0.9), (2, 0.1)], [(2, 9.0), (1, 8.9)]
    assert fuse(dense, lexical, Fusion("rrf"))[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert [r for r, _ in fuse(dense, lexical, Fusion("convex", dense_weight=0.5))] == [1, 2]
