"""Files to documents: plain text, Markdown, reStructuredText, HTML (main content
only), Word (.docx) and PDF, each with the headings its format marks.

A text, Markdown or reStructuredText file may open with a front-matter block giving
its title and source::

    ---
    title: Wagner Group withdraws from Mali
    source: cgtn.com
    ---
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qa.blocks import BlockText
from qa.documents import Document, Heading
from qa.errors import UnreadableFile, UnsupportedFile
from qa.headings import markdown_headings, rst_text
from qa.markup import page_text
from qa.office import read_docx

MARKDOWN_SUFFIXES = {".md", ".markdown"}
RST_SUFFIXES = {".rst", ".rest"}
TEXT_SUFFIXES = {".txt", ".text"} | MARKDOWN_SUFFIXES | RST_SUFFIXES
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | DOCX_SUFFIXES
# The suffix to read an upload as when its name has none of the above but its media type says.
SUFFIX_OF_TYPE = {
    "text/plain": ".txt", "text/markdown": ".md", "text/x-rst": ".rst", "text/html": ".html",
    "application/pdf": ".pdf", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}

log = logging.getLogger(__name__)
_FRONT_MATTER = re.compile(r"\A---[^\S\n]*\n(.*?)\n---[^\S\n]*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Read:
    """What a reader found in a file, before it is given its id."""

    title: str
    source: str
    text: str
    headings: tuple[Heading, ...] = ()
    pages: tuple[int, ...] = ()


@dataclass(frozen=True)
class FoundFile:
    """A file a look under some paths found: one ingest reads (``supported``), with its
    document id and size in bytes, or one of another type (hidden ones, such as
    ``.git/...``, aside; its size not asked for, 0). Its path is a string: a bulk ingest
    hands hundreds of thousands to its worker processes, and a ``Path`` cost more to
    send and to make again there than reading a small file."""

    path: str
    doc_id: str
    supported: bool
    size: int = 0

    @property
    def suffix(self) -> str:
        """The suffix of its name, as ``Path.suffix`` gives it."""
        return _stem_and_suffix(self.path)[1]


def find_files(paths: Iterable[Path]) -> Iterator[FoundFile]:
    """The files under ``paths``, in path order, found as they are asked for: memory
    holds one folder's names at a time, never the whole list.

    A file's id is its path from the folder that was named, that folder's own name
    first (``seeds/wagner.md``); a file named directly is known by its file name.
    """
    for path in paths:
        if not path.is_dir():
            yield FoundFile(str(path), path.name, True, _size(path))
            continue
        name, folder = path.resolve().name, "" if str(path) == "." else str(path).rstrip("/") + "/"  # as / joins
        for relative in _files_under(path):
            supported = _stem_and_suffix(relative)[1].lower() in SUPPORTED_SUFFIXES
            if supported or not any(part.startswith(".") for part in relative.split("/")):
                found = f"{folder}{relative}"
                yield FoundFile(found, f"{name}/{relative}", supported, _size(found) if supported else 0)


def _files_under(folder: Path, prefix: str = "") -> Iterator[str]:
    """The relative paths (with /) of every file under ``folder``, in the order Path
    objects sort (each folder's names sorted, a folder's files where its name sorts),
    symbolic links followed."""
    with os.scandir(folder) as entries:
        names, folders = [], set()
        for entry in entries:
            if entry.is_dir():
                folders.add(entry.name)
            elif not entry.is_file():
                continue
            names.append(entry.name)
    names.sort()
    for entry_name in names:
        if entry_name in folders:
            yield from _files_under(folder / entry_name, f"{prefix}{entry_name}/")
        else:
            yield f"{prefix}{entry_name}"


def _stem_and_suffix(name: str) -> tuple[str, str]:
    """The stem and suffix of the last part of the path ``name`` (with /), as
    ``PurePosixPath`` gives them, without the cost of making one for every file."""
    last = name.rpartition("/")[2]
    dot = last.rfind(".")
    return (last[:dot], last[dot:]) if 0 < dot < len(last) - 1 else (last, "")


def _size(file: Path | str) -> int:
    """A file's size in bytes, 0 where it cannot be told (reading it will say why)."""
    try:
        return os.stat(file).st_size
    except OSError:
        return 0


