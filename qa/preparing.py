"""Documents made ready to embed and store: read from their files, compared with their
stored copies, chunked, and each passage's BM25 terms made, in worker processes.

Reading, chunking and terms are pure Python, a document at a time, and held the
interpreter for most of a bulk ingest's time beside the writes (``python -m
bench.stand_in`` profiled); worker processes give them cores of their own. Workers
are spawned (a fresh interpreter: nothing of the model or of threads is copied into
them) only once an ingest has more than one group of documents, so a small ingest
starts none.
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import cast

from qa.chunking import ChunkSettings, chunk_document
from qa.documents import Document, Passage
from qa.errors import UnreadableFile
from qa.lexical import CountedTerms, LexicalSettings, passage_terms
from qa.readers import FoundFile, read_document

# Most worker processes an ingest starts: one process writes what they prepare, and
# beyond a few it is what they wait for.
MOST_WORKERS = 4
# Groups of documents handed to each worker ahead of the one being written.
AHEAD_PER_WORKER = 2
# Files a process reads at once: reads wait on the disk when a file is not in the page
# cache, and threads let them overlap.
READ_THREADS = 8
# How often a worker checks that the process it works for is still there.
PARENT_CHECK_SECONDS = 0.5
log = logging.getLogger(__name__)
# A passage's place, section and page: what a worker sends back of it (its text is the
# document's, which the writer holds or is sent once).
_Span = tuple[int, int, str, "int | None"]
# What a worker sends back of a prepared document: the document only if it read it.
_Sent = tuple["Document | None", list[_Span]]
# What a worker sends back of a group: each source's outcome, and all their terms.
_Answer = tuple[list["Unchanged | Unreadable | _Sent"], CountedTerms]
# A document, or a file to read into one.
Source = Document | FoundFile


@dataclass(frozen=True)
class Work:
    """Sources to prepare together, and the stored checksum of each of their ids that
    is stored: a document that matches its own comes back ``Unchanged``."""

    sources: list[Source]
    stored: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """A document, its passages, and their BM25 terms."""

    document: Document
    passages: list[Passage]
    terms: CountedTerms


@dataclass(frozen=True)
class Unchanged:
    """A document identical to its stored copy: nothing to write."""

    doc_id: str


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read into a document, and why."""

    doc_id: str
    message: str


Outcome = Prepared | Unchanged | Unreadable


def preparation_workers() -> int:
    """Worker processes for a bulk ingest: one per core. The writer waits on the disk
    for much of its time: at a million passages on 2 cores, two workers took the whole
    ingest from 161 to 138 s against one (``python -m bench.stand_in``)."""
    return max(1, min(MOST_WORKERS, os.cpu_count() or 1))


def prepared(groups: Iterable[Work], chunking: ChunkSettings, lexical: LexicalSettings,
             workers: int = 0) -> Iterator[list[Outcome]]:
    """Each group's outcomes, a source each, in order. With ``workers``, groups after the
    first are prepared in that many worker processes, up to ``AHEAD_PER_WORKER`` groups
    each ahead of the one asked for; what a worker raises is raised here, in turn."""
    groups = iter(groups)
    first = next(groups, None)
    if first is None:
        return
    yield prepare(first, chunking, lexical)
    second = next(groups, None) if workers else None
    if second is not None:
        yield from _in_workers(itertools.chain([second], groups), chunking, lexical, workers)
    else:
        yield from (prepare(group, chunking, lexical) for group in groups)


def _in_workers(groups: Iterator[Work], chunking: ChunkSettings, lexical: LexicalSettings,
                workers: int) -> Iterator[list[Outcome]]:
    """``groups`` prepared by ``workers`` processes, in order. Where the workers cannot
    go on (one was killed, or they cannot start: spawned, they import the main module,
    which a script without ``if __name__ == "__main__"`` runs again), the rest are
    prepared in this process, with a warning."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_watch_parent,
                               initargs=(os.getpid(),))
    handed: collections.deque[tuple[Work, Future]] = collections.deque()
    group: Work | None = None  # the one being handed over
    try:
        for group in groups:
            handed.append((group, pool.submit(_compact, group, chunking, lexical)))
            group = None
            if len(handed) >= AHEAD_PER_WORKER * workers:
                yield _unpacked(*handed[0])
                handed.popleft()
        while handed:
            yield _unpacked(*handed[0])
            handed.popleft()
    except BrokenProcessPool as error:
        log.warning("documents are prepared in this process: the worker processes stopped (%s)", error)
        left = [held for held, _ in handed] + ([group] if group is not None else [])
        yield from (prepare(held, chunking, lexical) for held in itertools.chain(left, groups))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _watch_parent(parent: int) -> None:
    """In a worker: end it once ``parent`` is gone (killed, say), rather than wait on
    its queue for good."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="qa-parent-watch", daemon=True).start()


