"""An index directory: the document store and the search indexes derived from it.

Layout of ``index/<name>/``::

    documents.sqlite        documents, passages and vectors: the source of truth
    derived/gen-<N>/        FAISS and BM25 as of store generation N, with snapshot.json

The derived files only save time at start-up. Whatever they hold is brought up to
the store's generation by comparing passage rows, and rebuilt from the store when
missing, damaged or built with other settings. A search takes one ``Snapshot`` and
uses it throughout, so a write that lands meanwhile is seen whole or not at all.

When another process rebuilds the store (``qa ingest --replace`` with other
settings), an open index follows it if the model is the same, rebuilding its
snapshot in the background; with another model it refuses every search and write
(``index_settings``), since its questions would be encoded by the wrong model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.database import FORMAT_VERSION, DocumentStore, LiveRows, Revision, WriteResult, initialise_store, new_store_id
from qa.errors import IndexUnavailable
from qa.lexical import LexicalIndex, LexicalSettings, passage_terms
from qa.memory import release_freed_memory
from qa.vector_store import VectorStore

DATABASE = "documents.sqlite"
DERIVED = "derived"
SNAPSHOT = "snapshot.json"
# How the files of a derived snapshot are laid out; one written otherwise is rebuilt and replaced.
DERIVED_FORMAT = 2
# How often searches ask the store whether another process has written: a write
# elsewhere shows up this much later at most, and a search mostly skips the query.
CHECK_EVERY_SECONDS = 0.1
# Passages read from the store at a time while a snapshot takes in new ones.
READ_ROWS = 10_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """Search indexes of one store generation; position ``i`` in both is passage ``rows[i]``.

    ``rows`` ascend: rows are never reused, and a snapshot takes in new ones after the
    ones it keeps (a rebuild, whose rows become live all at once, starts a new snapshot)."""

    store_id: str
    generation: int
    rows: np.ndarray
    vectors: VectorStore
    lexical: LexicalIndex
    documents: int

    @classmethod
    def empty(cls, store_id: str, dimension: int, settings: LexicalSettings) -> Snapshot:
        return cls(store_id, 0, np.zeros(0, np.int64), VectorStore.build(np.zeros((0, dimension), np.float32)),
                   LexicalIndex.empty(settings), 0)

    def __len__(self) -> int:
        return len(self.rows)

    def updated(self, live: LiveRows, store: DocumentStore) -> Snapshot:
        """This snapshot brought to ``live``: rows gone are dropped, new rows read from the
        store, ``READ_ROWS`` at a time, so that their texts are never all in memory at once."""
        keep = np.isin(self.rows, live.rows)
        new = np.setdiff1d(live.rows, self.rows, assume_unique=True)
        found: list[int] = []
        added = np.empty((len(new), self.vectors.dimension), np.float32)

        def new_terms() -> Iterator[list[str]]:
            """Each new passage's BM25 terms; its row and vector go to ``found`` and ``added``."""
            for first in range(0, len(new), READ_ROWS):
                records = store.passages(new[first : first + READ_ROWS])
                vectors = store.vectors(list(records), self.vectors.dimension)
                for row in new[first : first + READ_ROWS].tolist():
                    record = records.get(row)
                    if record is not None and row in vectors:  # rows purged meanwhile are left out
                        added[len(found)] = vectors[row]
                        found.append(row)
                        passage = record.passage
                        yield passage_terms(passage.text, record.title, self.lexical.settings, passage.section)

        lexical = self.lexical.updated(keep, new_terms())
        return Snapshot(
            store_id=self.store_id,
            generation=live.generation,
            rows=np.concatenate([self.rows[keep], np.array(found, dtype=np.int64)]),
            vectors=self.vectors.updated(keep, added[: len(found)]),
            lexical=lexical,
            documents=live.documents,
        )

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        np.save(directory / "rows.npy", self.rows)
        self.vectors.save(directory / "vectors.faiss")
        self.lexical.save(directory)
        description = {"format": DERIVED_FORMAT, "store_id": self.store_id, "generation": self.generation,
                       "passages": len(self),
                       "documents": self.documents, "lexical": self.lexical.settings.as_dict()}
        (directory / SNAPSHOT).write_text(json.dumps(description) + "\n")
        for path in directory.iterdir():
            _fsync(path)
        _fsync(directory)

    @classmethod
    def load(cls, directory: Path, store_id: str, settings: LexicalSettings) -> Snapshot:
        description = json.loads((directory / SNAPSHOT).read_text())
        if description.get("format") != DERIVED_FORMAT:
            raise ValueError(f"written in format {description.get('format', 1)}; this version reads {DERIVED_FORMAT}")
        if description["store_id"] != store_id or description["lexical"] != settings.as_dict():
            raise ValueError("built from another store or with other BM25 settings")
        snapshot = cls(
            store_id=store_id,
            generation=description["generation"],
            rows=np.load(directory / "rows.npy", allow_pickle=False),
            vectors=VectorStore.load(directory / "vectors.faiss"),
            lexical=LexicalIndex.load(directory, settings),
            documents=description["documents"],
        )
        if not len(snapshot.rows) == len(snapshot.vectors) == len(snapshot.lexical) == description["passages"]:
            raise ValueError("its parts hold different numbers of passages")
        return snapshot


