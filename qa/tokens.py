"""Lexical terms: lowercased words, English stopwords removed, Snowball-stemmed.

The BM25 index and the answer-sentence scorer share this, so a question's terms
always match the indexed ones.
"""

from __future__ import annotations

import re
import threading

import Stemmer

_WORD = re.compile(r"\b\w\w+\b")
# Lucene's English stopword list (the one bm25s uses by default).
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the "
    "their then there these they this to was will with".split()
)
_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    # Stemmer objects are not thread-safe: one per thread.
    if not hasattr(_local, "stemmer"):
        _local.stemmer = Stemmer.Stemmer("english")
    return _local.stemmer


def terms(text: str) -> list[str]:
    """The indexable terms of ``text``, in order, repeats kept."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    return _stemmer().stemWords(words)


def term_positions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, term) of each indexable word of ``text``, in order."""
    found = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    found = [(start, end, word) for start, end, word in found if word not in STOPWORDS]
    stems = _stemmer().stemWords([word for _, _, word in found])
    return [(start, end, stem) for (start, end, _), stem in zip(found, stems)]


def term_spans(text: str, wanted: set[str]) -> list[tuple[int, int]]:
    """Character spans of the words in ``text`` whose term is in ``wanted``, in order."""
    return [(start, end) for start, end, term in term_positions(text) if term in wanted] if wanted else []
