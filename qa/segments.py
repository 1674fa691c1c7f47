"""Segments: the parts the embedded engine's search indexes are built, saved and merged in.

A segment holds passages of ascending store rows with their vectors (``VectorStore``)
and BM25 term counts (``LexicalSegment``); position ``i`` of both is ``rows[i]``. It
never changes once built, as in Lucene and Milvus: a write adds a small segment of
its new passages, and what it deletes from older ones is recorded beside them
(``SegmentView``). Merges replace runs of small or much-deleted segments with one
holding their live passages. Saved segments open memory-mapped, so every process
serving an index shares their pages.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import cast

import numpy as np

from qa.lexical import CountedTerms, LexicalSegment, LexicalSettings, TermCounter, save_joined
from qa.memory import release_freed_memory
from qa.vector_store import EXACT_UP_TO, FlatFile, Selection, VectorSource, VectorStore

SEGMENT = "segment.json"
ROWS = "rows.npy"
VECTORS = "vectors.faiss"
SPOOLED = "vectors.flat"  # a staged segment's vectors as they come, before its index is made of them
# The most passages a write's segment holds: what writes gather in memory before they
# are built (BM25's counts, and below ``SegmentBuilder``'s ``saved_from`` the vectors) stays bounded.
SEGMENT_PASSAGES = 200_000
# The most a merged segment holds, in bytes of half-precision vectors (Milvus's
# segment.maxSize is 1 GiB too): about 1.4 million passages of 384 dimensions. Few
# large segments search faster than many small ones, each of which is searched in
# full; a merge writes the index's lists in place, holding none of them.
MERGED_BYTES = 1 << 30
# Vectors of a segment a merge reads at a time (100 MB as float32 at 384 dimensions).
READ_VECTORS = 1 << 16
# A merge starts once this many adjacent segments, none larger than the others
# together, can become one ...
MERGE_FACTOR = 8
# ... or once a segment has lost this share of its passages to deletions.
DELETED_SHARE = 0.3
log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Segment:
    """Passages ``rows`` (ascending) with their vectors and term counts; never changed.
    ``directory`` is where it was opened from (None while only in memory). A segment
    not ``indexed`` holds its vectors for exact search only, as a bulk load seals
    them, until a merge builds the index its size calls for."""

    name: str
    rows: np.ndarray
    vectors: VectorStore
    lexical: LexicalSegment
    directory: Path | None = None
    indexed: bool = True

    def __len__(self) -> int:
        return len(self.rows)

    def save(self, folder: Path) -> None:
        """Write the segment as ``folder/<name>``, whole or not at all (staged, then renamed)."""
        if not (folder / self.name).is_dir():
            with _staged(folder, self.name) as staging:
                self.lexical.save(staging)
                self.vectors.save(staging / VECTORS)
                _save_rows(staging, self.rows, self.indexed)

    @classmethod
    def load(cls, folder: Path, name: str, settings: LexicalSettings) -> Segment:
        """Open ``folder/<name>``, memory-mapped; refused if its parts disagree."""
        directory = folder / name
        description = json.loads((directory / SEGMENT).read_text())
        passages = description["passages"]
        segment = cls(name, np.load(directory / ROWS, allow_pickle=False), VectorStore.load(directory / VECTORS),
                      LexicalSegment.load(directory, settings), directory, description.get("indexed", True))
        if not len(segment.rows) == len(segment.vectors) == len(segment.lexical) == passages:
            raise ValueError(f"segment {name}: its parts hold different numbers of passages")
        return segment

    def vector_sources(self, positions: np.ndarray) -> list[VectorSource]:
        """The vectors at ``positions`` as sources to build an index from, ``READ_VECTORS``
        at a time (what a merge holds of them at once): read from the segment's file if
        it was saved, each part afresh, so that none stays in memory after (the map
        searches use would keep its pages)."""
        if self.directory is None:
            return _sources(self.vectors.vectors, positions)
        return _file_sources(self.directory / VECTORS, positions)


class _Staging:
    """A folder a segment's files are written in, then renamed ``folder/<name>`` once
    they are all written and synced (whole or not at all). Removed if it is discarded
    or dropped uncommitted; one a killed process left is removed by a later save
    (``qa.index``'s ``UNNAMED_SEGMENT_SECONDS``)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / f".tmp-{uuid.uuid4().hex}"
        self.path.mkdir()
        self._removal = weakref.finalize(self, shutil.rmtree, self.path, True)

    def keep_fresh(self) -> None:
        """Mark it in use, so that no process takes it for one a dead process left."""
        os.utime(self.path)

    def commit(self, name: str) -> None:
        for path in self.path.iterdir():
            fsync(path)
        fsync(self.path)
        try:
            os.rename(self.path, self.folder / name)
        except OSError:  # saved meanwhile by another process: same name, same contents
            shutil.rmtree(self.path, ignore_errors=True)
        self._removal.detach()
        fsync(self.folder)

    def discard(self) -> None:
        self._removal()


@contextlib.contextmanager
def _staged(folder: Path, name: str):
    """A staging folder to write a segment's files in, renamed ``folder/<name>`` once
    they are all written and synced; removed if writing fails."""
    staging = _Staging(folder)
    try:
        yield staging.path
        staging.commit(name)
    except BaseException:
        staging.discard()
        raise


def _file_sources(path: Path, positions: np.ndarray) -> list[VectorSource]:
    """The vectors at ``positions`` of the index saved at ``path``, ``READ_VECTORS`` at a
    time, each part read afresh (``VectorStore.read_saved``)."""
    return _sources(functools.partial(VectorStore.read_saved, path), positions)


def _sources(read: Callable[[np.ndarray], np.ndarray], positions: np.ndarray) -> list[VectorSource]:
    """``positions`` in parts of ``READ_VECTORS``, each a source that ``read`` reads."""
    parts = [positions[first : first + READ_VECTORS] for first in range(0, len(positions), READ_VECTORS)]
    return [VectorSource(len(part), functools.partial(read, part)) for part in parts]


def _save_rows(staging: Path, rows: np.ndarray, indexed: bool = True) -> None:
    """The rows, then the description that says how many passages the files hold."""
    np.save(staging / ROWS, rows, allow_pickle=False)
    (staging / SEGMENT).write_text(json.dumps({"passages": len(rows), "indexed": indexed}) + "\n")


class SegmentBuilder:
    """Passages gathered for the next segment: rows, vectors and counted terms.

    With ``saved_in``, once ``saved_from`` passages are gathered, their vectors (and
    those of every passage added after) go to a file staged there instead of memory,
    and ``build`` returns the segment saved and opened memory-mapped: a bulk load holds
    no segment's vectors. Where that file cannot be written (a full disk), the vectors
    are held in memory as without ``saved_in``."""

    def __init__(self, dimension: int, settings: LexicalSettings, saved_in: Path | None = None,
                 saved_from: int = 0) -> None:
        self.dimension = dimension
        self.settings = settings
        self._rows: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self._terms = TermCounter()
        self._saved_in, self._saved_from = saved_in, saved_from
        self._spooled: tuple[_Staging, FlatFile] | None = None

    def __len__(self) -> int:
        return self._terms.rows

    def add(self, rows: np.ndarray, vectors: np.ndarray, terms: list[CountedTerms]) -> None:
        """Passages at ``rows`` (above every row added before), each vector, and their
        terms (the passages of ``terms`` in turn, as many as ``rows``)."""
        if len(rows):
            self._rows.append(np.asarray(rows, np.int64))
            self._vectors.append(np.ascontiguousarray(vectors, np.float32).reshape(len(rows), self.dimension))
            self._terms.add(terms)
            if self._saved_in is not None and len(self) >= self._saved_from:
                self._spool()

    def _spool(self) -> None:
        """Move the vectors held in memory to the staged file."""
        try:
            if self._spooled is None:
                staging = _Staging(cast(Path, self._saved_in))
                self._spooled = staging, FlatFile(staging.path / SPOOLED, self.dimension)
            staging, flat = self._spooled
            while self._vectors:
                flat.add(self._vectors[0])
                del self._vectors[0]
            staging.keep_fresh()
        except OSError as error:
            log.warning("vectors of a segment are kept in memory: they cannot be written (%s)", error)
            self._unspool()

    def _unspool(self) -> None:
        """Read the staged vectors back into memory and stop staging them."""
        self._saved_in = None
        if self._spooled is not None:
            staging, flat = self._spooled
            self._spooled = None
            flat.abandon()
            self._vectors.insert(0, flat.read())
            staging.discard()

    def build(self, indexed: bool = True) -> Segment:
        """The segment of what was added; unless ``indexed``, with its vectors searched exactly."""
        rows = np.concatenate(self._rows) if self._rows else np.zeros(0, np.int64)
        indexed = indexed or len(rows) <= EXACT_UP_TO
        if self._spooled is not None:
            try:
                return self._saved(rows, indexed)
            except OSError as error:
                log.warning("a segment is kept in memory: it cannot be saved (%s)", error)
                self._unspool()
        vectors = [VectorSource.of(part) for part in self._vectors]
        return Segment(uuid.uuid4().hex, rows, VectorStore.build(vectors, self.dimension, exact=not indexed),
                       self._terms.segment(self.settings), indexed=indexed)

    def _saved(self, rows: np.ndarray, indexed: bool) -> Segment:
        """The segment, its staged vectors indexed if ``indexed`` asks, saved and opened."""
        staging, flat = cast(tuple[_Staging, FlatFile], self._spooled)
        flat.close()
        self._terms.save(self.settings, staging.path)
        _save_rows(staging.path, rows, indexed)
        if indexed and len(rows) > EXACT_UP_TO:
            VectorStore.write(_file_sources(flat.path, np.arange(len(rows))), self.dimension, staging.path / VECTORS)
            flat.path.unlink()
        else:
            os.rename(flat.path, staging.path / VECTORS)
        name = uuid.uuid4().hex
        staging.commit(name)
        self._spooled = None
        return Segment.load(staging.folder, name, self.settings)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class SegmentView:
    """A segment as one snapshot sees it: which of its positions later writes deleted,
    and what those took from its BM25 statistics."""

    segment: Segment
    deleted: np.ndarray | None = None  # a mask over positions; None when none is
    frequency_removed: np.ndarray | None = None  # per term: deleted passages holding it
    length_removed: int = 0

    @property
    def size(self) -> int:
        return len(self.segment)

    @cached_property
    def live(self) -> int:
        return self.size - (int(np.count_nonzero(self.deleted)) if self.deleted is not None else 0)

    @property
    def live_length(self) -> int:
        return self.segment.lexical.total_length - self.length_removed

    @cached_property
    def selection(self) -> Selection | None:
        """The live positions as FAISS reads them; None when every one is."""
        return Selection.of_mask(~self.deleted) if self.deleted is not None else None

    def live_positions(self) -> np.ndarray:
        if self.deleted is None:
            return np.arange(self.size)
        return np.flatnonzero(~self.deleted)

    def frequency(self, term: str) -> int:
        """Live passages of this segment holding ``term``."""
        lexical = self.segment.lexical
        column = lexical.columns.get(term)
        if column is None:
            return 0
        removed = int(self.frequency_removed[column]) if self.frequency_removed is not None else 0
        return int(lexical.frequency[column]) - removed

    def without(self, positions: np.ndarray) -> SegmentView:
        """This view with ``positions`` deleted too (any already deleted are ignored)."""
        deleted = self.deleted.copy() if self.deleted is not None else np.zeros(self.size, dtype=bool)
        positions = positions[~deleted[positions]]
        if not len(positions):
            return self
        deleted[positions] = True
        frequency, length = self.segment.lexical.term_totals(positions)
        removed = frequency if self.frequency_removed is None else self.frequency_removed + frequency
        return SegmentView(self.segment, deleted, removed, self.length_removed + length)

    def positions_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of ``rows`` this segment holds live, at which positions)."""
        own = self.segment.rows
        if not len(own) or not len(rows):
            return np.zeros(len(rows), dtype=bool), np.zeros(0, np.int64)
        at = np.minimum(np.searchsorted(own, rows), len(own) - 1)
        held = own[at] == rows
        if self.deleted is not None:
            held &= ~self.deleted[at]
        return held, at[held]


def merged(views: list[SegmentView], settings: LexicalSettings, folder: Path) -> Segment:
    """One segment holding the live passages of ``views`` (adjacent, in order), saved
    in ``folder`` and opened memory-mapped (in memory if none is live).

    Built part by part so that a merge holds little of its output and one source part
    in memory at a time: BM25's postings are joined and written, then the vectors'
    index is written, its lists filled in place as the sources are read."""
    parts = [(view, view.live_positions()) for view in views]
    rows = np.concatenate([view.segment.rows[live] for view, live in parts])
    dimension = views[0].segment.vectors.dimension
    if not len(rows):
        return SegmentBuilder(dimension, settings).build()
    name = uuid.uuid4().hex
    with _staged(folder, name) as staging:
        save_joined([(view.segment.lexical, live) for view, live in parts], settings, staging)
        release_freed_memory()  # what joining freed (300 MB at a million passages), before the vectors' turn
        VectorStore.write([source for view, live in parts for source in view.segment.vector_sources(live)],
                          dimension, staging / VECTORS)
        _save_rows(staging, rows)
    return Segment.load(folder, name, settings)


def merged_passages(dimension: int) -> int:
    """The most passages a merge puts in one segment (``MERGED_BYTES``)."""
    return MERGED_BYTES // (2 * dimension)


def to_merge(views: tuple[SegmentView, ...]) -> list[SegmentView]:
    """The views a merge should replace now, adjacent and in order; none when none needs it.

    ``MERGE_FACTOR`` adjacent segments, the run nearest the end (where writes land) in
    which none is larger than the others together and all fit one merged segment:
    segments then grow geometrically, and a passage is rewritten about log(n) times,
    not once per write. Else the first segment that lost ``DELETED_SHARE`` of its
    passages, rewritten alone; else the first not indexed, indexed alone."""
    return to_merge_in_bulk(views) or _first_unindexed(views)


def to_merge_in_bulk(views: tuple[SegmentView, ...]) -> list[SegmentView]:
    """As ``to_merge``, but leaving segments unindexed: a bulk load indexes them as it
    ends (``to_compact``), once, rather than each as it is sealed."""
    for view in views:
        if view.size and view.size - view.live >= DELETED_SHARE * view.size:
            deleted = [view]
            break
    else:
        deleted = []
    return _balanced_run(views, MERGE_FACTOR, MERGE_FACTOR) or deleted


def to_compact(views: tuple[SegmentView, ...]) -> list[SegmentView]:
    """As ``to_merge``, but the longest balanced run of two segments or more: merged in
    turn, they leave the fewest segments a bulk load can end with while a passage is
    still rewritten only about log2(n) times (a small load into a large index merges
    nothing large)."""
    return _balanced_run(views, 2, len(views)) or to_merge(views)


def _first_unindexed(views: tuple[SegmentView, ...]) -> list[SegmentView]:
    return next(([view] for view in views if not view.segment.indexed), [])


def _balanced_run(views: tuple[SegmentView, ...], shortest: int, longest: int) -> list[SegmentView]:
    """The longest run of ``shortest`` to ``longest`` adjacent views, nearest the end,
    in which none holds more than the others together and all fit one merged segment."""
    if not views:
        return []
    most = merged_passages(views[0].segment.vectors.dimension)
    sizes = [view.live for view in views]
    for length in range(min(longest, len(views)), shortest - 1, -1):
        for first in range(len(views) - length, -1, -1):
            run = sizes[first : first + length]
            if 2 * max(run) <= sum(run) <= most:
                return list(views[first : first + length])
    return []


def fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
