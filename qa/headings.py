"""Headings of the plain-text formats: Markdown's ``#`` lines, reStructuredText's
underlined (and overlined) titles."""

from __future__ import annotations

import re

from qa.blocks import BlockText
from qa.documents import Heading

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A line of one repeated punctuation character, as reStructuredText adorns titles.
_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")


def markdown_headings(text: str) -> tuple[Heading, ...]:
    """The ATX headings (``# Title``, ``## Section``) of Markdown ``text``, outside code fences."""
    headings: list[Heading] = []
    fence: str | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        opened = _FENCE.match(line)
        if opened and (fence is None or opened.group(1)[0] == fence):
            fence = opened.group(1)[0] if fence is None else None
        elif fence is None and (match := _ATX.match(line.rstrip("\r\n"))) and match.group(2):
            headings.append(Heading(offset + match.start(2), offset + match.end(2), len(match.group(1))))
        offset += len(line)
    return tuple(headings)


def rst_text(text: str) -> tuple[str, tuple[Heading, ...]]:
    """reStructuredText without its title adornments, and its titles' headings.

    A title is a line of text underlined (optionally also overlined) by one repeated
    punctuation character at least as long as it; levels go by the order in which
    each style of adornment first appears, as docutils assigns them."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    built = BlockText()
    paragraph: list[str] = []
    number = 0
    while number < len(lines):
        title, style, used = _title_at(lines, number)
        if title is None:
            line = lines[number]
            if line.strip():
                paragraph.append(line)
            else:
                built.add("\n".join(paragraph))
                paragraph = []
            number += 1
            continue
        built.add("\n".join(paragraph))
        paragraph = []
        if style not in styles:
            styles.append(style)
        built.add(title, styles.index(style) + 1)
        number += used
    built.add("\n".join(paragraph))
    return built.text, tuple(built.headings)


def _title_at(lines: list[str], number: int) -> tuple[str | None, tuple[str, bool], int]:
    """(title, (adornment character, overlined), lines used) of a title starting at
    line ``number``, or None for the title when none starts there."""
    line = lines[number]
    following = lines[number + 1] if number + 1 < len(lines) else ""
    over = _ADORNMENT.match(line)
    if over and number + 2 < len(lines):
        under = _ADORNMENT.match(lines[number + 2])
        title = following.strip()
        if under and under.group(1) == over.group(1) and title and not _ADORNMENT.match(following):
            return title, (over.group(1), True), 3
    under = _ADORNMENT.match(following)
    title = line.strip()
    if under and title and not over and line == line.lstrip() and len(following.rstrip()) >= len(title):
        return title, (under.group(1), False), 2
    return None, ("", False), 1