def prepare(work: Work, chunking: ChunkSettings, lexical: LexicalSettings) -> list[Outcome]:
    """Each source of ``work`` read (a file), compared with its stored checksum, and
    chunked, with its passages' terms (in one vocabulary), in this process."""
    return _outcomes(*_prepared(work, chunking, lexical))


def _prepared(work: Work, chunking: ChunkSettings, lexical: LexicalSettings
              ) -> tuple[list[Document | Unchanged | Unreadable], list[list[Passage]], CountedTerms]:
    """Each source read and compared, or why not; each one's passages (none for those
    not to write); the terms of all the passages, counted at once."""
    found = [_compared(source, work.stored) for source in _read(work.sources)]
    passages = [chunk_document(document, chunking) if isinstance(document, Document) else [] for document in found]
    terms = CountedTerms.of(passage_terms(passage.text, document.title, lexical, passage.section)
                            for document, chunked in zip(found, passages) if isinstance(document, Document)
                            for passage in chunked)
    return found, passages, terms


def _compared(read: Document | Unreadable, stored: dict[str, str]) -> Document | Unchanged | Unreadable:
    """``read``, or ``Unchanged`` where it matches its stored checksum."""
    if isinstance(read, Document) and read.doc_id in stored and stored[read.doc_id] == read.checksum:
        return Unchanged(read.doc_id)
    return read


def _outcomes(found: list[Document | Unchanged | Unreadable], passages: list[list[Passage]],
              terms: CountedTerms) -> list[Outcome]:
    """Each source's outcome, the group's ``terms`` split among the documents."""
    runs = terms.split([len(chunked) for chunked in passages])
    return [Prepared(document, chunked, run) if isinstance(document, Document) else document
            for document, chunked, run in zip(found, passages, runs)]


def _read(sources: list[Source]) -> Iterator[Document | Unreadable]:
    """Each source as a document, in order."""
    read = iter(_read_all([source for source in sources if isinstance(source, FoundFile)]))
    for source in sources:
        yield next(read) if isinstance(source, FoundFile) else source


def _read_all(files: list[FoundFile]) -> list[Document | Unreadable]:
    """``files`` read, in order, ``READ_THREADS`` at a time: each thread reads every
    ``READ_THREADS``-th one (a task per file cost more than reading a small one from
    the page cache)."""
    shares = min(READ_THREADS, len(files))
    if shares < 2:
        return _read_files(files)
    read = list(_readers().map(_read_files, [files[first::shares] for first in range(shares)]))
    return [read[n % shares][n // shares] for n in range(len(files))]  # file n is in share n % shares


def _read_files(files: list[FoundFile]) -> list[Document | Unreadable]:
    """``files`` read in turn, in one of this process's reading threads."""
    return [_read_file(found) for found in files]


def _read_file(found: FoundFile) -> Document | Unreadable:
    try:
        return read_document(found.path, found.doc_id)
    except UnreadableFile as error:
        return Unreadable(found.doc_id, error.message)


_READERS: ThreadPoolExecutor | None = None


def _readers() -> ThreadPoolExecutor:
    """This process's threads that read files, started when first needed."""
    global _READERS
    if _READERS is None:
        _READERS = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="qa-read")
    return _READERS


def _compact(work: Work, chunking: ChunkSettings, lexical: LexicalSettings) -> _Answer:
    """What a worker sends back of ``_prepared``: of each prepared document, the
    document only if it read it (the caller holds the others), and each passage's span,
    not its text; the group's terms once."""
    found, passages, terms = _prepared(work, chunking, lexical)
    return [(_sent(source, document), [(p.start, p.end, p.section, p.page) for p in chunked])
            if isinstance(document, Document) else document
            for source, document, chunked in zip(work.sources, found, passages)], terms


def _sent(source: Source, document: Document) -> Document | None:
    """The document a worker sends back for ``source``: one it read, its checksum made
    (a cached property, pickled with it: the writer stores it), else none."""
    if isinstance(source, Document):
        return None
    document.checksum  # noqa: B018 (made here, in the worker)
    return document


def _unpacked(work: Work, future: Future) -> list[Outcome]:
    """A worker's answer for ``work`` as outcomes."""
    answers, terms = cast(_Answer, future.result())
    found: list[Document | Unchanged | Unreadable] = []
    passages: list[list[Passage]] = []
    for source, answer in zip(work.sources, answers):
        document, chunked = _document(source, answer)
        found.append(document)
        passages.append(chunked)
    return _outcomes(found, passages, terms)


def _document(source: Source, answer: Unchanged | Unreadable | _Sent) -> tuple[Document | Unchanged | Unreadable,
                                                                              list[Passage]]:
    """One source's document and passages, from what a worker sent back of it."""
    if not isinstance(answer, tuple):
        return answer, []
    read, spans = answer
    document = read if read is not None else cast(Document, source)  # sent only when the worker read it
    return document, [Passage(document.doc_id, ordinal, start, end, document.text[start:end], section, page)
                      for ordinal, (start, end, section, page) in enumerate(spans)]
