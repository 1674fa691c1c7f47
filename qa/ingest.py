"""Documents into the store: read, chunk, embed, write, and bring the search indexes up.

Ingest upserts by document id. A document whose stored copy is identical is left
alone; any other is replaced whole in one transaction, so a crash at any moment
leaves each document wholly old or wholly new. Large ingests are written in batches,
and running the same ingest again after a crash carries on where it stopped. A
rebuild with another model is staged whole and swapped in at the end.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from qa.chunking import ChunkSettings
from qa.database import FORMAT_VERSION, Revision
from qa.documents import Document
from qa.embedding import Embedder
from qa.engine import Engine, EngineState
from qa.engines import EngineChoice, open_engine_for_writing
from qa.errors import DocumentExists, InvalidInput, UnreadableFile
from qa.index import settings_differ
from qa.preparing import Outcome, Prepared, Source, Unchanged, Unreadable, Work, preparation_workers, prepared
from qa.readers import FoundFile, find_files, read_document

BATCH_PASSAGES = 512
# Passages stored in one write (one transaction, one fsync) by a bulk ingest.
WRITE_PASSAGES = 4096
# Batches of passages read and chunked ahead of the one being embedded.
PREPARED_AHEAD = 2
T = TypeVar("T")
# Documents read, compared with their stored copies (one query) and chunked at a time (by
# a worker process, in a bulk ingest): at most so many, or so much text or so many bytes
# of files (about 300 passages).
PREPARE_DOCUMENTS = 256
PREPARE_CHARACTERS = 256_000
# Objects made and not yet freed before Python's cyclic garbage collector looks, while a
# bulk ingest runs (Python's default: 700). An ingest makes a few objects per file and
# per passage, nearly all freed by their reference counts; looking every 700 took the
# writing process about 0.7 s of a 12 s ingest of 57,000 one-paragraph files, and 0.04 s
# at this threshold (timed with gc.callbacks).
BULK_COLLECTION_THRESHOLD = 50_000


@dataclass
class IngestReport:
    """What one ingest did, and what the index holds after it. Documents are counted,
    not listed: the ids of 570,000 files, held to the end, left a bulk ingest about
    100 MB larger."""

    index: str
    stored: int = 0  # documents written: added, or replacing their stored copies
    added: int = 0  # of those, ids not stored before
    stored_passages: int = 0  # the passages of the documents written
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    seconds: float = 0.0


def index_meta(embedder: Embedder, settings: ChunkSettings) -> dict[str, str]:
    """The settings an index's vectors and passages depend on, and the store format they are kept in."""
    return {"format_version": str(FORMAT_VERSION), "model": embedder.name, "dimension": str(embedder.dimension),
            "chunking": json.dumps(settings.as_dict())}


def read_documents(
    paths: Iterable[Path], progress: bool = False, on_skip: Callable[[str], None] | None = None
) -> Iterator[Document]:
    """The readable documents under ``paths``, read in this process one file at a time as
    they are asked for; ``on_skip`` hears why each other file was skipped, as it is found."""
    say = on_skip or (lambda message: None)
    for found in files_to_read(paths, say, progress):
        try:
            yield read_document(found.path, found.doc_id)
        except UnreadableFile as error:
            say(error.message)


def files_to_read(paths: Iterable[Path], say: Callable[[str], None], progress: bool = False) -> Iterator[FoundFile]:
    """The files under ``paths`` of a readable type, found by name only, as they are
    asked for, each id once; ``say`` hears of each path that does not exist, each file
    of another type and each id found again. ``progress`` shows a bar of files found.

    Ids are remembered only where two paths could give the same one: two folders of
    one name, or two files (the ids under one folder are its files' distinct paths)."""
    paths = list(paths)
    for path in paths:
        if not path.exists():
            say(f"{path}: no such file or folder")
    paths = [path for path in paths if path.exists()]
    total = sum(1 for found in find_files(paths) if found.supported) if progress else None
    roots = collections.Counter(f"{path.resolve().name}/" if path.is_dir() else "" for path in paths)
    seen: set[str] = set()
    for found in tqdm(find_files(paths), desc="ingesting", unit="file", total=total, disable=not progress):
        if not found.supported:
            say(f"{found.path}: unsupported file type {found.suffix or '(none)'}")
        elif found.doc_id in seen:
            say(f"{found.path}: same id {found.doc_id!r} as another file in this ingest")
        else:
            if roots[_id_root(found.doc_id)] > 1:
                seen.add(found.doc_id)
            yield found


def _id_root(doc_id: str) -> str:
    """The folder's name and slash that an id (as ``qa.readers.find_files`` gives it)
    begins with, for a file found under a named folder; nothing for a file named
    directly, whose id is its name."""
    folder, slash, _ = doc_id.partition("/")
    return folder + slash if slash else ""


