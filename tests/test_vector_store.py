import numpy as np
import pytest

from qa import vector_store
from qa.vector_store import Selection, VectorSource, VectorStore


def _unit_rows(rng, n, d=384):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_matches_brute_force_numpy(tmp_path):
    rng = np.random.default_rng(7)
    data, queries = _unit_rows(rng, 2000), _unit_rows(rng, 25)
    store = VectorStore.build(data)
    store.save(tmp_path / "v.faiss")
    scores, rows = VectorStore.load(tmp_path / "v.faiss").search(queries, 10)
    expected = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ data.T, expected, 1), rtol=1e-5)


def test_every_position_is_scored_exactly_by_a_flat_index(tmp_path):
    rng = np.random.default_rng(3)
    data, queries = _unit_rows(rng, 500), _unit_rows(rng, 3)
    VectorStore.build(data).save(tmp_path / "v.faiss")
    opened = VectorStore.load(tmp_path / "v.faiss")  # the vectors read where they are mapped
    np.testing.assert_allclose(opened.scores(queries, depth=10), queries @ data.T, rtol=1e-5, atol=1e-6)
    assert VectorStore.build(np.zeros((0, 384), np.float32)).scores(queries, 10).shape == (3, 0)
    with pytest.raises(ValueError):
        opened.scores(queries[:, :100], depth=10)  # never read past a question of the wrong size


def test_k_beyond_size_returns_every_row_and_vectors_round_trip():
    rng = np.random.default_rng(1)
    data = _unit_rows(rng, 3)
    store = VectorStore.build(data)
    _, rows = store.search(data[:1], 50)
    assert sorted(rows[0].tolist()) == [0, 1, 2]
    np.testing.assert_allclose(store.vectors(), data)


def _clustered_rows(n, centres=200, d=384, seed=0):
    """Unit vectors around fixed random centres, about 0.7 cosine from theirs, as embeddings cluster.
    Rows drawn with different seeds share the centres, as questions share a corpus's topics."""
    middle = _unit_rows(np.random.default_rng(12345), centres, d)
    rng = np.random.default_rng(seed)
    x = middle[rng.integers(0, centres, n)] + rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _recall_at_10(found: np.ndarray, queries: np.ndarray, data: np.ndarray) -> float:
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))


@pytest.fixture
def small_threshold(monkeypatch):
    """Approximate search from 3,000 vectors, so a test need not build hundreds of thousands."""
    monkeypatch.setattr(vector_store, "EXACT_UP_TO", 3000)


def test_the_index_is_exact_up_to_the_threshold_and_approximate_above(small_threshold):
    assert VectorStore.build(_clustered_rows(3000)).kind == "exact"
    data, queries = _clustered_rows(12000, seed=1), _clustered_rows(100, seed=2)
    store = VectorStore.build(data)
    assert store.kind == "ivf" and 1 <= store.nprobe < 200  # searches a fraction of its lists
    _, found = store.search(queries, 10)
    assert _recall_at_10(found, queries, data) >= 0.95


