"""Split a document's text into passages of whole sentences, keeping offsets.

Paragraphs are the natural unit: short ones are merged with their neighbour until a
passage has ``min_words``; a paragraph over ``max_words`` becomes overlapping
windows of whole sentences. A run of more than ``2 * max_words`` words with no
sentence boundary (a table, a list without punctuation) is cut at word boundaries,
since no model reads that far anyway.

A document's headings shape its passages: a heading starts a passage, stays with
the text it heads (headings in a row with the first paragraph after them) and is
never merged into the passage before it, so no passage runs across a section. Each
passage carries its section path: the title, then the headings it lies under. A
page of a PDF likewise starts a passage, so that a passage's page is where it is.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from qa.documents import Document, Heading, Passage
from qa.sentences import Span, sentence_spans

SECTION_SEPARATOR = " > "
_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s*")
# A paragraph ends at a blank line, or at a line break after a line that ends so.
_LAST_OF_PARAGRAPH = frozenset('.!?:"”’)')


@dataclass(frozen=True)
class ChunkSettings:
    """How passages are cut; recorded in each index's manifest."""

    min_words: int = 40
    max_words: int = 150
    overlap_sentences: int = 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def word_count(text: str, start: int = 0, end: int | None = None) -> int:
    """The words (runs of non-space) of ``text[start:end]``; str.split counts the same
    runs as the pattern ``\\S+``, four times as fast."""
    return len(text[start:end].split())


def paragraph_spans(text: str) -> list[Span]:
    """Non-empty paragraphs, without their surrounding whitespace."""
    spans: list[Span] = []
    begin = 0
    for cut, after in [*_paragraph_breaks(text), (len(text), len(text))]:
        span = _strip(text, begin, cut)
        if span:
            spans.append(span)
        begin = after
    return spans


def _paragraph_breaks(text: str) -> Iterator[Span]:
    """Each paragraph break (a blank line, or a line break after ``_LAST_OF_PARAGRAPH``)
    with the whitespace around it, found from the line breaks alone: a pattern would
    be tried at every character."""
    newline = text.find("\n")
    while newline >= 0:
        spaces = _SPACE.match(text, newline)  # always matches: at least the newline
        after = spaces.end() if spaces else newline + 1
        start = newline
        while start and text[start - 1] != "\n" and text[start - 1].isspace():
            start -= 1
        if start and text[start - 1] in _LAST_OF_PARAGRAPH:
            yield start, after
        elif "\n" in text[newline + 1 : after]:
            yield newline, after
        newline = text.find("\n", after)


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


def _sentences(text: str, span: Span, max_words: int) -> tuple[list[Span], list[int]]:
    """The sentences of ``span`` (runs too long for one cut in pieces), and the words of each."""
    pieces: list[Span] = []
    counts: list[int] = []
    for sentence in sentence_spans(text, *span):
        words = word_count(text, *sentence)
        if words > 2 * max_words:
            for piece in _split_long_run(text, sentence, max_words):
                pieces.append(piece)
                counts.append(word_count(text, *piece))
        else:
            pieces.append(sentence)
            counts.append(words)
    return pieces, counts


def _windows(text: str, span: Span, settings: ChunkSettings) -> list[tuple[Span, int]]:
    """Overlapping windows of whole sentences, each at most ``max_words`` long, with
    their words (the sum of their sentences': whitespace lies between sentences)."""
    sentences, counts = _sentences(text, span, settings.max_words)
    windows: list[tuple[Span, int]] = []
    first = 0
    while first < len(sentences):
        last, words = first, counts[first]
        while last + 1 < len(sentences) and words + counts[last + 1] <= settings.max_words:
            last += 1
            words += counts[last]
        windows.append(((sentences[first][0], sentences[last][1]), words))
        if last + 1 >= len(sentences):
            break
        first = max(first + 1, last + 1 - settings.overlap_sentences)
    return windows


def _merge_short(text: str, blocks: list[tuple[Span, bool, int]], settings: ChunkSettings) -> list[Span]:
    """Join a block under ``min_words`` with the next one while both fit, unless the
    next one opens a section; each block comes with its words."""
    merged: list[tuple[Span, int]] = []
    for block, opens, words in blocks:
        if merged and not opens:
            previous, previous_words = merged[-1]
            if min(previous_words, words) < settings.min_words:
                combined = word_count(text, previous[0], block[1])  # windows may overlap: counted again
                if combined <= settings.max_words:
                    merged[-1] = ((previous[0], block[1]), combined)
                    continue
        merged.append((block, words))
    return [span for span, _ in merged]


