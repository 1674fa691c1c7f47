"""An index directory: immutable generations, one of them current.

Layout of ``index/<name>/``::

    CURRENT          name of the live generation, replaced atomically
    gen-<stamp>/     manifest.json, documents.sqlite, vectors.faiss, lexical/

A new generation is written under a temporary name, renamed into place, and only
then named in ``CURRENT``; a crash at any point leaves the previous one whole.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from qa.database import DocumentStore, write_database
from qa.documents import Document, Passage
from qa.errors import IndexUnavailable
from qa.lexical import LexicalIndex, LexicalSettings, passage_terms
from qa.vector_store import VectorStore

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
DATABASE = "documents.sqlite"
VECTORS = "vectors.faiss"
LEXICAL = "lexical"


@dataclass(frozen=True)
class Manifest:
    """What a generation holds and how it was built, enough to load it again."""

    format_version: int
    model: str
    dimension: int
    chunking: dict[str, int]
    lexical: dict[str, float | bool]
    documents: int
    passages: int
    created_at: str

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise IndexUnavailable(f"cannot read index manifest {path}: {error}") from error
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexUnavailable(
                f"index {path.parent} has format version {data.get('format_version')!r}; "
                f"this version of qa reads {FORMAT_VERSION}. Rebuild it with `qa ingest --replace`.",
                code="index_format",
            )
        try:
            return cls(**{field: data[field] for field in cls.__dataclass_fields__})
        except KeyError as error:
            raise IndexUnavailable(f"index manifest {path} lacks {error}") from error

    def write(self, path: Path) -> None:
        _write_durably(path, json.dumps(asdict(self), indent=2) + "\n")


@dataclass
class Index:
    """One opened generation: the documents database and both search indexes."""

    root: Path
    manifest: Manifest
    store: DocumentStore
    vectors: VectorStore
    lexical: LexicalIndex

    @classmethod
    def open(cls, root: Path, model: str | None = None) -> "Index":
        """Open the current generation of ``root``; ``model`` must match, if given."""
        generation = current_generation(root)
        if generation is None:
            raise IndexUnavailable(
                f"no index at {root}: build one with `qa ingest PATH --index {root}`",
                code="index_missing",
            )
        manifest = Manifest.read(generation / MANIFEST)
        if model is not None and model != manifest.model:
            raise IndexUnavailable(
                f"index {root} was built with model {manifest.model!r}, not {model!r}; "
                f"query it with that model or rebuild it with `qa ingest --replace`",
                code="index_model",
            )
        index = cls(
            root=root,
            manifest=manifest,
            store=DocumentStore(generation / DATABASE),
            vectors=VectorStore.load(generation / VECTORS),
            lexical=LexicalIndex.load(generation / LEXICAL),
        )
        index._check_counts()
        return index

    def _check_counts(self) -> None:
        documents, passages = self.store.counts()
        found = {
            "manifest": (self.manifest.documents, self.manifest.passages),
            "database": (documents, passages),
            "vectors": (self.manifest.documents, len(self.vectors)),
            "lexical": (self.manifest.documents, len(self.lexical)),
        }
        if len(set(found.values())) != 1 or self.vectors.dimension != self.manifest.dimension:
            raise IndexUnavailable(f"index {self.root} is inconsistent: {found}", code="index_corrupt")


def current_generation(root: Path) -> Path | None:
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    generation = root / name
    if not name or "/" in name or not generation.is_dir():
        raise IndexUnavailable(f"index {root} names a missing generation {name!r}", code="index_corrupt")
    return generation


@contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """Hold the index's writer lock: one ingest at a time."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexUnavailable(f"another process is writing index {root}", code="index_busy") from None
        yield


def publish(
    root: Path,
    manifest: Manifest,
    documents: list[Document],
    passages: list[Passage],
    vectors: np.ndarray,
) -> Path:
    """Write a new generation and make it current; call under ``write_lock``."""
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging = root / f".{name}.tmp"
    staging.mkdir(parents=True)
    write_database(staging / DATABASE, documents, passages)
    VectorStore.build(vectors).save(staging / VECTORS)
    settings = LexicalSettings(**manifest.lexical)
    titles = {d.doc_id: d.title for d in documents}
    lexical = LexicalIndex.build([passage_terms(p.text, titles[p.doc_id], settings) for p in passages], settings)
    lexical.save(staging / LEXICAL)
    manifest.write(staging / MANIFEST)
    _fsync_tree(staging)
    os.rename(staging, root / name)
    _fsync(root)
    _write_durably(root / CURRENT, name + "\n")
    _remove_other_generations(root, keep=name)
    return root / name


def _remove_other_generations(root: Path, keep: str) -> None:
    for entry in root.iterdir():
        if entry.is_dir() and entry.name != keep and entry.name.lstrip(".").startswith("gen-"):
            shutil.rmtree(entry, ignore_errors=True)


def _write_durably(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old or new file, whole."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):
        _fsync(path)
    _fsync(directory)
