"""Split a document's text into passages of whole sentences, keeping offsets.

Paragraphs are the natural unit: short ones are merged with their neighbour until a
passage has ``min_words``; a paragraph over ``max_words`` becomes overlapping
windows of whole sentences. A run of more than ``2 * max_words`` words with no
sentence boundary (a table, a list without punctuation) is cut at word boundaries,
since no model reads that far anyway.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from qa.documents import Document, Passage
from qa.sentences import Span, sentence_spans

_WORD = re.compile(r"\S+")
# A blank line, or a line break after a line that ends a sentence.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*|(?<=[.!?:\"”’)])[^\S\n]*\n\s*")


@dataclass(frozen=True)
class ChunkSettings:
    """How passages are cut; recorded in each index's manifest."""

    min_words: int = 40
    max_words: int = 150
    overlap_sentences: int = 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def word_count(text: str, start: int = 0, end: int | None = None) -> int:
    return len(_WORD.findall(text, start, len(text) if end is None else end))


def paragraph_spans(text: str) -> list[Span]:
    """Non-empty paragraphs, without their surrounding whitespace."""
    spans: list[Span] = []
    begin = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        cut = match.start() if match else len(text)
        span = _strip(text, begin, cut)
        if span:
            spans.append(span)
        if match:
            begin = match.end()
    return spans


def _strip(text: str, start: int, end: int) -> Span | None:
    segment = text[start:end]
    stripped = segment.strip()
    if not stripped:
        return None
    offset = start + segment.index(stripped[0])
    return (offset, offset + len(stripped))


def _split_long_run(text: str, span: Span, max_words: int) -> list[Span]:
    """Cut a boundary-less run into pieces of ``max_words`` words."""
    words = list(_WORD.finditer(text, span[0], span[1]))
    return [
        (words[i].start(), words[min(i + max_words, len(words)) - 1].end())
        for i in range(0, len(words), max_words)
    ]


def _sentences(text: str, span: Span, max_words: int) -> list[Span]:
    pieces: list[Span] = []
    for sentence in sentence_spans(text, *span):
        if word_count(text, *sentence) > 2 * max_words:
            pieces.extend(_split_long_run(text, sentence, max_words))
        else:
            pieces.append(sentence)
    return pieces


def _windows(text: str, span: Span, settings: ChunkSettings) -> list[Span]:
    """Overlapping windows of whole sentences, each at most ``max_words`` long."""
    sentences = _sentences(text, span, settings.max_words)
    counts = [word_count(text, *s) for s in sentences]
    windows: list[Span] = []
    first = 0
    while first < len(sentences):
        last, words = first, counts[first]
        while last + 1 < len(sentences) and words + counts[last + 1] <= settings.max_words:
            last += 1
            words += counts[last]
        windows.append((sentences[first][0], sentences[last][1]))
        if last + 1 >= len(sentences):
            break
        first = max(first + 1, last + 1 - settings.overlap_sentences)
    return windows


def _merge_short(text: str, blocks: list[Span], settings: ChunkSettings) -> list[Span]:
    """Join a block under ``min_words`` with the next one while both fit."""
    merged: list[Span] = []
    for block in blocks:
        if merged:
            previous = merged[-1]
            combined = word_count(text, previous[0], block[1])
            short = min(word_count(text, *previous), word_count(text, *block))
            if short < settings.min_words and combined <= settings.max_words:
                merged[-1] = (previous[0], block[1])
                continue
        merged.append(block)
    return merged


def chunk_spans(text: str, settings: ChunkSettings = ChunkSettings()) -> list[Span]:
    """Passage spans of ``text``, in document order."""
    blocks: list[Span] = []
    for paragraph in paragraph_spans(text):
        if word_count(text, *paragraph) <= settings.max_words:
            blocks.append(paragraph)
        else:
            blocks.extend(_windows(text, paragraph, settings))
    return _merge_short(text, blocks, settings)


def chunk_document(document: Document, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    """The passages of one document, numbered from 0."""
    return [
        Passage(document.doc_id, ordinal, start, end, document.text[start:end])
        for ordinal, (start, end) in enumerate(chunk_spans(document.text, settings))
    ]
