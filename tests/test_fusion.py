import numpy as np
import pytest

from qa.fusion import Fusion, Scored, convex_combination, convex_scores, fuse, fuse_scores, reciprocal_rank_fusion


def scores(fused: Scored) -> dict:
    return dict(fused.pairs())


def ids(fused: Scored) -> list:
    return fused.ids.tolist()


def test_rrf_sums_reciprocal_ranks():
    fused = scores(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)


def test_rrf_orders_by_fused_score_and_keeps_first_seen_on_ties():
    assert ids(reciprocal_rank_fusion([[10, 20], [20, 10], [30]])) == [10, 20, 30]
    assert ids(reciprocal_rank_fusion([[30, 10], [10, 30]])) == [30, 10]


def test_rrf_of_nothing_is_empty():
    assert reciprocal_rank_fusion([[], []]).pairs() == []


def test_convex_combination_scales_each_list_by_its_best_score():
    dense = Scored.of([(1, 0.8), (2, 0.4)])
    lexical = Scored.of([(2, 10.0), (3, 5.0)])
    fused = scores(convex_combination(dense, lexical, dense_weight=0.5))
    assert fused[1] == pytest.approx(0.5 * 1.0)
    assert fused[2] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert fused[3] == pytest.approx(0.5 * 0.5)
    assert ids(convex_combination(dense, lexical, 0.5)) == [2, 1, 3]


def test_convex_ties_keep_dense_order_first():
    dense = Scored(np.array([7, 4]), np.array([0.9, 0.9], dtype=np.float32))
    lexical = Scored(np.array([9, 5]), np.array([2.0, 2.0], dtype=np.float32))
    assert ids(convex_combination(dense, lexical, 0.5)) == [7, 4, 9, 5]


def test_convex_weight_moves_the_balance_and_floor_stretches_dense_scores():
    dense = Scored.of([(1, 0.9), (2, 0.5)])
    lexical = Scored.of([(2, 3.0), (1, 1.0)])
    assert ids(convex_combination(dense, lexical, 0.9))[0] == 1
    assert ids(convex_combination(dense, lexical, 0.1))[0] == 2
    stretched = scores(convex_combination(dense, Scored.empty(), 1.0, dense_floor=0.4))
    assert stretched[2] == pytest.approx((0.5 - 0.4) / (0.9 - 0.4))


def test_convex_of_nothing_is_empty_and_of_one_side_is_that_side():
    assert convex_combination(Scored.empty(), Scored.empty(), 0.4).pairs() == []
    only_lexical = convex_combination(Scored.empty(), Scored.of([(3, 2.0), (8, 1.0)]), 0.4)
    assert ids(only_lexical) == [3, 8]


def test_ids_need_not_be_numbers():
    fused = convex_combination(Scored.of([("b", 0.9), ("a", 0.5)]), Scored.of([("a", 4.0)]), 0.5)
    assert ids(fused) == ["a", "b"]


def test_fuse_dispatches_on_the_method():
    dense, lexical = Scored.of([(1, 0.9), (2, 0.1)]), Scored.of([(2, 9.0), (1, 8.9)])
    assert fuse(dense, lexical, Fusion("rrf")).scores[0] == pytest.approx(1 / 61 + 1 / 62)
    assert ids(fuse(dense, lexical, Fusion("convex", dense_weight=0.5))) == [1, 2]


def test_best_positions_of_a_score_array_with_ties_to_the_lower_position():
    scores = np.array([0.1, 0.7, 0.3, 0.7, 0.9, 0.0], dtype=np.float32)
    best = Scored.best(scores, 3)
    assert ids(best) == [4, 1, 3]
    assert best.scores.tolist() == pytest.approx([0.9, 0.7, 0.7])
    assert ids(Scored.best(scores, 10)) == [4, 1, 3, 2, 0, 5]
    assert ids(Scored.best(scores, 10, above=0.2)) == [4, 1, 3, 2]
    assert ids(Scored.best(np.array([-np.inf, 0.5, -np.inf]), 2, above=-np.inf)) == [1]
    assert Scored.best(np.zeros(0), 5).pairs() == []


def test_convex_scores_of_every_position_match_the_fusion_of_lists():
    dense = np.array([0.8, 0.4, 0.1], dtype=np.float32)
    lexical = np.array([0.0, 10.0, 5.0])
    fused = convex_scores(dense, lexical, dense_weight=0.5)
    as_lists = scores(convex_combination(Scored.of([(0, 0.8), (1, 0.4), (2, 0.1)]),
                                         Scored.of([(1, 10.0), (2, 5.0)]), 0.5))
    assert fused.tolist() == pytest.approx([as_lists[i] for i in range(3)])


def test_unknown_dense_scores_and_unmatched_passages_add_nothing():
    dense = np.array([0.9, -np.inf, 0.5], dtype=np.float32)
    lexical = np.array([0.0, 4.0, 0.0])
    fused = convex_scores(dense, lexical, dense_weight=0.4, dense_floor=0.2)
    assert fused.tolist() == pytest.approx([0.4, 0.6, 0.4 * (0.5 - 0.2) / (0.9 - 0.2)])
    nothing_matches = convex_scores(dense, np.zeros(3), dense_weight=0.4, dense_floor=0.2)
    assert nothing_matches.tolist() == pytest.approx([0.4, 0.0, 0.4 * (0.5 - 0.2) / (0.9 - 0.2)])


def test_dense_scores_all_below_the_floor_still_order_the_passages():
    fused = convex_scores(np.array([0.05, 0.15, 0.1], dtype=np.float32), np.zeros(3), 0.4, dense_floor=0.2)
    assert ids(Scored.best(fused, 3)) == [1, 2, 0]
    all_alike = convex_scores(np.full(3, 0.5, dtype=np.float32), np.zeros(3), 0.4, dense_floor=0.6)
    assert all_alike.tolist() == [0, 0, 0]  # nothing to tell apart


def test_fuse_scores_ranks_positions_by_either_method():
    dense = np.array([0.9, 0.1, 0.5, -np.inf], dtype=np.float32)
    lexical = np.array([0.0, 9.0, 8.9, 1.0])
    assert ids(fuse_scores(dense, lexical, Fusion("convex", dense_weight=0.6), k=2, candidates=2)) == [2, 0]
    rrf = fuse_scores(dense, lexical, Fusion("rrf"), k=2, candidates=2)  # each side ranked to its 2 best
    assert ids(rrf) == [2, 0]  # 0 and 1 tie at 1 / 61: dense is seen first
    assert rrf.scores[0] == pytest.approx(1 / 62 + 1 / 62)


def test_ties_at_the_cut_go_to_the_lower_positions():
    from qa.topk import best_positions

    scores = np.array([1.0, 5.0, 3.0, 5.0, 3.0, 3.0, 0.0, 3.0])
    for _ in range(20):  # argpartition alone picks any of the tied ones
        assert best_positions(scores, 2).tolist() == [1, 3]
        assert best_positions(scores, 4).tolist() == [1, 3, 2, 4]
        assert best_positions(scores, 3, above=1.0).tolist() == [1, 3, 2]
