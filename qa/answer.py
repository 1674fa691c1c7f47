"""Pick the sentence of a passage that best answers a question."""

from __future__ import annotations

from typing import Callable

from qa.sentences import Span, sentence_spans
from qa.tokens import terms


def answer_span(text: str, question_terms: list[str], weight: Callable[[str], float]) -> Span:
    """The sentence of ``text`` sharing the most question-term weight.

    ``weight`` rates a term (IDF, so rare words count more); each term counts once
    per sentence. Ties go to the earlier sentence; with no overlap at all, the
    first sentence stands for the passage.
    """
    wanted = set(question_terms)
    best, best_score = None, 0.0
    for span in sentence_spans(text):
        score = sum(weight(term) for term in wanted.intersection(terms(text[span[0] : span[1]])))
        if best is None or score > best_score:
            best, best_score = span, score
    return best or (0, len(text))
