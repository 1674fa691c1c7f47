"""Documents into the store: read, chunk, embed, write, and bring the search indexes up.

Ingest upserts by document id. A document whose stored copy is identical is left
alone; any other is replaced whole in one transaction, so a crash at any moment
leaves each document wholly old or wholly new. Large ingests are written in batches,
and running the same ingest again after a crash carries on where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from qa.chunking import ChunkSettings, chunk_document
from qa.database import Revision, checksum
from qa.documents import Document
from qa.embedding import Embedder
from qa.errors import InvalidInput, UnreadableFile
from qa.index import Index
from qa.readers import find_files, read_document

BATCH_PASSAGES = 512


@dataclass
class IngestReport:
    """What one ingest did, and what the index holds after it."""

    index: Path
    stored: dict[str, int] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    seconds: float = 0.0


def index_meta(embedder: Embedder, settings: ChunkSettings) -> dict[str, str]:
    """The settings an index's vectors and passages depend on."""
    return {"model": embedder.name, "dimension": str(embedder.dimension), "chunking": json.dumps(settings.as_dict())}


def read_documents(paths: Iterable[Path], progress: bool = False) -> tuple[list[Document], list[str]]:
    """Readable documents under ``paths``, and a message for each file skipped."""
    paths = list(paths)
    documents: dict[str, Document] = {}
    skipped = [f"{p}: no such file or folder" for p in paths if not p.exists()]
    files = list(find_files(p for p in paths if p.exists()))
    for file, doc_id in tqdm(files, desc="reading", unit="file", disable=not progress):
        try:
            document = read_document(file, doc_id)
        except UnreadableFile as error:
            skipped.append(error.message)
            continue
        if doc_id in documents:
            skipped.append(f"{file}: same id {doc_id!r} as another file in this ingest")
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
) -> IngestReport:
    """Index the files under ``paths`` into ``root``; ``replace`` drops everything else.

    ``doc_id`` names the one file ingested, instead of its path."""
    started = time.perf_counter()
    documents, skipped = read_documents([Path(p) for p in paths], progress)
    if not documents:
        raise InvalidInput("no readable documents to ingest; the index is unchanged", code="nothing_to_ingest")
    if doc_id is not None:
        if len(documents) != 1:
            raise InvalidInput("--id names one document; give exactly one file", code="invalid_id")
        documents = [dataclasses.replace(documents[0], doc_id=doc_id)]
    index = Index.open_for_writing(root, index_meta(embedder, settings), replace)
    try:
        report = store_documents(index, embedder, documents, replace=replace, progress=progress)
        index.save()
    finally:
        index.close()
    report.skipped = skipped
    report.seconds = time.perf_counter() - started
    return report


def store_documents(
    index: Index, embedder: Embedder, documents: list[Document], replace: bool = False, progress: bool = False
) -> IngestReport:
    """Upsert ``documents`` (already read) into ``index``; ``replace`` deletes all others."""
    started = time.perf_counter()
    settings = ChunkSettings(**index.chunking)
    stored = index.store.checksums(d.doc_id for d in documents)
    changed = [d for d in documents if stored.get(d.doc_id) != checksum(d)]
    unchanged = {d.doc_id for d in documents} - {d.doc_id for d in changed}
    report = IngestReport(index=index.root, unchanged=sorted(unchanged))
    with tqdm(total=len(changed), desc="embedding", unit="doc", disable=not progress) as bar:
        for batch in _batches(changed, settings):
            vectors = embedder.encode([p.text for _, passages in batch for p in passages])
            revisions, first = [], 0
            for document, passages in batch:
                revisions.append(Revision(document, passages, vectors[first : first + len(passages)]))
                first += len(passages)
            index.store.write(revisions)
            report.stored.update((r.document.doc_id, len(r.passages)) for r in revisions)
            bar.update(len(batch))
    if replace:
        index.store.write(keep_only={d.doc_id for d in documents})
    snapshot = index.refresh()
    report.documents, report.passages = snapshot.documents, len(snapshot)
    report.seconds = time.perf_counter() - started
    return report


def delete_documents(index: Index, doc_ids: list[str]) -> list[str]:
    """Remove ``doc_ids`` from ``index``; returns those it held."""
    _, deleted = index.store.write(delete=doc_ids)
    index.refresh()
    return deleted


def _batches(documents: list[Document], settings: ChunkSettings) -> Iterator[list[tuple[Document, list]]]:
    """Documents with their passages, in groups of about ``BATCH_PASSAGES`` passages."""
    batch, size = [], 0
    for document in documents:
        passages = chunk_document(document, settings)
        batch.append((document, passages))
        size += len(passages)
        if size >= BATCH_PASSAGES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
