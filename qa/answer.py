"""Pick the sentence of a passage that best answers a question, and mark its words."""

from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache
from typing import Callable

from qa.sentences import Span, sentence_spans
from qa.tokens import term_positions

# Passages found again (a popular one, a question asked twice) skip splitting and
# stemming: about 70% of a lexical search's own time before this cache.
PASSAGES_CACHED = 2048


@lru_cache(maxsize=PASSAGES_CACHED)
def _analysed(text: str) -> tuple[tuple[Span, ...], tuple[int, ...], tuple[tuple[int, int, str], ...]]:
    """A passage's sentences, and the start, and the (start, end, term), of each indexable word."""
    words = tuple(term_positions(text))
    return tuple(sentence_spans(text)), tuple(word[0] for word in words), words


def answer_span(text: str, question_terms: list[str], weight: Callable[[str], float]) -> Span:
    """The sentence of ``text`` sharing the most question-term weight.

    ``weight`` rates a term (IDF, so rare words count more); each term counts once
    per sentence. Ties go to the earlier sentence; with no overlap at all, the
    first sentence stands for the passage.
    """
    wanted = set(question_terms)
    sentences, starts, words = _analysed(text)
    best, best_score = None, 0.0
    for span in sentences:
        inside = words[bisect_left(starts, span[0]) : bisect_left(starts, span[1])]
        score = sum(weight(term) for term in wanted.intersection(term for _, _, term in inside))
        if best is None or score > best_score:
            best, best_score = span, score
    return best or (0, len(text))


def matched_words(text: str, question_terms: list[str]) -> list[list[int]]:
    """[start, end] of each word of a passage that matches a question term."""
    wanted = set(question_terms)
    if not wanted:
        return []
    return [[start, end] for start, end, term in _analysed(text)[2] if term in wanted]