class Index:
    """An opened index: its store, and the snapshot searches use, kept current."""

    def __init__(self, root: Path, store: DocumentStore, lexical: LexicalSettings = LexicalSettings()) -> None:
        self.root = root
        self.store = store
        self._lexical = lexical
        self._refreshing = threading.Lock()
        self._checked_at = 0.0
        self._unusable: IndexUnavailable | None = None  # set once the store was rebuilt with another model
        self._follow(store.meta())
        self._snapshot = self._load_derived()
        self._saved_generation = self._snapshot.generation
        self._saved_at = 0.0
        self.refresh()

    def _follow(self, meta: dict[str, str]) -> None:
        """Take the store's settings as this index's own."""
        self.store_id = meta["store_id"]
        self.model = meta["model"]
        self.dimension = int(meta["dimension"])
        self.chunking = json.loads(meta["chunking"])

    @classmethod
    def open(cls, root: Path, model: str | None = None) -> Index:
        """Open the index at ``root`` for searching; ``model`` must match, if given."""
        store = open_store(root)
        built_with = store.meta()["model"]
        if model is not None and model != built_with:
            store.close()
            raise IndexUnavailable(
                f"index {root} was built with model {built_with!r}, not {model!r}; "
                f"query it with that model or rebuild it with `qa ingest --replace`",
                code="index_model",
            )
        return cls(root, store)

    @classmethod
    def open_for_writing(cls, root: Path, meta: dict[str, str], replace: bool = False) -> Index:
        """Open or create the index at ``root`` to store documents made with ``meta``.

        ``meta`` names the model, dimension and chunking; an existing index made with
        others is refused unless ``replace``: the caller then rebuilds it whole (``rebuild``)
        rather than writing documents of two models into one store.
        """
        root.mkdir(parents=True, exist_ok=True)
        store = DocumentStore(root / DATABASE)
        if not store.meta():  # new, or made by a first ingest that died before its first write
            initialise_store(store, meta)
        store = _checked_store(store, rebuilding=replace)
        differs = settings_differ(store.meta(), meta)
        if differs and not replace:
            store.close()
            raise IndexUnavailable(
                f"index {root} was built with other settings {differs}; ingest with --replace to rebuild it",
                code="index_settings",
            )
        return cls(root, store)

    def write(self, revisions: Iterable[Revision] = (), delete: Iterable[str] = (),
              keep_only: set[str] | None = None, create: bool = False) -> WriteResult:
        """One write to the store (see ``DocumentStore.write``), refused if the store was
        rebuilt under this index. Searches see it after the next ``refresh``."""
        self._check_usable()
        return self.store.write(revisions, delete, keep_only, store_id=self.store_id, create=create)

    def rebuild(self, meta: dict[str, str], batches: Iterable[list[Revision]]) -> Snapshot:
        """Replace every document with ``batches``, made with the settings ``meta``.

        The old contents stay whole and searchable (to this and every other process)
        until the last batch is stored; one transaction then swaps the new ones in."""
        stage = self.store.begin_rebuild()
        for revisions in batches:
            self.store.stage(revisions, stage)
        meta = {**meta, "store_id": new_store_id()}
        self.store.commit_rebuild(stage, meta)
        with self._refreshing:
            self._follow(self.store.meta())
            self._snapshot = Snapshot.empty(self.store_id, self.dimension, self._lexical)
            return self._update()

    def snapshot(self) -> Snapshot:
        """The newest snapshot. When another process has moved the store on (asked at most
        every ``CHECK_EVERY_SECONDS``), a background thread brings it up to date;
        searches meanwhile keep the one they have."""
        self._check_usable()
        now = time.monotonic()
        if now - self._checked_at >= CHECK_EVERY_SECONDS:
            self._checked_at = now
            if self.store.generation() != self._snapshot.generation and self._refreshing.acquire(blocking=False):
                threading.Thread(target=self._update_in_background, daemon=True).start()
        return self._snapshot

    def check(self) -> None:
        """Raise ``IndexUnavailable`` unless the store can be read now and still fits this
        index (it was not rebuilt with another model)."""
        self._check_usable()
        meta = self.store.meta()
        if meta.get("store_id") != self.store_id:
            self._check_rebuild(meta)

    def _check_usable(self) -> None:
        if self._unusable is not None:
            raise self._unusable

    def _update_in_background(self) -> None:
        try:
            self._update()
        except IndexUnavailable:
            pass  # said once, where it was found
        except Exception:
            log.exception("could not bring index %s up to date", self.root)
        finally:
            self._refreshing.release()

    def refresh(self) -> Snapshot:
        """Bring the snapshot up to the store's generation now, waiting for any other refresh."""
        with self._refreshing:
            return self._update()

    def _update(self) -> Snapshot:
        self._check_usable()
        snapshot = self._snapshot
        meta = self.store.meta()
        if (meta.get("store_id"), meta.get("generation", "0")) == (snapshot.store_id, str(snapshot.generation)):
            return snapshot  # current: no need to read every live row (an open of an index saved up to date)
        live = self.store.live_rows()
        if live.meta.get("store_id") != self.store_id:  # rebuilt by another process: start again from nothing
            self._check_rebuild(live.meta)
            snapshot = Snapshot.empty(live.meta["store_id"], self.dimension, self._lexical)
        if live.generation != snapshot.generation:
            snapshot = snapshot.updated(live, self.store)
        if snapshot.store_id != self.store_id:
            log.warning("index %s was rebuilt with the same model; now serving the rebuilt index", self.root)
            self._follow(live.meta)
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            release_freed_memory()  # what the snapshot before it held, unless a search still holds it
        return snapshot

    def _check_rebuild(self, meta: dict[str, str]) -> None:
        """Refuse for good a store rebuilt with another model or dimension: say so once."""
        if (meta.get("model"), meta.get("dimension")) == (self.model, str(self.dimension)):
            return
        self._unusable = IndexUnavailable(
            f"index {self.root} was rebuilt with model {meta.get('model')!r} while this process served "
            f"{self.model!r}; restart it to serve the rebuilt index", code="index_settings")
        log.error("%s", self._unusable.message)
        raise self._unusable

    def save(self) -> None:
        """Write the current snapshot beside the store so the next start is quick."""
        snapshot = self._snapshot
        derived = self.root / DERIVED
        target = derived / f"gen-{snapshot.generation}"
        if not _holds(target, snapshot.store_id):
            staging = derived / f".tmp-{uuid.uuid4().hex}"
            snapshot.save(staging)
            if target.exists():  # written by an earlier version of qa: set aside, then dropped
                aside = derived / f".tmp-{uuid.uuid4().hex}"
                with contextlib.suppress(OSError):
                    os.rename(target, aside)
                shutil.rmtree(aside, ignore_errors=True)
            try:
                os.rename(staging, target)
            except OSError:  # another process saved this generation first
                shutil.rmtree(staging, ignore_errors=True)
            _fsync(derived)
        self._saved_generation, self._saved_at = snapshot.generation, time.monotonic()
        for entry in derived.iterdir():
            if 0 <= _generation_of(entry) < snapshot.generation or _abandoned(entry):
                shutil.rmtree(entry, ignore_errors=True)

    def save_every(self, seconds: float) -> None:
        """``save`` unless the derived files were written less than ``seconds`` ago."""
        if self._snapshot.generation != self._saved_generation and time.monotonic() - self._saved_at > seconds:
            self.save()

    def _load_derived(self) -> Snapshot:
        """The newest derived snapshot on disk that is usable, else an empty one."""
        derived = self.root / DERIVED
        candidates = sorted(derived.glob("gen-*"), key=_generation_of, reverse=True) if derived.is_dir() else []
        for directory in candidates:
            try:
                return Snapshot.load(directory, self.store_id, self._lexical)
            except Exception as error:  # a damaged or foreign snapshot is rebuilt, never trusted
                log.warning("ignoring derived index %s: %s", directory, error)
        return Snapshot.empty(self.store_id, self.dimension, self._lexical)

    def close(self) -> None:
        self.store.close()


