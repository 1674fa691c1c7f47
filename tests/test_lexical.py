import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qa.lexical
from qa.lexical import LexicalSegment, LexicalSettings, save_joined
from qa.segments import Segment, SegmentView
from qa.snapshot import Snapshot
from qa.tokens import terms
from qa.vector_store import VectorStore


def _index(*segments: list[list[str]], deleted: dict[int, list[int]] | None = None) -> Snapshot:
    """A snapshot of one segment per list of passages (their terms), rows in order;
    ``deleted`` maps a segment's number to positions deleted from it."""
    views, row = [], 0
    for number, passages in enumerate(segments):
        rows = np.arange(row, row + len(passages))
        row += len(passages)
        segment = Segment(f"s{number}", rows, VectorStore.build(np.zeros((len(passages), 4), np.float32)),
                          LexicalSegment.build(passages))
        view = SegmentView(segment)
        if deleted and number in deleted:
            view = view.without(np.array(deleted[number]))
        views.append(view)
    return Snapshot("store", 1, 0, tuple(views), LexicalSettings())


def _search(index: Snapshot, question: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    found = index.lexical(question, k)
    return found.scores, found.ids


def test_stemmed_terms_match_and_unknown_terms_find_nothing():
    index = _index([terms("Wagner arrived in Mali"), terms("French troops left"), []])
    scores, rows = _search(index, terms("When did Wagner arrive?"), 10)
    assert rows.tolist() == [0] and scores[0] > 0
    assert _search(index, terms("zebra"), 10)[1].tolist() == []
    assert _search(index, terms("the of and"), 10)[1].tolist() == []


def test_rare_terms_weigh_more(tmp_path):
    LexicalSegment.build([terms("mali coup"), terms("mali troops"), terms("mali army")]).save(tmp_path)
    loaded = LexicalSegment.load(tmp_path, LexicalSettings())
    assert len(loaded) == 3
    index = Snapshot("store", 1, 0, (SegmentView(Segment("s", np.arange(3), VectorStore.build(
        np.zeros((3, 4), np.float32)), loaded)),), LexicalSettings())
    idf = index.idf(["coup", "mali", "unknown"])
    assert idf["coup"] > idf["mali"] > 0
    assert idf["unknown"] == 0


def test_every_passage_carries_its_title_once():
    from qa.lexical import LexicalSettings, passage_terms

    assert passage_terms("Workers live six weeks.", "Honey bees")[:2] == ["honey", "bee"]
    assert passage_terms("Honey bees: workers live six weeks.", "Honey bees").count("honey") == 1
    without = LexicalSettings(title_in_every_passage=False)
    assert "honey" not in passage_terms("Workers live six weeks.", "Honey bees", without)


def test_a_later_passage_is_found_by_its_documents_title():
    from qa.lexical import passage_terms

    passages = [("Workers live six weeks in summer.", "Honey bees"), ("Drones do not sting.", "Wasps")]
    index = _index([passage_terms(text, title) for text, title in passages])
    assert _search(index, terms("honey"), 5)[1].tolist() == [0]


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
    scores, rows = _search(_index(passages), query, 10)
    assert rows.tolist() == sorted((r for r in range(4) if expected[r] > 0), key=lambda r: -expected[r])
    np.testing.assert_allclose(scores, [expected[r] for r in rows], rtol=1e-5)
    np.testing.assert_allclose(_index(passages).lexical_scores(query), expected, rtol=1e-6)  # every passage


def test_segments_with_deletions_score_as_one_index_built_afresh(tmp_path):
    """BM25's statistics are the collection's: IDF over live passages of every segment,
    lengths against the live average, deleted passages neither found nor counted."""
    passages = [terms(p) for p in PASSAGES]
    later = terms("Wagner left Mali in 2025")
    segmented = _index(passages[:3], [passages[3], later], deleted={0: [1]})
    fresh = _index([passages[0], passages[2], passages[3], later])
    for question in ["Wagner Mali", "coup", "bees", "2025", "Africa Corps", "Mali Mali army"]:
        got, want = segmented.lexical(terms(question), 10), fresh.lexical(terms(question), 10)
        np.testing.assert_array_equal(segmented.row_at(got.ids), fresh.row_at(want.ids) + (fresh.row_at(
            want.ids) >= 1))  # fresh rows 1.. are the segmented rows 2..
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
        assert segmented.idf(terms(question)) == fresh.idf(terms(question))
    assert not len(segmented.lexical(terms("Africa Corps"), 10))  # only the deleted passage had them
    LexicalSegment.build(passages[:3]).save(tmp_path)
    mapped = LexicalSegment.load(tmp_path, LexicalSettings())
    reopened = Snapshot("store", 1, 0, (SegmentView(Segment("m", np.arange(3), VectorStore.build(
        np.zeros((3, 4), np.float32)), mapped)).without(np.array([1])), segmented.views[1]), LexicalSettings())
    for question in ["Wagner coup 2025", "Mali"]:
        np.testing.assert_array_equal(reopened.lexical(terms(question), 10).ids,
                                      segmented.lexical(terms(question), 10).ids)


def test_a_merge_joins_the_kept_passages_as_a_segment_built_of_them_alone(tmp_path, monkeypatch):
    """A merge writes the joined counts and postings part by part, a few at a time
    here: the saved segment holds each kept passage's terms, each term's postings and
    best saturation as a segment built afresh of those passages does."""
    monkeypatch.setattr(qa.lexical, "JOIN_POSTINGS", 5)  # many parts and bands, terms split over them
    rng = np.random.default_rng(4)
    words = [f"w{n}" for n in range(30)]
    segments = [[list(rng.choice(words, rng.integers(1, 9))) for _ in range(size)] for size in (12, 1, 20)]
    kept = [np.array([0, 2, 3, 7, 11]), np.array([], np.int64), np.arange(20)[rng.random(20) < 0.6]]
    save_joined([(LexicalSegment.build(passages), positions) for passages, positions in zip(segments, kept)],
                LexicalSettings(), tmp_path)
    joined = LexicalSegment.load(tmp_path, LexicalSettings())
    afresh = LexicalSegment.build([segment[p] for segment, positions in zip(segments, kept) for p in positions])
    np.testing.assert_array_equal(joined.lengths, afresh.lengths)
    for term, column in afresh.columns.items():
        at = joined.columns[term]
        assert joined.counts[:, at].toarray().tolist() == afresh.counts[:, column].toarray().tolist(), term
        np.testing.assert_array_equal(joined._span(at)[0], afresh._span(column)[0])
        np.testing.assert_array_equal(joined._span(at)[1], afresh._span(column)[1])
        assert joined._best[at] == afresh._best[column], term
    assert all(joined.frequency[joined.columns[t]] == 0 for t in set(joined.columns) - set(afresh.columns))


def test_a_merge_of_more_than_65536_terms_keeps_each_terms_passages_in_order(tmp_path):
    """Postings are ordered by term a band at a time; a band of more than 65,536 terms
    (a folder of one-paragraph files brings a title word each) keeps each term's
    passages, in order, as a segment built afresh holds them."""
    rng = np.random.default_rng(5)
    passages = [[f"w{n}", f"w{(n * 7919) % 40_000}", "river"][: rng.integers(1, 4)] for n in range(70_000)]
    save_joined([(LexicalSegment.build(passages), np.arange(len(passages)))], LexicalSettings(), tmp_path)
    joined, afresh = LexicalSegment.load(tmp_path, LexicalSettings()), LexicalSegment.build(passages)
    assert len(afresh.columns) > 1 << 16
    for term in ["river", "w0", "w3", "w39999", "w40000", "w65535", "w65536", "w69999"]:
        at, column = joined.columns[term], afresh.columns[term]
        np.testing.assert_array_equal(joined._span(at)[0], afresh._span(column)[0])
        np.testing.assert_array_equal(joined._span(at)[1], afresh._span(column)[1])


def test_passages_that_score_alike_come_in_the_order_they_were_added():
    index = _index([terms("bees make honey"), terms("ants"), terms("bees make honey")] * 3)
    scores, rows = _search(index, terms("honey bees"), 10)
    assert rows.tolist() == [0, 2, 3, 5, 6, 8] and len(set(scores.tolist())) == 1


def test_maxscore_ranks_as_scoring_every_passage_does():
    """Search prunes with MaxScore where it can; its ranking and scores, ties included,
    must be those every passage's score gives, for every kind of question, with deleted
    passages and over segments whose average lengths differ from the collection's."""
    from qa.topk import best_positions

    rng = np.random.default_rng(7)
    words = np.array([f"w{n}" for n in range(2000)])
    zipf = 1 / np.arange(1, len(words) + 1)
    passages = [list(rng.choice(words, rng.integers(5, 40), p=zipf / zipf.sum())) for _ in range(3000)]
    short = [p[:4] for p in passages[:200]]
    deleted = sorted(rng.choice(3050, 300, replace=False).tolist())
    index = _index(passages + passages[:50], short, deleted={0: deleted})  # some exact copies: ties
    dead = np.zeros(index.size, dtype=bool)
    dead[deleted] = True
    lexical = index.views[0].segment.lexical
    pruned = 0
    for _ in range(300):
        question = list(rng.choice(words[: rng.choice([20, 200, 2000])], rng.integers(1, 7))) + ["absent"]
        collection = index.collection(question)
        for k in (1, 5, 50):
            from qa.lexical import QuestionTerms

            pruned += lexical._maxscore(QuestionTerms.of(lexical, question, collection), k,
                                        index.views[0].deleted) is not None
            found = index.lexical(question, k)
            every = index.lexical_scores(question)
            every[dead] = 0.0
            expected = best_positions(every, k, above=0.0)
            assert found.ids.tolist() == expected.tolist(), question
            np.testing.assert_array_equal(found.scores, every[expected].astype(np.float32))
    assert pruned > 300  # MaxScore did the work for many of them


def test_words_are_the_runs_of_two_word_characters_in_any_script():
    """Terms split ASCII text by a table; the result is what the pattern finds anywhere."""
    import re

    from qa.tokens import STOPWORDS, _stemmer

    texts = ["Wagner's troops — 2,000 of them — arrived in Mali\u00a0in 2021.", "Café naïve façade, ﬁne Straße",
             "snake_case and x y z 7 8 9 a1 b_", "Ünïcödé\u2028lines\u3000東京 tower’s", "tab\tnew\nline--dash"]
    stemmer = _stemmer()
    for text in texts:
        words = [w for w in re.findall(r"\w{2,}", text.lower()) if w not in STOPWORDS]
        assert terms(text) == stemmer.stemWords(words), text


@pytest.mark.parametrize("counted", ["apart", "shared", "split"],
                         ids=["own vocabularies", "one shared vocabulary", "counted at once, then split"])
def test_passages_counted_in_parts_hold_each_of_their_terms_as_often_as_it_occurs(counted):
    """What a write's revisions bring, counted ahead a document at a time (each in a
    vocabulary of its own, or all in one), or all at once and split among the documents
    (as a worker sends a group): repeats, passages without terms, documents without
    passages, and terms first seen in a later part."""
    from collections import Counter

    from qa.lexical import CountedTerms, TermCounter, Words

    parts = [[terms("the river rose and the river fell"), [], terms("mali coup")],
             [terms("river mali river river")], [], [terms("a new word: zebra"), terms("zebra zebra mali")]]
    passages = [passage for part in parts for passage in part]
    if counted == "split":
        counted_parts = CountedTerms.of(passages).split([len(part) for part in parts])
    else:
        vocabulary = Words() if counted == "shared" else None
        counted_parts = [CountedTerms.of(part, vocabulary) for part in parts]
    counter = TermCounter()
    counter.add(counted_parts)
    segment = counter.segment(LexicalSettings())
    assert len(segment) == len(passages) == 6
    for row, passage in enumerate(passages):
        counts = segment.counts[row]
        held = {segment.vocabulary[column]: int(count) for column, count in zip(counts.indices, counts.data)}
        assert held == Counter(passage)
    assert [Counter(text.split()) for part in parts for text in CountedTerms.of(part).expanded()] == [
        Counter(passage) for passage in passages]
    assert [Counter(text.split()) for part in counted_parts for text in part.expanded()] == [
        Counter(passage) for passage in passages]
    with pytest.raises(ValueError, match="7 passages asked for, of 6"):
        CountedTerms.of(passages).split([len(passages), 1])


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(max_size=60))
def test_words_are_the_runs_of_two_word_characters_in_any_text(text):
    import re

    from qa.tokens import _words

    lowered = text.lower()
    assert [w for w in _words(lowered) if len(w) >= 2] == re.findall(r"\w{2,}", lowered)


def test_a_shared_vocabulary_gives_columns_only_to_the_words_of_the_passages_counted():
    """Documents prepared together share a vocabulary, and may be written apart: a
    word of a document not written yet is no term of the segment."""
    from qa.lexical import CountedTerms, TermCounter, Words

    vocabulary = Words()
    written = CountedTerms.of([terms("river mali")], vocabulary)
    CountedTerms.of([terms("zebra crossing")], vocabulary)  # prepared, not written
    counter = TermCounter()
    counter.add([written])
    assert sorted(counter.segment(LexicalSettings()).vocabulary) == sorted(terms("river mali"))
