"""Word documents (.docx): paragraphs and tables in order, headings from their styles."""

from __future__ import annotations

import io
import re

from qa.blocks import BlockText
from qa.errors import UnreadableFile

_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def read_docx(name: str, data: bytes) -> tuple[str, BlockText]:
    """(title, text) of a .docx file: ``Title`` and ``Heading N`` paragraphs become
    headings, and each table row a paragraph of its cells."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises many kinds on a file that is not a .docx
        raise UnreadableFile(f"{name}: not a readable Word document ({error})") from error
    text = BlockText()
    titled = ""
    for element in document.element.body.iterchildren():
        if element.tag.endswith("}p"):
            paragraph = Paragraph(element, document)
            level = _level(paragraph.style.name if paragraph.style is not None else "")
            if level == 1 and not titled and paragraph.style is not None and paragraph.style.name == "Title":
                titled = paragraph.text.strip()
            text.add(paragraph.text, level)
        elif element.tag.endswith("}tbl"):
            for row in Table(element, document).rows:
                text.add(" ".join(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip())))
    title = document.core_properties.title or titled
    if not title:
        title = next((t for t, h in zip(text.heading_texts(), text.headings) if h.level == 1), "")
    return title.strip(), text


def _level(style: str) -> int | None:
    """The heading level of a paragraph style: ``Title`` 1, ``Heading N`` N + 1."""
    if style == "Title":
        return 1
    match = _HEADING_STYLE.match(style)
    return int(match.group(1)) + 1 if match else None
