"""Documents made ready to embed and store: chunked, and each passage's BM25 terms
made, in worker processes.

Chunking and terms are pure Python, a document at a time, and held the interpreter
for most of a bulk ingest's time beside the writes (``python -m bench.stand_in``
profiled); worker processes give them cores of their own. Workers are spawned (a
fresh interpreter: nothing of the model or of threads is copied into them) only once
an ingest has more than one group of documents, so a small ingest starts none.
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
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from qa.chunking import ChunkSettings, chunk_document
from qa.documents import Document, Passage
from qa.lexical import CountedTerms, LexicalSettings, Words, passage_terms

# Most worker processes an ingest starts: one process writes what they prepare, and
# beyond a few it is what they wait for.
MOST_WORKERS = 4
# Groups of documents handed to each worker ahead of the one being written.
AHEAD_PER_WORKER = 2
# How often a worker checks that the process it works for is still there.
PARENT_CHECK_SECONDS = 0.5
log = logging.getLogger(__name__)
# A passage's place, section and page: what a worker sends back of it (its text is the
# document's, which the writer holds already).
_Span = tuple[int, int, str, "int | None"]


@dataclass(frozen=True)
class Prepared:
    """A document, its passages, and their BM25 terms."""

    document: Document
    passages: list[Passage]
    terms: CountedTerms


def preparation_workers() -> int:
    """Worker processes for a bulk ingest: one per core. The writer waits on the disk
    for much of its time: at a million passages on 2 cores, two workers took the whole
    ingest from 161 to 138 s against one (``python -m bench.stand_in``)."""
    return max(1, min(MOST_WORKERS, os.cpu_count() or 1))


def prepared(groups: Iterable[list[Document]], chunking: ChunkSettings, lexical: LexicalSettings,
             workers: int = 0) -> Iterator[list[Prepared]]:
    """Each group of documents prepared, in order. With ``workers``, groups after the
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


def _in_workers(groups: Iterator[list[Document]], chunking: ChunkSettings, lexical: LexicalSettings,
                workers: int) -> Iterator[list[Prepared]]:
    """``groups`` prepared by ``workers`` processes, in order. Where the workers cannot
    go on (one was killed, or they cannot start: spawned, they import the main module,
    which a script without ``if __name__ == "__main__"`` runs again), the rest are
    prepared in this process, with a warning."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_watch_parent,
                               initargs=(os.getpid(),))
    handed: collections.deque[tuple[list[Document], Future]] = collections.deque()
    group: list[Document] | None = None  # the one being handed over
    try:
        for group in groups:
            handed.append((group, pool.submit(_spans_and_terms, group, chunking, lexical)))
            group = None
            if len(handed) >= AHEAD_PER_WORKER * workers:
                yield _unpacked(*handed[0])
                handed.popleft()
        while handed:
            yield _unpacked(*handed[0])
            handed.popleft()
    except BrokenProcessPool as error:
        log.warning("documents are chunked in this process: the worker processes stopped (%s)", error)
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


def prepare(documents: list[Document], chunking: ChunkSettings, lexical: LexicalSettings) -> list[Prepared]:
    """``documents`` chunked, with their passages' terms (in one vocabulary), in this process."""
    prepared, vocabulary = [], Words()
    for document in documents:
        passages = chunk_document(document, chunking)
        terms = CountedTerms.of((passage_terms(p.text, document.title, lexical, p.section) for p in passages),
                                vocabulary)
        prepared.append(Prepared(document, passages, terms))
    return prepared


def _spans_and_terms(documents: list[Document], chunking: ChunkSettings, lexical: LexicalSettings
                     ) -> list[tuple[list[_Span], CountedTerms]]:
    """What a worker sends back of ``prepare``: each passage's span, not its text."""
    return [([(p.start, p.end, p.section, p.page) for p in done.passages], done.terms)
            for done in prepare(documents, chunking, lexical)]


def _unpacked(documents: list[Document], future: Future) -> list[Prepared]:
    """A worker's answer for ``documents`` as ``Prepared`` documents."""
    return [Prepared(document, [Passage(document.doc_id, ordinal, start, end, document.text[start:end], section, page)
                                for ordinal, (start, end, section, page) in enumerate(spans)], terms)
            for document, (spans, terms) in zip(documents, future.result())]
