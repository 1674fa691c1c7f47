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
