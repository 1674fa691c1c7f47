"""Lexical terms: lowercased words, English stopwords removed, Snowball-stemmed.

The BM25 index and the answer-sentence scorer share this, so a question's terms
always match the indexed ones.
"""

from __future__ import annotations

import functools
import re
import threading

import Stemmer

# Runs of two or more word characters (as \b\w\w+\b, a third faster).
_WORD = re.compile(r"\w{2,}")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")
# UTF-8 bytes with every ASCII character but a letter, a digit or "_" made a space:
# the breaks between words wherever a text is ASCII, found without a pattern.
_ASCII_BREAKS = bytes(b if b >= 0x80 or chr(b).isalnum() or b == ord("_") else ord(" ") for b in range(256))
# Lucene's English stopword list (the one bm25s uses by default).
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the "
    "their then there these they this to was will with".split()
)
# Words whose terms each thread remembers (a stopword's as ""): a word is stemmed once,
# not at each of its occurrences, which was most of what indexing a passage cost.
KNOWN_WORDS = 1 << 20
_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    # Stemmer objects are not thread-safe: one per thread.
    if not hasattr(_local, "stemmer"):
        _local.stemmer = Stemmer.Stemmer("english")
        _local.known = {}
    return _local.stemmer


def terms(text: str) -> list[str]:
    """The indexable terms of ``text``, in order, repeats kept."""
    words = _words(text.lower())
    stemmer = _stemmer()
    known: dict[str, str] = _local.known
    try:
        return list(filter(None, map(known.__getitem__, words)))
    except KeyError:
        new = [word for word in dict.fromkeys(words) if word not in known]
        if len(known) + len(new) > KNOWN_WORDS:
            known.clear()
            new = list(dict.fromkeys(words))
        known.update(zip(new, ["" if len(w) < 2 or w in STOPWORDS else stem
                               for w, stem in zip(new, stemmer.stemWords(new))]))
        return list(filter(None, map(known.__getitem__, words)))


def _words(lowered: str) -> list[str]:
    """The words ``_WORD`` finds in ``lowered``, and single-character words, which are
    not terms: the runs of word characters. ASCII's non-word characters are made spaces
    by a byte table (three times as fast as the pattern), then each other character
    the text holds that is no word character (a dash, a quote), by a replace of each."""
    spaced = lowered.encode("utf-8", "surrogatepass").translate(_ASCII_BREAKS).decode("utf-8", "surrogatepass")
    if not lowered.isascii():
        for character in set(_NOT_ASCII.findall(spaced)):
            if not _is_word_character(character):
                spaced = spaced.replace(character, " ")
    return spaced.split()


@functools.lru_cache(maxsize=4096)
def _is_word_character(character: str) -> bool:
    return character.isalnum() or character == "_"  # what ``\w`` matches


def term_positions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, term) of each indexable word of ``text``, in order."""
    found = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    found = [(start, end, word) for start, end, word in found if word not in STOPWORDS]
    stems = _stemmer().stemWords([word for _, _, word in found])
    return [(start, end, stem) for (start, end, _), stem in zip(found, stems)]


def term_spans(text: str, wanted: set[str]) -> list[tuple[int, int]]:
    """Character spans of the words in ``text`` whose term is in ``wanted``, in order."""
    return [(start, end) for start, end, term in term_positions(text) if term in wanted] if wanted else []
