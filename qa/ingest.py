"""Documents into the store: read, chunk, embed, write, and bring the search indexes up.

Ingest upserts by document id. A document whose stored copy is identical is left
alone; any other is replaced whole in one transaction, so a crash at any moment
leaves each document wholly old or wholly new. Large ingests are written in batches,
and running the same ingest again after a crash carries on where it stopped. A
rebuild with another model is staged whole and swapped in at the end.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from qa.chunking import ChunkSettings, chunk_document
from qa.database import Revision, checksum
from qa.documents import Document, Passage
from qa.embedding import Embedder
from qa.errors import DocumentExists, InvalidInput, UnreadableFile
from qa.index import Index, Snapshot, settings_differ
from qa.readers import find_files, read_document, unsupported_files

BATCH_PASSAGES = 512


@dataclass
class IngestReport:
    """What one ingest did, and what the index holds after it."""

    index: Path
    stored: dict[str, int] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    seconds: float = 0.0


def index_meta(embedder: Embedder, settings: ChunkSettings) -> dict[str, str]:
    """The settings an index's vectors and passages depend on."""
    return {"model": embedder.name, "dimension": str(embedder.dimension), "chunking": json.dumps(settings.as_dict())}


def read_documents(
    paths: Iterable[Path], progress: bool = False, on_skip: Callable[[str], None] | None = None
) -> tuple[list[Document], list[str]]:
    """Readable documents under ``paths``, and why each other file was skipped.

    ``on_skip`` hears each of those reasons as soon as it is known."""
    paths = list(paths)
    documents: dict[str, Document] = {}
    skipped: list[str] = []

    def skip(message: str) -> None:
        skipped.append(message)
        if on_skip is not None:
            on_skip(message)

    for path in paths:
        if not path.exists():
            skip(f"{path}: no such file or folder")
    for file in unsupported_files(p for p in paths if p.is_dir()):
        skip(f"{file}: unsupported file type {file.suffix or '(none)'}")
    files = list(find_files(p for p in paths if p.exists()))
    for file, doc_id in tqdm(files, desc="reading", unit="file", disable=not progress):
        try:
            document = read_document(file, doc_id)
        except UnreadableFile as error:
            skip(error.message)
            continue
        if doc_id in documents:
            skip(f"{file}: same id {doc_id!r} as another file in this ingest")
            continue
        documents[doc_id] = document
    return list(documents.values()), skipped


def ingest(
    paths: Iterable[Path],
    root: Path,
    embedder: Embedder,
    settings: ChunkSettings = ChunkSettings(),
    replace: bool = False,
    progress: bool = False,
    doc_id: str | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> IngestReport:
    """Index the files under ``paths`` into ``root``; ``replace`` drops everything else.

    ``doc_id`` names the one file ingested, instead of its path. An index built
    with other settings is rebuilt whole with ``replace`` (and refused without it),
    its old contents served until the new ones are complete."""
    started = time.perf_counter()
    documents, skipped = read_documents([Path(p) for p in paths], progress, on_skip)
    if not documents:
        reason = f" ({len(skipped)} skipped: {skipped[0]}{', ...' if len(skipped) > 1 else ''})" if skipped else ""
        raise InvalidInput(f"no readable documents to ingest{reason}; the index is unchanged",
                           code="nothing_to_ingest")
    if doc_id is not None:
        if len(documents) != 1:
            raise InvalidInput("--id names one document; give exactly one file", code="invalid_id")
        documents = [dataclasses.replace(documents[0], doc_id=doc_id)]
    meta = index_meta(embedder, settings)
    index = Index.open_for_writing(root, meta, replace)
    try:
        if settings_differ(index.store.meta(), meta):
            report = rebuild_documents(index, embedder, documents, meta, progress)
        else:
            report = store_documents(index, embedder, documents, replace=replace, progress=progress)
        index.save()
    finally:
        index.close()
    report.skipped = skipped
    report.seconds = time.perf_counter() - started
    return report


def store_documents(
    index: Index, embedder: Embedder, documents: list[Document], replace: bool = False, progress: bool = False,
    create: bool = False,
) -> IngestReport:
    """Upsert ``documents`` (already read) into ``index``; ``replace`` deletes all others.

    With ``create``, a document whose id is stored is refused (``DocumentExists``), checked
    again in the transaction that writes it, so that of two racing creates one wins."""
    started = time.perf_counter()
    settings = ChunkSettings(**index.chunking)
    stored = index.store.checksums(d.doc_id for d in documents)
    if create and stored:
        raise DocumentExists(next(iter(stored)))
    changed = [d for d in documents if stored.get(d.doc_id) != checksum(d)]
    unchanged = {d.doc_id for d in documents} - {d.doc_id for d in changed}
    report = IngestReport(index=index.root, unchanged=sorted(unchanged))
    for revisions in _revisions(changed, embedder, settings, progress):
        written = index.write(revisions, create=create)
        report.stored.update((r.document.doc_id, len(r.passages)) for r in revisions)
        report.added += [r.document.doc_id for r in revisions if r.document.doc_id not in written.replaced]
    if replace:
        index.write(keep_only={d.doc_id for d in documents})
    return _finished(report, index.refresh(), started)


def rebuild_documents(
    index: Index, embedder: Embedder, documents: list[Document], meta: dict[str, str], progress: bool = False
) -> IngestReport:
    """Make ``documents`` the whole of ``index`` with the settings ``meta`` (another
    model or chunking): every one is embedded again and swapped in at the end."""
    started = time.perf_counter()
    report = IngestReport(index=index.root, added=[d.doc_id for d in documents])
    settings = ChunkSettings(**json.loads(meta["chunking"]))

    def batches() -> Iterator[list[Revision]]:
        for revisions in _revisions(documents, embedder, settings, progress):
            report.stored.update((r.document.doc_id, len(r.passages)) for r in revisions)
            yield revisions

    return _finished(report, index.rebuild(meta, batches()), started)


def delete_documents(index: Index, doc_ids: list[str]) -> list[str]:
    """Remove ``doc_ids`` from ``index``; returns those it held."""
    deleted = index.write(delete=doc_ids).deleted
    index.refresh()
    return deleted


def _finished(report: IngestReport, snapshot: Snapshot, started: float) -> IngestReport:
    report.documents, report.passages = snapshot.documents, len(snapshot)
    report.seconds = time.perf_counter() - started
    return report


def _revisions(
    documents: list[Document], embedder: Embedder, settings: ChunkSettings, progress: bool
) -> Iterator[list[Revision]]:
    """``documents`` chunked and embedded, in groups of about ``BATCH_PASSAGES`` passages."""
    with tqdm(total=len(documents), desc="embedding", unit="doc", disable=not progress) as bar:
        for batch in _batches(documents, settings):
            vectors = embedder.encode([p.text for _, passages in batch for p in passages])
            revisions, first = [], 0
            for document, passages in batch:
                revisions.append(Revision(document, passages, vectors[first : first + len(passages)]))
                first += len(passages)
            yield revisions
            bar.update(len(batch))


def _batches(documents: list[Document], settings: ChunkSettings) -> Iterator[list[tuple[Document, list[Passage]]]]:
    """Documents with their passages, in groups of about ``BATCH_PASSAGES`` passages."""
    batch: list[tuple[Document, list[Passage]]] = []
    size = 0
    for document in documents:
        passages = chunk_document(document, settings)
        batch.append((document, passages))
        size += len(passages)
        if size >= BATCH_PASSAGES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
