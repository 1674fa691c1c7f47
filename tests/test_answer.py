"""The answer sentence and the marked words, over plain strings."""

from __future__ import annotations

from qa.answer import answer_span, matched_words
from qa.tokens import terms

TEXT = "Mali is in West Africa. Wagner arrived in Mali in December 2021. The group left later."


def rare(term: str) -> float:
    return {"mali": 1.0, "wagner": 3.0, "arriv": 2.0}.get(term, 0.5)


def test_the_sentence_with_the_most_question_weight_wins():
    start, end = answer_span(TEXT, terms("When did Wagner arrive in Mali?"), rare)
    assert TEXT[start:end] == "Wagner arrived in Mali in December 2021."


def test_no_shared_word_means_the_first_sentence_and_ties_go_to_the_earlier():
    assert TEXT[slice(*answer_span(TEXT, terms("photosynthesis"), rare))] == "Mali is in West Africa."
    assert TEXT[slice(*answer_span(TEXT, terms("Mali"), rare))] == "Mali is in West Africa."


def test_matched_words_are_the_question_words_whatever_their_form():
    spans = matched_words(TEXT, terms("arrive in mali"))
    assert [TEXT[start:end] for start, end in spans] == ["Mali", "arrived", "Mali"]
    assert matched_words(TEXT, []) == []