def ingest(
    paths: Iterable[Path],
    choice: EngineChoice,
    embedder: Embedder,
    settings: ChunkSettings = ChunkSettings(),
    replace: bool = False,
    progress: bool = False,
    doc_id: str | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> IngestReport:
    """Index the files under ``paths`` into the index ``choice`` names; ``replace`` drops
    everything else.

    Files are read, chunked, embedded and written a batch at a time, so memory does
    not grow with the corpus. ``doc_id`` names the one file ingested, instead of its
    path. An index built with other settings is rebuilt whole with ``replace`` (and
    refused without it), its old contents served until the new ones are complete."""
    started = time.perf_counter()
    skipped: list[str] = []

    def skip(message: str) -> None:
        skipped.append(message)
        if on_skip is not None:
            on_skip(message)

    files = files_to_read([Path(p) for p in paths], skip, progress)
    first = _first_readable(files, skip)
    if first is None:
        reason = f" ({len(skipped)} skipped: {skipped[0]}{', ...' if len(skipped) > 1 else ''})" if skipped else ""
        raise InvalidInput(f"no readable documents to ingest{reason}; the index is unchanged",
                           code="nothing_to_ingest")
    if doc_id is not None:
        if next(files, None) is not None:
            raise InvalidInput("--id names one document; give exactly one file", code="invalid_id")
        first = dataclasses.replace(first, doc_id=doc_id)
    everything: Iterator[Source] = itertools.chain([first], files)
    meta = index_meta(embedder, settings)
    engine = open_engine_for_writing(choice, meta, replace, bulk=True)
    with _collected_rarely():
        try:
            workers = preparation_workers()
            if settings_differ(engine.meta(), meta):
                report = rebuild_documents(engine, embedder, everything, meta, workers, skip)
            else:
                report = store_documents(engine, embedder, everything, replace=replace, workers=workers, on_skip=skip)
            engine.compact()
            engine.save()
        finally:
            engine.close()
    report.skipped = skipped
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _collected_rarely() -> Iterator[None]:
    """Python's cyclic garbage collector run every ``BULK_COLLECTION_THRESHOLD`` objects
    meanwhile, not every 700."""
    thresholds = gc.get_threshold()
    gc.set_threshold(BULK_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _first_readable(files: Iterator[FoundFile], say: Callable[[str], None]) -> Document | None:
    """The first of ``files`` that reads, read here; ``say`` hears why each before it did not."""
    for found in files:
        try:
            return read_document(found.path, found.doc_id)
        except UnreadableFile as error:
            say(error.message)
    return None


def store_documents(
    engine: Engine, embedder: Embedder, documents: Iterable[Source], replace: bool = False, progress: bool = False,
    create: bool = False, workers: int = 0, on_skip: Callable[[str], None] | None = None,
) -> IngestReport:
    """Upsert ``documents`` (or files, read into documents as they come) into ``engine``,
    a batch at a time; ``replace`` deletes all others.

    A document identical to its stored copy is left alone; a file that cannot be read
    is skipped, and ``on_skip`` hears why. With ``create``, a document whose id is
    stored is refused (``DocumentExists``), checked again in the transaction that
    writes it, so that of two racing creates one wins. With ``workers``, documents are
    read and chunked in that many worker processes (``qa.preparing``)."""
    started = time.perf_counter()
    settings = ChunkSettings(**json.loads(engine.meta()["chunking"]))
    report = IngestReport(index=engine.location)
    seen: set[str] | None = set() if replace else None  # the ids to keep
    total = len(documents) if isinstance(documents, Sized) else None
    with tqdm(total=total, desc="embedding", unit="doc", disable=not progress) as bar:
        work = _looked_up(engine, _groups(documents, PREPARE_DOCUMENTS, PREPARE_CHARACTERS), create)
        changed = _sorted_out(prepared(work, settings, engine.lexical, workers), report, seen, on_skip, bar)
        # Embedding runs a batch or two ahead of the writes, as reading and chunking run ahead of it.
        write_batches(engine, _ahead(_revisions(changed, embedder)), report, create)
    if seen is not None:
        engine.write(keep_only=seen)
    return _finished(report, engine.refresh(), started)


def write_batches(engine: Engine, batches: Iterable[list[Revision]], report: IngestReport,
                  create: bool = False) -> None:
    """Write the batches of revisions about ``WRITE_PASSAGES`` passages at a time, one
    write each, noting in ``report`` what each stored."""
    for revisions in _joined(batches, WRITE_PASSAGES):
        written = engine.write(revisions, create=create)
        report.stored += len(revisions)
        report.stored_passages += sum(len(r.passages) for r in revisions)
        report.added += sum(r.document.doc_id not in written.replaced for r in revisions)


def _joined(batches: Iterable[list[Revision]], passages: int) -> Iterator[list[Revision]]:
    """``batches`` joined in order until each holds ``passages`` passages (the last fewer)."""
    joined: list[Revision] = []
    size = 0
    for revisions in batches:
        joined += revisions
        size += sum(len(r.passages) for r in revisions)
        if size >= passages:
            yield joined
            joined, size = [], 0
    if joined:
        yield joined


def _looked_up(engine: Engine, groups: Iterable[list[Source]], create: bool) -> Iterator[Work]:
    """Each group with the stored checksums of its ids; with ``create``, one stored is refused."""
    for sources in groups:
        stored = engine.checksums([source.doc_id for source in sources])
        if create and stored:
            raise DocumentExists(next(iter(stored)))
        yield Work(sources, stored)


def _sorted_out(outcomes: Iterable[list[Outcome]], report: IngestReport, seen: set[str] | None,
                on_skip: Callable[[str], None] | None, bar: tqdm | None = None) -> Iterator[Prepared]:
    """The prepared documents of ``outcomes``; the unchanged are counted in ``report``,
    and the unreadable noted there and told to ``on_skip``. The id of each document read
    goes into ``seen``, if given."""
    for outcome in itertools.chain.from_iterable(outcomes):
        if isinstance(outcome, Unreadable):
            report.skipped.append(outcome.message)
            if on_skip is not None:
                on_skip(outcome.message)
            continue
        if seen is not None:
            seen.add(outcome.doc_id if isinstance(outcome, Unchanged) else outcome.document.doc_id)
        if isinstance(outcome, Unchanged):
            report.unchanged += 1
        else:
            yield outcome
        if bar is not None:
            bar.update()


def _groups(sources: Iterable[Source], most: int, size_most: int) -> Iterator[list[Source]]:
    """``sources`` as they come, in groups of at most ``most`` and about ``size_most``
    characters of text (or bytes of files)."""
    group: list[Source] = []
    size = 0
    for source in sources:
        group.append(source)
        size += len(source.text) if isinstance(source, Document) else source.size
        if len(group) >= most or size >= size_most:
            yield group
            group, size = [], 0
    if group:
        yield group


def rebuild_documents(
    engine: Engine, embedder: Embedder, documents: Iterable[Source], meta: dict[str, str], workers: int = 0,
    on_skip: Callable[[str], None] | None = None,
) -> IngestReport:
    """Make ``documents`` (or files, read as they come) the whole of ``engine`` with the
    settings ``meta`` (another model or chunking): every one is embedded again and
    swapped in at the end; ``on_skip`` hears why each file that cannot be read was skipped."""
    started = time.perf_counter()
    report = IngestReport(index=engine.location)
    settings = ChunkSettings(**json.loads(meta["chunking"]))
    work = (Work(group) for group in _groups(documents, PREPARE_DOCUMENTS, PREPARE_CHARACTERS))
    changed = _sorted_out(prepared(work, settings, engine.lexical, workers), report, None, on_skip)

    def batches() -> Iterator[list[Revision]]:
        for revisions in _revisions(changed, embedder):
            report.stored += len(revisions)
            report.added += len(revisions)
            report.stored_passages += sum(len(r.passages) for r in revisions)
            yield revisions

    return _finished(report, engine.rebuild(meta, batches()), started)


def delete_documents(engine: Engine, doc_ids: list[str]) -> list[str]:
    """Remove ``doc_ids`` from ``engine``; returns those it held."""
    deleted = engine.write(delete=doc_ids).deleted
    engine.refresh()
    return deleted


def _finished(report: IngestReport, state: EngineState, started: float) -> IngestReport:
    report.documents, report.passages = state.documents, state.passages
    report.seconds = time.perf_counter() - started
    return report


def _revisions(documents: Iterable[Prepared], embedder: Embedder) -> Iterator[list[Revision]]:
    """The prepared ``documents`` embedded, in batches of about ``BATCH_PASSAGES``
    passages. The next ones are read and chunked (in worker processes, if any) in a
    thread while one is embedded: the tokenizer and the model let go of the
    interpreter, so they share the cores."""
    for batch in _ahead(_batches(documents)):
        vectors = embedder.encode([p.text for done in batch for p in done.passages])
        revisions, first = [], 0
        for done in batch:
            revisions.append(Revision(done.document, done.passages, vectors[first : first + len(done.passages)],
                                      done.terms))
            first += len(done.passages)
        yield revisions


def _ahead(items: Iterator[T], depth: int = PREPARED_AHEAD) -> Iterator[T]:
    """``items`` as they come, made up to ``depth`` ahead in a thread; what it raises is
    raised here, in turn. Stopping early stops the thread at its next item."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def make() -> None:
        try:
            for item in items:
                while not stopped.is_set():
                    try:
                        handoff.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stopped.is_set():
                    return
            handoff.put(("done", None))
        except BaseException as error:  # handed over to be raised in the caller's thread
            handoff.put(("error", error))

    maker = threading.Thread(target=make, name="ingest-reader", daemon=True)
    maker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stopped.set()
        while maker.is_alive():  # let it see the flag, even when blocked on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                maker.join(timeout=0.1)


def _batches(documents: Iterable[Prepared]) -> Iterator[list[Prepared]]:
    """The prepared ``documents``, in batches of about ``BATCH_PASSAGES`` passages."""
    batch: list[Prepared] = []
    size = 0
    for done in documents:
        batch.append(done)
        size += len(done.passages)
        if size >= BATCH_PASSAGES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