def read_document(path: Path | str, doc_id: str) -> Document:
    """Read one file; raises ``UnreadableFile`` naming the file and the reason."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise UnreadableFile(f"{path}: {error.strerror or error}") from error
    return parse_document(data, str(path), doc_id)


def parse_document(data: bytes, name: str, doc_id: str) -> Document:
    """The document in ``data``, a file called ``name`` (its suffix says the format).

    ``name`` is only a label: it becomes the default title and source, never a path."""
    stem, suffix = _stem_and_suffix(name)
    suffix = suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFile(f"{name}: unsupported file type {suffix or '(none)'}; send one of {supported}")
    if not data.strip():
        raise UnreadableFile(f"{name}: the file is empty", code="empty_file")
    if suffix in PDF_SUFFIXES:
        document = _read_pdf(name, data)
    elif suffix in DOCX_SUFFIXES:
        title, built = read_docx(name, data)
        document = Read(title, name, built.text, tuple(built.headings))
    elif suffix in HTML_SUFFIXES:
        page = page_text(_decode(name, data))
        document = Read(page.title, name, page.text, page.headings)
    else:
        document = _read_text(name, suffix, _decode(name, data))
    if not document.text.strip():
        raise UnreadableFile(f"{name}: no text found", code="empty_file")
    return Document(doc_id=doc_id, title=document.title or stem, source=document.source,
                    text=document.text, headings=document.headings, pages=document.pages)


def _read_text(name: str, suffix: str, text: str) -> Read:
    """Plain text, Markdown (``#`` headings) or reStructuredText (underlined titles),
    after any front matter."""
    fields, text = _front_matter(text)
    headings: tuple[Heading, ...] = ()
    if suffix in MARKDOWN_SUFFIXES:
        headings = markdown_headings(text)
    elif suffix in RST_SUFFIXES:
        text, headings = rst_text(text)
    first = next((text[h.start : h.end] for h in headings if h.level == 1), "")
    return Read(fields.get("title") or first, fields.get("source") or name, text, headings)


def _decode(name: str, data: bytes) -> str:
    if b"\x00" in data:
        raise UnsupportedFile(f"{name}: binary data, not text", code="binary_file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise UnsupportedFile(f"{name}: not UTF-8 or Windows-1252 text", code="undecodable_text") from error


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    fields = {}
    for line in match.group(1).splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip().lower()] = value.strip().strip("\"'")
    return fields, text[match.end() :]


def _read_pdf(name: str, data: bytes) -> Read:
    """The title, text and page offsets of a PDF. What pypdf says of a damaged file is told with the file's
    name: in the reason it is skipped, or as a warning when its text could be read."""
    import io

    from pypdf import PdfReader

    with _library_notes("pypdf") as notes:
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise UnreadableFile(f"{name}: encrypted PDF")
            pages = [page.extract_text() or "" for page in reader.pages]
            title = (reader.metadata.title if reader.metadata else None) or ""
        except UnreadableFile:
            raise
        except Exception as error:  # pypdf raises many kinds on a damaged file
            said = "; ".join(dict.fromkeys([str(error), *notes]))
            raise UnreadableFile(f"{name}: not a readable PDF ({said})") from error
    for note in dict.fromkeys(notes):
        log.warning("%s: read, but pypdf says: %s", name, note)
    text = BlockText()
    for page in pages:
        text.new_page()
        text.add(page)
    return Read(str(title).strip(), name, text.text, pages=tuple(text.pages))


class _ThreadNotes(logging.Handler):
    """Keeps what a library logs in the calling thread's list, while one is open."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        notes = getattr(self.local, "notes", None)
        if notes is not None:
            notes.append(record.getMessage())


_NOTES = _ThreadNotes()


@contextmanager
def _library_notes(logger: str) -> Iterator[list[str]]:
    """What the library ``logger`` logs in this thread meanwhile, collected instead of printed."""
    library = logging.getLogger(logger)
    if _NOTES not in library.handlers:
        library.addHandler(_NOTES)
        library.propagate = False
    notes: list[str] = []
    _NOTES.local.notes = notes
    try:
        yield notes
    finally:
        _NOTES.local.notes = None
