import numpy as np

from qa.vector_store import VectorStore


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


def test_k_beyond_size_returns_every_row_and_vectors_round_trip():
    rng = np.random.default_rng(1)
    data = _unit_rows(rng, 3)
    store = VectorStore.build(data)
    _, rows = store.search(data[:1], 50)
    assert sorted(rows[0].tolist()) == [0, 1, 2]
    np.testing.assert_allclose(store.vectors(), data)
