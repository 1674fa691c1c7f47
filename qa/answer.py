"""Pick the sentence of a passage that best answers a question, and mark its words."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from qa.sentences import Span, sentence_spans
from qa.tokens import term_positions

# Passages found again (a popular one, a question asked twice) skip splitting and
# stemming: about 70% of a lexical search's own time before this cache.
PASSAGES_CACHED = 2048


@dataclass(frozen=True)
class _Analysis:
    """A passage's sentences with the terms each holds, and where each term's words are."""

    sentences: tuple[Span, ...]
    sentence_terms: tuple[frozenset[str], ...]
    words_of: dict[str, tuple[Span, ...]]


@lru_cache(maxsize=PASSAGES_CACHED)
def _analysed(text: str) -> _Analysis:
    words = term_positions(text)
    starts = [start for start, _, _ in words]
    sentences = tuple(sentence_spans(text))
    inside = [words[bisect_left(starts, start) : bisect_left(starts, end)] for start, end in sentences]
    words_of: dict[str, list[Span]] = {}
    for start, end, term in words:
        words_of.setdefault(term, []).append((start, end))
    return _Analysis(sentences, tuple(frozenset(term for _, _, term in found) for found in inside),
                     {term: tuple(spans) for term, spans in words_of.items()})


def answer_span(text: str, weights: Mapping[str, float], start: int = 0) -> Span:
    """The sentence of ``text`` sharing the most question-term weight, among those
    from ``start`` on (past a passage's leading headings) where there are any.

    ``weights`` rates each of the question's terms (IDF, so rare words count more);
    each term counts once per sentence. Ties go to the earlier sentence; with no
    overlap at all, the first sentence stands for the passage. A sentence that ends
    in a colon comes with what it introduces (the example or list after it).
    """
    analysis = _analysed(text)
    candidates = [n for n, span in enumerate(analysis.sentences) if span[0] >= start]
    best, best_score = None, 0.0
    for number in candidates or range(len(analysis.sentences)):
        present = analysis.sentence_terms[number]
        score = math.fsum(weights[term] for term in present.intersection(weights))  # exact: order cannot matter
        if best is None or score > best_score:
            best, best_score = number, score
    if best is None:
        return (0, len(text))
    begin, end = analysis.sentences[best]
    if text[end - 1] == ":" and best + 1 < len(analysis.sentences):
        end = analysis.sentences[best + 1][1]
    return begin, end


def matched_words(text: str, question_terms: list[str]) -> list[list[int]]:
    """[start, end] of each word of a passage that matches a question term, in order."""
    words_of = _analysed(text).words_of
    return sorted([start, end] for term in set(question_terms) for start, end in words_of.get(term, ()))
