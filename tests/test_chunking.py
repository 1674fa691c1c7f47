from qa.chunking import ChunkSettings, chunk_document, chunk_spans, paragraph_spans, word_count
from qa.documents import Document
from qa.readers import read_document
from qa.sentences import sentence_spans

from conftest import SEEDS


def _sentences(count: int, words: int = 10) -> str:
    return " ".join(f"Sentence {i} " + "word " * (words - 3) + "end." for i in range(count))


def test_passages_are_exact_slices_of_the_document():
    text = "Title line\n\n" + _sentences(40) + "\n\nShort closing paragraph here."
    document = Document("d", "t", "s", text)
    for passage in chunk_document(document):
        assert text[passage.start : passage.end] == passage.text


def test_seed_article_becomes_about_one_passage_per_paragraph():
    document = read_document(next(SEEDS.glob("01-*")), "seed")
    passages = chunk_document(document)
    paragraphs = paragraph_spans(document.text)
    assert 5 <= len(passages) <= len(paragraphs)
    assert all(40 <= word_count(p.text) <= 150 for p in passages)
    december = [p for p in passages if "December 2021" in p.text]
    assert len(december) == 1 and december[0].text.startswith("In a statement on its Telegram channel")


def test_long_paragraph_becomes_overlapping_windows_of_whole_sentences():
    text = _sentences(50)  # 500 words, one paragraph
    settings = ChunkSettings(min_words=40, max_words=150, overlap_sentences=1)
    spans = chunk_spans(text, settings)
    sentences = sentence_spans(text)
    boundaries_start = {s for s, _ in sentences}
    boundaries_end = {e for _, e in sentences}
    assert len(spans) >= 4
    for (_, end), (next_start, _) in zip(spans, spans[1:]):
        assert next_start < end, "consecutive windows overlap"
    for start, end in spans:
        assert start in boundaries_start and end in boundaries_end, "no sentence is cut"
        assert word_count(text, start, end) <= 150
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_short_paragraphs_merge_but_never_beyond_max_words():
    text = "\n\n".join(_sentences(1) for _ in range(30))  # thirty 10-word paragraphs
    spans = chunk_spans(text)
    assert all(40 <= word_count(text, s, e) <= 150 for s, e in spans)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_a_run_without_sentence_boundaries_is_cut_at_words():
    text = "word " * 1000
    spans = chunk_spans(text.strip(), ChunkSettings(max_words=150))
    assert len(spans) >= 6
    assert all(word_count(text, s, e) <= 150 for s, e in spans)


def test_sentences_do_not_end_at_abbreviations_or_decimals():
    text = "Dr. Smith paid 3.5 million dollars in Jan. 2020 to the U.N. agency. Then he left."
    found = [text[s:e] for s, e in sentence_spans(text)]
    assert found == ["Dr. Smith paid 3.5 million dollars in Jan. 2020 to the U.N. agency.", "Then he left."]


def test_empty_text_has_no_passages():
    assert chunk_spans("  \n\n  ") == []
