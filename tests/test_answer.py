"""The answer sentence and the marked words, over plain strings."""

from __future__ import annotations

from qa.answer import answer_span, matched_words
from qa.tokens import terms

TEXT = "Mali is in West Africa. Wagner arrived in Mali in December 2021. The group left later."


def rare(question: str) -> dict[str, float]:
    """The question's terms, weighted as IDF might."""
    return {term: {"mali": 1.0, "wagner": 3.0, "arriv": 2.0}.get(term, 0.5) for term in terms(question)}


def test_the_sentence_with_the_most_question_weight_wins():
    start, end = answer_span(TEXT, rare("When did Wagner arrive in Mali?"))
    assert TEXT[start:end] == "Wagner arrived in Mali in December 2021."


def test_no_shared_word_means_the_first_sentence_and_ties_go_to_the_earlier():
    assert TEXT[slice(*answer_span(TEXT, rare("photosynthesis")))] == "Mali is in West Africa."
    assert TEXT[slice(*answer_span(TEXT, rare("Mali")))] == "Mali is in West Africa."


def test_matched_words_are_the_question_words_whatever_their_form():
    spans = matched_words(TEXT, terms("arrive in mali"))
    assert [TEXT[start:end] for start, end in spans] == ["Mali", "arrived", "Mali"]
    assert matched_words(TEXT, []) == []


def test_sentences_with_the_same_question_words_tie_whatever_their_order_and_the_earlier_wins():
    text = "Season after season, the team plays a regular game. Each team plays a regular season. A regular team has a season."
    weights = dict(zip(terms("team regular season"), (0.1, 0.2, 0.3)))  # sums that rounding could tell apart
    assert text[slice(*answer_span(text, weights))].startswith("Season after season")


def test_a_passage_answers_past_the_headings_that_lead_it():
    from qa.chunking import after_headings

    text = "## Reading files\n\nTo read a file's contents, call f.read(size). It returns a string."
    weights = {term: 1.0 for term in terms("how do I read files?")}
    assert text[slice(*answer_span(text, weights))] == "## Reading files"  # the heading holds every word
    lead = after_headings(text, "Input and Output", "Input and Output > Reading files")
    assert text[slice(*answer_span(text, weights, lead))] == "To read a file's contents, call f.read(size)."
    assert after_headings(text, "Input and Output", "") == 0  # no section: no heading leads it


def test_a_sentence_ending_in_a_colon_comes_with_what_it_introduces():
    text = "You can see its JSON form with one line of code:\n\n>>> json.dumps([1, 'simple'])\n\nThat is all."
    start, end = answer_span(text, {term: 1.0 for term in terms("json form")})
    assert text[start:end] == "You can see its JSON form with one line of code:\n\n>>> json.dumps([1, 'simple'])"
