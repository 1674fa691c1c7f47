"""Files to a new index generation: read, chunk, embed, publish.

Ingest upserts: documents already in the index whose ids are not being ingested
are carried over with their vectors; a document ingested again is replaced whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from qa.chunking import ChunkSettings, chunk_document
from qa.documents import Document, Passage
from qa.embedding import Embedder
from qa.errors import IndexUnavailable, InvalidInput, UnreadableFile
from qa.index import FORMAT_VERSION, Index, Manifest, current_generation, publish, write_lock
from qa.lexical import LexicalSettings
from qa.readers import find_files, read_document


@dataclass
class IngestReport:
    """What one ingest did."""

    index: Path
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    seconds: float = 0.0


@dataclass
class _Contents:
    documents: list[Document]
    passages: list[Passage]
    vectors: np.ndarray

    @classmethod
    def empty(cls, dimension: int) -> "_Contents":
        return cls([], [], np.zeros((0, dimension), np.float32))


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
) -> IngestReport:
    """Index the files under ``paths`` into ``root``; ``replace`` drops everything else."""
    started = time.perf_counter()
    documents, skipped = read_documents([Path(p) for p in paths], progress)
    if not documents:
        raise InvalidInput("no readable documents to ingest; the index is unchanged", code="nothing_to_ingest")
    report = index_documents(documents, root, embedder, settings, replace, progress)
    report.skipped = skipped
    report.seconds = time.perf_counter() - started
    return report


def index_documents(
    documents: list[Document],
    root: Path,
    embedder: Embedder,
    settings: ChunkSettings = ChunkSettings(),
    replace: bool = False,
    progress: bool = False,
) -> IngestReport:
    """Index ``documents`` (already read) into ``root``, as ``ingest`` does for files."""
    started = time.perf_counter()
    with write_lock(root):
        kept = _Contents.empty(embedder.dimension)
        if not replace:
            kept = _carry_over(root, embedder, settings, {d.doc_id for d in documents})
        passages = [p for d in documents for p in chunk_document(d, settings)]
        vectors = embedder.encode([p.text for p in passages], progress=progress)
        contents = _Contents(kept.documents + documents, kept.passages + passages, np.vstack([kept.vectors, vectors]))
        publish(root, _manifest(embedder, settings, contents), contents.documents, contents.passages, contents.vectors)
    return IngestReport(
        index=root,
        ingested=[d.doc_id for d in documents],
        documents=len(contents.documents),
        passages=len(contents.passages),
        seconds=time.perf_counter() - started,
    )


def _carry_over(root: Path, embedder: Embedder, settings: ChunkSettings, replaced: set[str]) -> _Contents:
    """The current index's documents, passages and vectors, less ``replaced`` ids."""
    empty = _Contents.empty(embedder.dimension)
    if current_generation(root) is None:
        return empty
    try:
        index = Index.open(root, model=embedder.name)
    except IndexUnavailable as error:
        raise IndexUnavailable(f"{error.message}. To start over, ingest with --replace.", code=error.code) from error
    if index.manifest.chunking != settings.as_dict():
        raise IndexUnavailable(
            f"index {root} was chunked with {index.manifest.chunking}; ingest with --replace to re-chunk",
            code="index_chunking",
        )
    try:
        records = [r for r in index.store.passage_rows() if r.passage.doc_id not in replaced]
        documents = [d for d in index.store.documents() if d.doc_id not in replaced]
        vectors = index.vectors.vectors()[[r.row for r in records]] if records else empty.vectors
    finally:
        index.store.close()
    return _Contents(documents, [r.passage for r in records], vectors)


def _manifest(embedder: Embedder, settings: ChunkSettings, contents: _Contents) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION,
        model=embedder.name,
        dimension=embedder.dimension,
        chunking=settings.as_dict(),
        lexical=LexicalSettings().as_dict(),
        documents=len(contents.documents),
        passages=len(contents.passages),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
