"""Sentence boundaries as character spans, for chunking and for answer sentences."""

from __future__ import annotations

import re

Span = tuple[int, int]

# A sentence ends at . ! or ? (plus closing quotes or brackets), before whitespace
# and a character that can start a sentence; or at a blank line. The mark is matched,
# not looked behind for: a look-behind is tried at every character, twice as slow.
_BOUNDARY = re.compile(
    r"""[.!?]["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9À-Ý])|\n\s*\n"""
)
# Words whose trailing period rarely ends a sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e no fig al gen col lt sgt capt "
    "inc ltd co corp dept univ approx jan feb mar apr jun jul aug sep sept oct nov dec".split()
)


_OPENING = "(\"'“‘"
_LONGEST = max(map(len, _ABBREVIATIONS))


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the word before the period at ``end - 1`` is an abbreviation. It looks
    back over that word alone, so chunking stays linear in a document's length, and
    stops early where the word is too long to be one."""
    start, floor = end - 1, max(0, end - 2 - _LONGEST)
    while start > floor and not text[start - 1].isspace():
        start -= 1
    if start == floor and start and text[start] not in _OPENING and not text[start - 1].isspace():
        return False  # longer than any abbreviation, whatever opens it
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start : end - 1].lower().lstrip(_OPENING)
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Split ``text[start:end]`` into sentences; spans index into ``text``."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    begin = start
    for match in _BOUNDARY.finditer(text, start, end):
        cut = match.start() if match.group()[0] == "\n" else match.end()
        if text[cut - 1 : cut] == "." and _is_abbreviation(text, cut):
            continue
        span = _trim(text, begin, cut)
        if span:
            spans.append(span)
        begin = cut
    span = _trim(text, begin, end)
    if span:
        spans.append(span)
    return spans