def test_an_approximate_index_searches_only_the_positions_a_selection_allows(small_threshold, tmp_path):
    rng = np.random.default_rng(5)
    data = _clustered_rows(8000, seed=3)
    VectorStore.build(data).save(tmp_path / "v.faiss")
    loaded = VectorStore.load(tmp_path / "v.faiss")  # memory-mapped: merges read its vectors back
    assert loaded.kind == "ivf"
    held = loaded.vectors()  # in half precision: a merge building from them again changes none
    np.testing.assert_allclose(held, data, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(VectorStore.build(held).vectors(), held)
    keep = rng.random(len(data)) > 0.3
    queries = _clustered_rows(100, seed=6)
    _, found = loaded.search(queries, 10, Selection.of_mask(keep))
    assert keep[found[found >= 0]].all()  # a deleted position never takes a place
    kept = np.flatnonzero(keep)
    renumbered = np.searchsorted(kept, found)
    assert _recall_at_10(renumbered, queries, data[keep]) >= 0.95
    _, own = loaded.search(data[kept[::97]], 1, Selection.of_positions(kept, len(data)))
    assert own[:, 0].tolist() == kept[::97].tolist()


def test_an_index_written_as_its_sources_are_read_is_the_one_built_in_memory(small_threshold, tmp_path):
    """What a merge writes list by list is byte for byte what FAISS saves of the index
    built in memory, and data without clusters falls back to exact search either way."""
    for data in (_clustered_rows(9000, seed=11), np.random.default_rng(12).standard_normal((4000, 32))):
        data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
        sources = [VectorSource.of(data[first : first + 2500]) for first in range(0, len(data), 2500)]
        sources.insert(1, VectorSource.of(data[:0]))  # a merged segment with no live passage left
        VectorStore.build(sources, data.shape[1]).save(tmp_path / "built.faiss")
        VectorStore.write(sources, data.shape[1], tmp_path / "written.faiss")
        assert (tmp_path / "written.faiss").read_bytes() == (tmp_path / "built.faiss").read_bytes()
        written = VectorStore.load(tmp_path / "written.faiss")
        assert written.kind == ("ivf" if len(data) == 9000 else "exact")
        queries = data[::50]
        np.testing.assert_array_equal(written.search(queries, 10)[1],
                                      VectorStore.load(tmp_path / "built.faiss").search(queries, 10)[1])


def test_a_saved_index_opens_memory_mapped_with_the_same_answers(small_threshold, tmp_path):
    for n in (2000, 6000):
        data, queries = _clustered_rows(n, seed=n), _clustered_rows(20, seed=7)
        store = VectorStore.build(data)
        path = tmp_path / f"{n}.faiss"
        store.save(path)
        opened = VectorStore.load(path)
        assert opened.kind == store.kind
        np.testing.assert_array_equal(opened.search(queries, 10)[1], store.search(queries, 10)[1])


def test_an_approximate_index_scores_only_the_positions_it_finds(small_threshold):
    data, queries = _clustered_rows(6000, seed=8), _clustered_rows(5, seed=9)
    store = VectorStore.build(data)
    assert store.kind == "ivf"
    found, positions = store.search(queries, 20)
    scores = store.scores(queries, depth=20)
    assert scores.shape == (5, 6000) and (np.isfinite(scores).sum(axis=1) == 20).all()
    np.testing.assert_array_equal(np.take_along_axis(scores, positions, 1), found)


def test_vectors_without_clusters_are_searched_exactly(small_threshold):
    rng = np.random.default_rng(11)
    assert VectorStore.build(_unit_rows(rng, 6000)).kind == "exact"  # IVF would have to search most lists


def test_passages_stored_many_times_over_are_still_searched_approximately(small_threshold):
    """Copies tie: which copy the IVF lists return is arbitrary, and counting ids as
    recall would call any of them a miss and fall back to exact search of it all."""
    data = np.repeat(_clustered_rows(1500, seed=13), 8, axis=0)  # each passage 8 times
    store = VectorStore.build(data)
    assert store.kind == "ivf" and store.nprobe < store.lists
    queries = _clustered_rows(50, seed=14)
    found, _ = store.search(queries, 10)
    tenth = np.sort(queries @ data.T, axis=1)[:, -10]
    assert np.mean(found[:, -1] >= tenth - 1e-3) >= 0.9  # the 10th found is as near as the 10th exact


def test_the_vectors_of_a_saved_index_read_back_at_any_positions(small_threshold, tmp_path):
    """What a merge reads of a segment: every position, a run, a few left among many
    deleted, and none; from an exact index's file and from an IVF index's."""
    rng = np.random.default_rng(15)
    for n in (2500, 9000):
        data = _clustered_rows(n, seed=n)
        store = VectorStore.build(data)
        store.save(tmp_path / f"{n}.faiss")
        for positions in (np.arange(n), np.arange(100, 700), np.sort(rng.choice(n, n // 2, replace=False)),
                          np.sort(rng.choice(n, 40, replace=False)), np.zeros(0, np.int64)):
            read = VectorStore.read_saved(tmp_path / f"{n}.faiss", positions)
            np.testing.assert_array_equal(read, store.vectors(positions))
            assert read.shape == (len(positions), 384) and read.dtype == np.float32



def test_the_nprobe_calibrated_is_the_smallest_that_reaches_the_target_recall(small_threshold):
    """Not the next power of two above it: each list more is read by every search."""
    sources = [VectorSource.of(_clustered_rows(12000, centres=1000, seed=17))]
    plan = vector_store._ivf_plan(sources, 384)
    index = vector_store._filled(plan, sources)
    found = vector_store._calibrated_nprobe(index, plan.queries, plan.truth)

    def recall(nprobe: int) -> float:
        return vector_store._recall(index, nprobe, plan.queries, plan.truth)

    assert found > 1 and found & (found - 1)  # not a power of two: found between two of them
    assert recall(found) >= vector_store.TARGET_RECALL > recall(found - 1)