def _units(text: str, headings: Sequence[Heading]) -> list[tuple[Span, bool]]:
    """Paragraphs, each heading's line its own, then every run of heading lines joined
    with the paragraph after it; each with whether it opens a section."""
    lines = sorted({(_line_start(text, h.start), _line_end(text, h.end)) for h in headings})
    line_starts = [start for start, _ in lines]
    units: list[tuple[Span, bool]] = []
    lead: Span | None = None  # the heading lines still waiting for their paragraph
    for span in _cut(text, paragraph_spans(text), sorted({c for line in lines for c in line})):
        at = bisect.bisect_right(line_starts, span[0]) - 1
        if at >= 0 and span[1] <= lines[at][1]:  # a heading's line
            lead = (lead[0] if lead else span[0], span[1])
            continue
        units.append(((lead[0], span[1]), True) if lead else (span, False))
        lead = None
    if lead:
        units.append((lead, True))
    return units


def _cut(text: str, spans: list[Span], cuts: list[int]) -> list[Span]:
    """``spans`` also cut at each offset of ``cuts`` inside them, whitespace stripped."""
    pieces: list[Span] = []
    for start, end in spans:
        inside = cuts[bisect.bisect_right(cuts, start) : bisect.bisect_left(cuts, end)]
        for begin, finish in zip([start, *inside], [*inside, end]):
            piece = _strip(text, begin, finish)
            if piece:
                pieces.append(piece)
    return pieces


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _line_end(text: str, offset: int) -> int:
    found = text.find("\n", offset)
    return len(text) if found < 0 else found


def chunk_spans(text: str, settings: ChunkSettings = ChunkSettings(), headings: Sequence[Heading] = (),
                pages: Sequence[int] = ()) -> list[Span]:
    """Passage spans of ``text``, in document order; no passage runs from one of
    ``pages`` (their start offsets) into the next either."""
    blocks: list[tuple[Span, bool, int]] = []
    units = _units(text, headings)
    for number, (unit, opens) in enumerate(units):
        if number and pages:
            opens |= bisect.bisect_right(pages, unit[0]) != bisect.bisect_right(pages, units[number - 1][0][0])
        words = word_count(text, *unit)
        if words <= settings.max_words:
            blocks.append((unit, opens, words))
        else:
            windows = _windows(text, unit, settings)
            blocks.extend((window, opens and n == 0, count) for n, (window, count) in enumerate(windows))
    return _merge_short(text, blocks, settings)


def section_paths(document: Document) -> list[tuple[int, str]]:
    """(where it begins, section path) for the title and after each heading, in text order.

    A path is the title, then the headings in force, each at a deeper level than the
    one before; a heading that repeats the title (a page's ``h1``) is left out."""
    if not document.headings:
        return []
    title = " ".join(document.title.split())
    paths = [(0, title)]
    open_headings: list[tuple[int, str]] = []
    for heading in document.headings:
        name = " ".join(document.text[heading.start : heading.end].split())
        while open_headings and open_headings[-1][0] >= heading.level:
            open_headings.pop()
        if name and name.lower() not in title.lower():
            open_headings.append((heading.level, name))
        path = SECTION_SEPARATOR.join([title, *(n for _, n in open_headings)])
        paths.append((_line_start(document.text, heading.start), path))
    return paths


def after_headings(text: str, title: str, section: str) -> int:
    """Where a passage's own text begins: past the heading lines that lead it (its
    section's headings, or the title), 0 when none leads it."""
    if not section:
        return 0
    names = {" ".join(name.split()).lower() for name in [title, *section.split(SECTION_SEPARATOR)]}
    at = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and " ".join(stripped.lstrip("#").split()).lower() not in names:
            break
        at += len(line)
    return at if text[at:].strip() else 0


def chunk_document(document: Document, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    """The passages of one document, numbered from 0, with their sections and pages."""
    paths = section_paths(document)
    starts = [start for start, _ in paths]
    passages = []
    for ordinal, (start, end) in enumerate(chunk_spans(document.text, settings, document.headings, document.pages)):
        section = paths[bisect.bisect_right(starts, end - 1) - 1][1] if paths else ""
        page = bisect.bisect_right(document.pages, start) if document.pages else None
        passages.append(Passage(document.doc_id, ordinal, start, end, document.text[start:end], section, page))
    return passages
