"""An index directory: the document store and the search indexes derived from it.

Layout of ``index/<name>/``::

    documents.sqlite          documents, passages and vectors: the source of truth
    derived/segments/<name>/  one segment: FAISS and BM25 of some passages (``qa.segments``)
    derived/gen-<N>-<id>/     snapshot.json: the segments of store generation N, and
                              deleted-<segment>.npy: the positions deleted from each since

The derived files only save time at start-up. Whatever they hold is brought up to
the store's generation from the rows added and removed since, and rebuilt from the
store when missing, damaged or built with other settings. A search takes one
``Snapshot`` and uses it throughout, so a write that lands meanwhile is seen whole
or not at all.

A write costs what it changes: its new passages become a small segment (built from
what the write holds, not read back), and the rows it removed are marked deleted in
theirs. Merges run in a background thread and swap their segment in atomically; a
merge killed at any moment leaves the saved snapshot before it, whole.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.database import FORMAT_VERSION, DocumentStore, Revision, WriteResult, initialise_store, new_store_id
from qa.errors import IndexUnavailable
from qa.lexical import CountedTerms, LexicalSettings, passage_terms
from qa.memory import release_freed_memory
from qa.segments import (
    SEGMENT_PASSAGES,
    Segment,
    SegmentBuilder,
    SegmentView,
    fsync,
    merged,
    to_compact,
    to_merge,
    to_merge_in_bulk,
)
from qa.snapshot import Snapshot

DATABASE = "documents.sqlite"
DERIVED = "derived"
SEGMENTS = "segments"
SNAPSHOT = "snapshot.json"
# How the files of a derived snapshot are laid out; one written otherwise is rebuilt and replaced.
DERIVED_FORMAT = 3
# How often searches ask the store whether another process has written: a write
# elsewhere shows up this much later at most, and a search mostly skips the query.
CHECK_EVERY_SECONDS = 0.1
# Passages read from the store at a time while a snapshot takes in new ones.
READ_ROWS = 10_000
# A segment gathering this many passages is written to disk as it grows and opened
# memory-mapped, so that a bulk ingest holds none of its vectors, never the whole index.
SAVED_FROM = 20_000
# A saved segment no snapshot names is deleted once this old: younger, it may be one
# another process has saved and not yet named.
UNNAMED_SEGMENT_SECONDS = 600.0
log = logging.getLogger(__name__)
# What a merge replaces, chosen from a snapshot's views (``to_merge``, ``to_compact``).
Policy = Callable[[tuple[SegmentView, ...]], list[SegmentView]]


@dataclass
class _Pending:
    """Writes of this process not yet in the snapshot: what they added and removed."""

    builder: SegmentBuilder
    removed: list[np.ndarray]
    generation: int
    documents: int


class Index:
    """An opened index: its store, and the snapshot searches use, kept current."""

    def __init__(self, root: Path, store: DocumentStore, lexical: LexicalSettings = LexicalSettings(),
                 bulk: bool = False) -> None:
        self.root = root
        self.store = store
        self._lexical = lexical
        # A bulk load seals its writes' segments unindexed and indexes them once, in ``compact``.
        self._bulk = bulk
        self._refreshing = threading.Lock()
        self._checked_at = 0.0
        self._unusable: IndexUnavailable | None = None  # set once the store was rebuilt with another model
        self._pending: _Pending | None = None
        self._merging: threading.Thread | None = None
        self._merge_failed = False  # not tried again until the next change
        self._closed = False
        self._follow(store.meta())
        self._snapshot = self._load_derived()
        self._saved: Snapshot | None = self._snapshot if self._snapshot.generation else None
        self._saved_at = 0.0
        self.refresh()

    @property
    def lexical(self) -> LexicalSettings:
        """How its BM25 terms are made and scored."""
        return self._lexical

    def _follow(self, meta: dict[str, str]) -> None:
        """Take the store's settings as this index's own."""
        self.store_id = meta["store_id"]
        self.model = meta["model"]
        self.dimension = int(meta["dimension"])
        self.chunking = json.loads(meta["chunking"])

    @property
    def segments(self) -> Path:
        return self.root / DERIVED / SEGMENTS

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
    def open_for_writing(cls, root: Path, meta: dict[str, str], replace: bool = False, bulk: bool = False) -> Index:
        """Open or create the index at ``root`` to store documents made with ``meta``.

        ``meta`` names the model, dimension and chunking; an existing index made with
        others is refused unless ``replace``: the caller then rebuilds it whole (``rebuild``)
        rather than writing documents of two models into one store. A ``bulk`` load
        (one that ends with ``compact``) leaves the segments it seals unindexed until then.
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
        return cls(root, store, bulk=bulk)

    def write(self, revisions: Iterable[Revision] = (), delete: Iterable[str] = (),
              keep_only: set[str] | None = None, create: bool = False) -> WriteResult:
        """One write to the store (see ``DocumentStore.write``), refused if the store was
        rebuilt under this index. Searches see it after the next ``refresh``; its new
        passages go to the next segment as they are, without being read back."""
        self._check_usable()
        revisions = list(revisions)
        result = self.store.write(revisions, delete, keep_only, store_id=self.store_id, create=create)
        with self._refreshing:
            self._take(revisions, result)
        return result

    def _take(self, revisions: list[Revision], result: WriteResult) -> None:
        """Hold this process's write for the next snapshot, when it follows the last one
        held; after a write of another process, the store is read instead."""
        pending = self._pending
        held = pending.generation if pending is not None else self._snapshot.generation
        if result.generation != held + 1 or self._snapshot.store_id != self.store_id:
            if result.generation > held:
                self._pending = None  # the next update reads every change since the snapshot
            return
        if pending is None:
            pending = self._pending = _Pending(self._builder(), [],
                                               self._snapshot.generation, self._snapshot.documents)
        if revisions:
            pending.builder.add(result.added_rows, np.concatenate([r.vectors for r in revisions]),
                                [self._terms_of(r) for r in revisions])
        pending.removed.append(result.removed_rows)
        pending.generation, pending.documents = result.generation, pending.documents + result.documents_added
        if len(pending.builder) >= SEGMENT_PASSAGES:
            self._apply_pending()

    def _terms_of(self, revision: Revision) -> CountedTerms:
        """Its passages' BM25 terms: as ingest made them ahead, else made now."""
        if revision.terms is not None:
            return revision.terms
        return CountedTerms.of(passage_terms(p.text, revision.document.title, self._lexical, p.section)
                               for p in revision.passages)

    def _apply_pending(self) -> None:
        """Seal this process's held writes into a segment, indexed unless a bulk load
        is running: it indexes the segments it sealed once, in ``compact``."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        removed = np.concatenate(pending.removed) if pending.removed else np.zeros(0, np.int64)
        segment = self._settled(pending.builder.build(indexed=not self._bulk))
        self._swap(self._snapshot.changed(removed, [segment], pending.generation, pending.documents))

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
            self._pending = None
            self._follow(self.store.meta())
            self._snapshot = Snapshot.empty(self.store_id, self._lexical)
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
        """The snapshot brought to the store's generation: this process's held writes
        first, then whatever else the store says was added or removed since."""
        self._check_usable()
        self._apply_pending()
        snapshot = self._snapshot
        meta = self.store.meta()
        if (meta.get("store_id"), meta.get("generation", "0")) != (snapshot.store_id, str(snapshot.generation)):
            snapshot = self._caught_up(snapshot)
        if snapshot.store_id != self.store_id:
            log.warning("index %s was rebuilt with the same model; now serving the rebuilt index", self.root)
            self._follow(self.store.meta())
        self._swap(snapshot)
        return snapshot

    def _caught_up(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` brought to the store's generation by reading what changed since."""
        changes = self.store.changes(snapshot.generation)
        if changes is not None and changes.meta.get("store_id") == snapshot.store_id:
            return snapshot.changed(changes.removed_rows, self._segments_of(changes.added_rows), changes.generation,
                                    snapshot.documents + changes.documents_added)
        live = self.store.live_rows()  # changes purged, or another store: compare every row
        if live.meta.get("store_id") != snapshot.store_id:
            self._check_rebuild(live.meta)
            snapshot = Snapshot.empty(live.meta["store_id"], self._lexical)
        held = snapshot.rows
        removed = np.setdiff1d(held, live.rows, assume_unique=True)
        added = np.setdiff1d(live.rows, held, assume_unique=True)
        return snapshot.changed(removed, self._segments_of(added), live.generation, live.documents)

    def _segments_of(self, rows: np.ndarray) -> list[Segment]:
        """Segments of the stored passages at ``rows`` (ascending), read ``READ_ROWS`` at a
        time, so that their texts are never all in memory at once; rows purged meanwhile
        are left out."""
        built: list[Segment] = []
        builder = self._builder()
        for first in range(0, len(rows), READ_ROWS):
            batch = rows[first : first + READ_ROWS]
            records = self.store.passages(batch)
            vectors = self.store.vectors(list(records), self.dimension)
            found = [row for row in batch.tolist() if row in records and row in vectors]
            found_vectors = np.array([vectors[row] for row in found]).reshape(-1, self.dimension)
            builder.add(np.array(found, np.int64), found_vectors,
                        [CountedTerms.of(passage_terms(records[row].passage.text, records[row].title, self._lexical,
                                                       records[row].passage.section) for row in found)])
            if len(builder) >= SEGMENT_PASSAGES:
                built.append(self._settled(builder.build()))
                builder = self._builder()
        if len(builder):
            built.append(self._settled(builder.build()))
        return built

    def _builder(self) -> SegmentBuilder:
        """A builder for the next segment, which saves it once it is large."""
        return SegmentBuilder(self.dimension, self._lexical, saved_in=self.segments, saved_from=SAVED_FROM)

    def _settled(self, segment: Segment) -> Segment:
        """``segment``, or once it is large, the same saved and opened memory-mapped. Where
        it cannot be saved (a full or read-only disk), it is kept in memory, and the
        derived files are only older."""
        if segment.directory is not None or len(segment) < SAVED_FROM:
            return segment
        try:
            segment.save(self.segments)
            return Segment.load(self.segments, segment.name, self._lexical)
        except OSError as error:
            log.warning("could not save a segment of index %s: %s; it is kept in memory", self.root, error)
            return segment

    def _swap(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the one searches take, then start a merge if one is due."""
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            self._merge_failed = False
            release_freed_memory()  # what the snapshot before it held, unless a search still holds it
        self._merge_if_due()

    def _merge_if_due(self, due: Policy | None = None) -> None:
        """Start merging what ``due`` (else ``to_merge``) picks, unless a merge runs or
        failed since the last change."""
        if self._closed or self._merge_failed or (self._merging is not None and self._merging.is_alive()):
            return
        views = (due or (to_merge_in_bulk if self._bulk else to_merge))(self._snapshot.views)
        if views:
            self._merging = threading.Thread(target=self._merge, args=(views,), name="index-merge", daemon=True)
            self._merging.start()

    def settle(self) -> Snapshot:
        """Wait until no merge is due or running; the snapshot after them."""
        return self._merged_until_none(None)

    def compact(self) -> Snapshot:
        """Merge segments until ``to_compact`` finds none to merge (what a bulk load ends
        with: few large segments search faster than many, and each is indexed), this
        process's writes first, waiting; the snapshot after. A bulk load ends here:
        segments sealed later are indexed as they are sealed."""
        self.refresh()
        try:
            return self._merged_until_none(to_compact)
        finally:
            self._bulk = False

    def _merged_until_none(self, due: Policy | None) -> Snapshot:
        while True:
            merging = self._merging
            if merging is not None:
                merging.join()
            with self._refreshing:
                self._merge_if_due(due)
                if self._merging is merging or self._merging is None:
                    return self._snapshot

    def _merge(self, views: list[SegmentView]) -> None:
        """Merge ``views`` into one segment, save it, and swap it in for them."""
        try:
            log.info("merging %d segments of %d passages in %s", len(views), sum(v.live for v in views), self.root)
            segment = merged(views, self._lexical, self.segments)
            with self._refreshing:
                swapped = self._snapshot.merged(views, segment)
                self._merging = None
                if not self._closed:
                    self._swap(swapped if swapped is not None else self._snapshot)  # then the next merge, if due
        except Exception:
            self._merge_failed = True
            log.exception("could not merge segments of index %s", self.root)

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
        """Write the current snapshot beside the store so the next start is quick: its
        segments not saved yet, then one file naming them all (the commit)."""
        snapshot = self._snapshot
        derived = self.root / DERIVED
        for view in snapshot.views:
            view.segment.save(self.segments)
        staging = derived / f".tmp-{uuid.uuid4().hex}"
        _save_snapshot(snapshot, staging)
        target = derived / f"gen-{snapshot.generation}-{uuid.uuid4().hex[:8]}"
        os.rename(staging, target)
        fsync(derived)
        self._saved, self._saved_at = snapshot, time.monotonic()
        self._collect(target, snapshot)

    def _collect(self, kept: Path, snapshot: Snapshot) -> None:
        """Drop saved snapshots older than ``kept``, staging left by dead processes, and
        segments no remaining snapshot names."""
        derived = kept.parent
        named = {view.segment.name for view in snapshot.views}
        for entry in derived.iterdir():
            number = _generation_of(entry)
            if entry != kept and (0 <= number <= snapshot.generation or _abandoned(entry, 3600)):
                _remove(entry)
            elif number >= 0:  # a newer one, saved by another process
                with contextlib.suppress(OSError, ValueError, KeyError):
                    named |= set(json.loads((entry / SNAPSHOT).read_text())["segments"])
        if self.segments.is_dir():
            for entry in self.segments.iterdir():
                if entry.name not in named and _abandoned(entry, UNNAMED_SEGMENT_SECONDS, any_name=True):
                    _remove(entry)

    def save_every(self, seconds: float) -> None:
        """``save`` unless the derived files were written less than ``seconds`` ago."""
        if self._snapshot is not self._saved and time.monotonic() - self._saved_at > seconds:
            self.save()

    def _load_derived(self) -> Snapshot:
        """The newest derived snapshot on disk that is usable, else an empty one."""
        derived = self.root / DERIVED
        candidates = sorted((p for p in derived.glob("gen-*")), key=_age_of, reverse=True) if derived.is_dir() else []
        for directory in candidates:
            try:
                return load_snapshot(directory, self.segments, self.store_id, self._lexical)
            except Exception as error:  # a damaged or foreign snapshot is rebuilt, never trusted
                log.warning("ignoring derived index %s: %s", directory, error)
        return Snapshot.empty(self.store_id, self._lexical)

    def close(self) -> None:
        """Close the store. A merge still running is not waited for (``settle`` waits):
        it swaps nothing in once closed, and what it leaves on disk no snapshot names."""
        with self._refreshing:
            self._closed = True
        self.store.close()


def _save_snapshot(snapshot: Snapshot, directory: Path) -> None:
    """Write ``snapshot``'s description into ``directory``: its segments in order, and
    the positions deleted from each."""
    directory.mkdir(parents=True)
    for view in snapshot.views:
        if view.deleted is not None:
            np.save(directory / f"deleted-{view.segment.name}.npy", np.flatnonzero(view.deleted), allow_pickle=False)
    description = {"format": DERIVED_FORMAT, "store_id": snapshot.store_id, "generation": snapshot.generation,
                   "passages": len(snapshot), "documents": snapshot.documents,
                   "lexical": snapshot.settings.as_dict(), "segments": [v.segment.name for v in snapshot.views]}
    (directory / SNAPSHOT).write_text(json.dumps(description) + "\n")
    for path in directory.iterdir():
        fsync(path)
    fsync(directory)


def load_snapshot(directory: Path, segments: Path, store_id: str, settings: LexicalSettings) -> Snapshot:
    description = json.loads((directory / SNAPSHOT).read_text())
    if description.get("format") != DERIVED_FORMAT:
        raise ValueError(f"written in format {description.get('format', 1)}; this version reads {DERIVED_FORMAT}")
    if description["store_id"] != store_id or description["lexical"] != settings.as_dict():
        raise ValueError("built from another store or with other BM25 settings")
    views = []
    for name in description["segments"]:
        view = SegmentView(Segment.load(segments, name, settings))
        deleted = directory / f"deleted-{name}.npy"
        if deleted.is_file():
            view = view.without(np.load(deleted, allow_pickle=False))
        views.append(view)
    snapshot = Snapshot(store_id, description["generation"], description["documents"], tuple(views), settings)
    if len(snapshot) != description["passages"]:
        raise ValueError("its segments hold another number of passages than it says")
    return snapshot


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


def _remove(path: Path) -> None:
    """Delete a folder, first renamed to staging so that a crash midway leaves no
    half-deleted snapshot or segment under its own name."""
    if not path.name.startswith(".tmp-"):
        aside = path.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            os.rename(path, aside)
        except OSError:
            return  # gone already
        path = aside
    shutil.rmtree(path, ignore_errors=True)


def _abandoned(path: Path, seconds: float, any_name: bool = False) -> bool:
    """Staging left by a process that died while saving (or with ``any_name``, any
    entry) not touched for ``seconds``."""
    try:
        return (any_name or path.name.startswith(".tmp-")) and time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def _generation_of(path: Path) -> int:
    """N of a saved snapshot ``gen-N-<id>``; -1 for anything else."""
    parts = path.name.split("-")
    return int(parts[1]) if len(parts) == 3 and parts[0] == "gen" and parts[1].isdigit() else -1


def _age_of(path: Path) -> tuple[int, float]:
    """Newer snapshots first: by generation, then by when they were saved."""
    try:
        return _generation_of(path), path.stat().st_mtime
    except FileNotFoundError:
        return -1, 0.0
