import math

import numpy as np

from qa.lexical import LexicalIndex, LexicalSettings
from qa.tokens import terms


def test_stemmed_terms_match_and_unknown_terms_find_nothing():
    index = LexicalIndex.build([terms("Wagner arrived in Mali"), terms("French troops left"), []])
    scores, rows = index.search(terms("When did Wagner arrive?"), 10)
    assert rows.tolist() == [0] and scores[0] > 0
    assert index.search(terms("zebra"), 10)[1].tolist() == []
    assert index.search(terms("the of and"), 10)[1].tolist() == []


def test_rare_terms_weigh_more(tmp_path):
    index = LexicalIndex.build([terms("mali coup"), terms("mali troops"), terms("mali army")])
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path, LexicalSettings())
    idf = loaded.idf(["coup", "mali", "unknown"])
    assert idf["coup"] > idf["mali"] > 0
    assert idf["unknown"] == 0
    assert len(loaded) == 3


def test_every_passage_carries_its_title_once():
    from qa.lexical import LexicalSettings, passage_terms

    assert passage_terms("Workers live six weeks.", "Honey bees")[:2] == ["honey", "bee"]
    assert passage_terms("Honey bees: workers live six weeks.", "Honey bees").count("honey") == 1
    without = LexicalSettings(title_in_every_passage=False)
    assert "honey" not in passage_terms("Workers live six weeks.", "Honey bees", without)


def test_a_later_passage_is_found_by_its_documents_title():
    from qa.lexical import passage_terms

    passages = [("Workers live six weeks in summer.", "Honey bees"), ("Drones do not sting.", "Wasps")]
    index = LexicalIndex.build([passage_terms(text, title) for text, title in passages])
    assert index.search(terms("honey"), 5)[1].tolist() == [0]


PASSAGES = [
    "Wagner arrived in Mali in December 2021 after a coup.",
    "The Africa Corps replaces Wagner in Mali and Mali's army.",
    "French troops left Mali; Wagner stayed.",
    "Honey bees live six weeks in summer.",
]


def _brute_force_bm25(passages: list[list[str]], query: list[str], k1: float = 0.9, b: float = 0.4) -> list[float]:
    """Lucene's BM25, written out term by term."""
    average = sum(map(len, passages)) / len(passages)
    scores = []
    for words in passages:
        score = 0.0
        for term in query:
            df = sum(term in p for p in passages)
            tf = words.count(term)
            if tf:
                idf = math.log(1 + (len(passages) - df + 0.5) / (df + 0.5))
                score += idf * tf / (tf + k1 * (1 - b + b * len(words) / average))
        scores.append(score)
    return scores


def test_scores_are_lucene_bm25():
    passages = [terms(p) for p in PASSAGES]
    query = terms("when did Wagner reach Mali after the coup")
    expected = _brute_force_bm25(passages, query)
    scores, rows = LexicalIndex.build(passages).search(query, 10)
    assert rows.tolist() == sorted((r for r in range(4) if expected[r] > 0), key=lambda r: -expected[r])
    np.testing.assert_allclose(scores, [expected[r] for r in rows], rtol=1e-5)
    np.testing.assert_allclose(LexicalIndex.build(passages).scores(query), expected, rtol=1e-6)  # every passage


def test_an_updated_index_scores_as_one_built_afresh(tmp_path):
    passages = [terms(p) for p in PASSAGES]
    index = LexicalIndex.build(passages[:3])
    updated = index.updated(np.array([True, False, True]), [passages[3], terms("Wagner left Mali in 2025")])
    fresh = LexicalIndex.build([passages[0], passages[2], passages[3], terms("Wagner left Mali in 2025")])
    for question in ["Wagner Mali", "coup", "bees", "2025", "Africa Corps"]:
        for got, want in zip(updated.search(terms(question), 10), fresh.search(terms(question), 10)):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert updated.search(terms("Africa Corps"), 10)[1].tolist() == []  # only the dropped passage had them
    gone = updated.scores(terms("Africa Corps"))  # known terms whose passages are all gone
    assert gone.dtype == np.float64 and not gone.any()
    updated.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path, LexicalSettings())
    assert loaded.search(terms("Wagner Mali"), 10)[1].tolist() == updated.search(terms("Wagner Mali"), 10)[1].tolist()
    np.testing.assert_array_equal(loaded.scores(terms("Wagner coup 2025")), updated.scores(terms("Wagner coup 2025")))
    grown = loaded.updated(np.array([True, True, False, True]), [terms("bees in Mali")])  # from mapped arrays
    rebuilt = LexicalIndex.build([passages[0], passages[2], terms("Wagner left Mali in 2025"), terms("bees in Mali")])
    np.testing.assert_allclose(grown.scores(terms("Mali bees")), rebuilt.scores(terms("Mali bees")), rtol=1e-6)


def test_passages_that_score_alike_come_in_the_order_they_were_added():
    index = LexicalIndex.build([terms("bees make honey"), terms("ants"), terms("bees make honey")] * 3)
    scores, rows = index.search(terms("honey bees"), 10)
    assert rows.tolist() == [0, 2, 3, 5, 6, 8] and len(set(scores.tolist())) == 1


def test_maxscore_ranks_as_scoring_every_passage_does():
    """Search prunes with MaxScore where it can; its ranking and scores, ties included,
    must be those every passage's score gives, for every kind of question."""
    from qa.topk import best_positions

    rng = np.random.default_rng(7)
    words = np.array([f"w{n}" for n in range(2000)])
    zipf = 1 / np.arange(1, len(words) + 1)
    passages = [list(rng.choice(words, rng.integers(5, 40), p=zipf / zipf.sum())) for _ in range(3000)]
    index = LexicalIndex.build(passages + passages[:50])  # some exact copies: ties
    pruned = 0
    for _ in range(300):
        question = list(rng.choice(words[: rng.choice([20, 200, 2000])], rng.integers(1, 7))) + ["absent"]
        for k in (1, 5, 50):
            columns = [index._columns[t] for t in index.known(question)]
            pruned += index._candidates(columns, k) is not None
            scores, rows = index.search(question, k)
            every = index.scores(question)
            expected = best_positions(every, k, above=0.0)
            assert rows.tolist() == expected.tolist(), question
            np.testing.assert_array_equal(scores, every[expected].astype(np.float32))
    assert pruned > 300  # MaxScore did the work for many of them