def settings_differ(stored: dict[str, str], meta: dict[str, str]) -> dict[str, tuple[str | None, str]]:
    """Each setting of ``meta`` the store was built otherwise with: (stored, wanted)."""
    return {k: (stored.get(k), v) for k, v in meta.items() if stored.get(k) != v}


def open_store(root: Path) -> DocumentStore:
    """The store of the existing index at ``root``, in a format this version reads."""
    path = root / DATABASE
    if not path.is_file():
        raise IndexUnavailable(f"no index at {root}: build one with `qa ingest PATH --index {root}`",
                               code="index_missing")
    return _checked_store(DocumentStore(path))


def _checked_store(store: DocumentStore, rebuilding: bool = False) -> DocumentStore:
    """``store`` if this version of qa reads its format, or is about to rebuild it from
    an earlier one; closed and refused otherwise."""
    version = store.meta().get("format_version")
    if version == str(FORMAT_VERSION) or (rebuilding and version and version.isdigit() and
                                          int(version) < FORMAT_VERSION):
        return store
    store.close()
    if version is None:
        raise IndexUnavailable(f"index {store.path.parent} is empty: its first ingest did not finish; "
                               f"run `qa ingest` again", code="index_missing")
    raise IndexUnavailable(
        f"index {store.path.parent} has format version {version!r}; this version of qa reads {FORMAT_VERSION}. "
        f"Rebuild it with `qa ingest --replace`.",
        code="index_format",
    )


def _holds(directory: Path, store_id: str) -> bool:
    """Whether ``directory`` holds a snapshot of ``store_id`` in the format this version writes."""
    try:
        description = json.loads((directory / SNAPSHOT).read_text())
    except (OSError, ValueError):
        return False
    return description.get("format") == DERIVED_FORMAT and description.get("store_id") == store_id


def _abandoned(path: Path) -> bool:
    """A staging folder left by a process that died while saving."""
    try:
        return path.name.startswith(".tmp-") and time.time() - path.stat().st_mtime > 3600
    except FileNotFoundError:
        return False


def _generation_of(path: Path) -> int:
    prefix, _, number = path.name.partition("-")
    return int(number) if prefix == "gen" and number.isdigit() else -1


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
