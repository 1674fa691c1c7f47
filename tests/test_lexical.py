from qa.lexical import LexicalIndex
from qa.tokens import terms


def test_stemmed_terms_match_and_unknown_terms_find_nothing():
    index = LexicalIndex.build([terms("Wagner arrived in Mali"), terms("French troops left"), []])
    scores, rows = index.search(terms("When did Wagner arrive?"), 10)
    assert rows.tolist() == [0] and scores[0] > 0
    assert index.search(terms("zebra"), 10)[1].tolist() == []
    assert index.search(terms("the of and"), 10)[1].tolist() == []


def test_rare_terms_weigh_more(tmp_path):
    index = LexicalIndex.build([terms("mali coup"), terms("mali troops"), terms("mali army")])
    index.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert loaded.idf("coup") > loaded.idf("mali") > 0
    assert loaded.idf("unknown") == 0
    assert len(loaded) == 3
