"""A snapshot: the segments that hold one store generation, searched as one index.

Positions run through the segments in order (segment 0's, then segment 1's, ...),
and since segments hold ascending rows, position order is row order: ties between
equal scores go to the lower row, as in one index built afresh. Deleted positions
keep their place but are never returned: FAISS skips them while it scans, and BM25
neither returns them nor counts them in its statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from qa.fusion import Scored
from qa.lexical import Collection, LexicalSegment, LexicalSettings, QuestionTerms, idf
from qa.segments import Segment, SegmentView
from qa.vector_store import Selection, VectorStore


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Snapshot:
    """Search indexes of one store generation, made of segments; immutable."""

    store_id: str
    generation: int
    documents: int
    views: tuple[SegmentView, ...]
    settings: LexicalSettings

    @classmethod
    def empty(cls, store_id: str, settings: LexicalSettings) -> Snapshot:
        return cls(store_id, 0, 0, (), settings)

    @classmethod
    def single(cls, vectors: np.ndarray, passage_terms: list[list[str]],
               settings: LexicalSettings = LexicalSettings()) -> Snapshot:
        """One segment of passages at rows ``0..n-1``, for experiments over a corpus in memory."""
        rows = np.arange(len(passage_terms), dtype=np.int64)
        segment = Segment("single", rows, VectorStore.build(vectors), LexicalSegment.build(passage_terms, settings))
        return cls("", 0, 0, (SegmentView(segment),), settings)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Where each segment's positions begin, and (last) how many positions there are."""
        return np.concatenate([[0], np.cumsum([view.size for view in self.views], dtype=np.int64)])

    @cached_property
    def key(self) -> tuple:
        """Says which snapshot this is: positions mean the same in two snapshots of one
        key (a merge keeps the generation but moves positions, and changes the key)."""
        return self.store_id, self.generation, tuple(view.segment.name for view in self.views)

    @property
    def size(self) -> int:
        """Positions, deleted ones included."""
        return int(self.offsets[-1])

    @cached_property
    def passages(self) -> int:
        return sum(view.live for view in self.views)

    def __len__(self) -> int:
        """Live passages."""
        return self.passages

    @cached_property
    def rows(self) -> np.ndarray:
        """Every live passage's row, in position order."""
        return np.concatenate([view.segment.rows[view.live_positions()] for view in self.views]) \
            if self.views else np.zeros(0, np.int64)

    def vectors(self) -> np.ndarray:
        """Every live passage's vector, in position order."""
        parts = [view.segment.vectors.vectors(view.live_positions()) for view in self.views]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    @cached_property
    def live_positions(self) -> np.ndarray | None:
        """The positions of live passages, sorted; None when no position is deleted."""
        if all(view.deleted is None for view in self.views):
            return None
        return np.concatenate([view.live_positions() + start for view, start in zip(self.views, self.offsets)])

    def row_at(self, positions: np.ndarray) -> np.ndarray:
        """The store rows at ``positions``."""
        which = np.searchsorted(self.offsets, positions, side="right") - 1
        out = np.empty(len(positions), np.int64)
        for number in np.unique(which):
            here = which == number
            out[here] = self.views[number].segment.rows[positions[here] - self.offsets[number]]
        return out

    def positions_of(self, rows: np.ndarray) -> np.ndarray:
        """The sorted positions of those ``rows`` (sorted) that are live here."""
        found = []
        for view, start in zip(self.views, self.offsets):
            _, at = view.positions_of(rows)
            found.append(at + start)
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    # -- what a search reads --------------------------------------------------------

    def collection(self, question_terms: list[str]) -> Collection:
        """BM25's statistics over every live passage, for ``question_terms``."""
        passages = self.passages
        length = sum(view.live_length for view in self.views)
        average = length / passages if passages and length else 1.0
        distinct = set(question_terms)
        frequency = {t: sum(view.frequency(t) for view in self.views) for t in distinct}
        return Collection(passages, average, {t: float(idf(f, passages)) for t, f in frequency.items()}, frequency)

    def idf(self, question_terms: list[str]) -> dict[str, float]:
        """Each term's IDF over the live passages (0 for a term none holds)."""
        collection = self.collection(question_terms)
        return {t: collection.idf[t] if collection.frequency[t] else 0.0 for t in question_terms}

    def dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> Scored:
        """The ``k`` live positions nearest ``vector`` (among ``allowed``, sorted, if given)."""
        parts = []
        for start, view, selection in self._dense_parts(allowed):
            (scores,), (positions,) = view.segment.vectors.search(vector[np.newaxis], k, selection)
            found = positions >= 0
            parts.append(Scored(positions[found] + start, scores[found]))
        return _best(parts, k)

    def dense_scores(self, vector: np.ndarray, depth: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Every position's dense score (-inf where unknown: deleted, or beyond an IVF
        segment's best ``depth``)."""
        out = np.full(self.size, -np.inf, np.float32)
        for start, view, selection in self._dense_parts(allowed):
            out[start : start + view.size] = view.segment.vectors.scores(vector[np.newaxis], depth, selection)[0]
        return out

    def lexical(self, question_terms: list[str], k: int, allowed: np.ndarray | None = None) -> Scored:
        """The ``k`` best live positions by BM25 (among ``allowed``, sorted, if given)."""
        collection = self.collection(question_terms)
        parts: list[Scored] = []
        floor = 0.0  # the k-th best score of the segments before: a later passage must beat it
        for number, (view, local) in enumerate(self._each(allowed)):
            if not view.live or (local is not None and not len(local)):
                continue
            question = QuestionTerms.of(view.segment.lexical, question_terms, collection)
            scores, positions = view.segment.lexical.search(question, k, view.deleted, local, floor)
            parts.append(Scored(positions + self.offsets[number], scores))
            found = np.concatenate([part.scores for part in parts])
            if len(found) >= k:  # just below, since the scores were rounded to float32
                floor = float(np.partition(found, len(found) - k)[len(found) - k]) * (1 - 1e-6)
        return _best(parts, k)

    def lexical_at(self, question_terms: list[str], positions: np.ndarray) -> np.ndarray:
        """The BM25 scores of the sorted ``positions``."""
        collection = self.collection(question_terms)
        scores = [view.segment.lexical.scores_at(QuestionTerms.of(view.segment.lexical, question_terms, collection),
                                                 local) for view, local in self._each(positions) if len(local)]
        return np.concatenate(scores) if scores else np.zeros(0)

    def lexical_scores(self, question_terms: list[str]) -> np.ndarray:
        """Every position's BM25 score (0 where no term matches; deleted ones are scored too)."""
        collection = self.collection(question_terms)
        scores = [view.segment.lexical.scores(QuestionTerms.of(view.segment.lexical, question_terms, collection))
                  for view in self.views]
        return np.concatenate(scores) if scores else np.zeros(0)

    def _dense_parts(self, allowed: np.ndarray | None):
        """(first position, view, what FAISS may return) of each segment with something to search."""
        for number, (view, local) in enumerate(self._each(allowed)):
            selection = view.selection if local is None else Selection.of_positions(local, view.size)
            if view.live and (selection is None or selection.count):
                yield int(self.offsets[number]), view, selection

    def _each(self, positions: np.ndarray | None):
        """Each view, with those of the sorted ``positions`` it holds as its own positions
        (None for every view when ``positions`` is None)."""
        for number, view in enumerate(self.views):
            if positions is None:
                yield view, None
            else:
                start, end = self.offsets[number], self.offsets[number + 1]
                lo, hi = np.searchsorted(positions, [start, end])
                yield view, positions[lo:hi] - start

    # -- how it changes -------------------------------------------------------------

    def changed(self, removed_rows: np.ndarray, added: list[Segment], generation: int, documents: int) -> Snapshot:
        """This snapshot with ``added`` segments after its own, then ``removed_rows``
        deleted (from any of them)."""
        removed_rows = np.unique(np.asarray(removed_rows, np.int64))
        views = []
        for view in [*self.views, *(SegmentView(segment) for segment in added if len(segment))]:
            _, at = view.positions_of(removed_rows)
            views.append(view.without(at) if len(at) else view)
        return replace(self, generation=generation, documents=documents, views=tuple(views))

    def merged(self, replaced: list[SegmentView], segment: Segment) -> Snapshot | None:
        """This snapshot with ``segment`` (a merge of ``replaced``) in their place, keeping
        what was deleted from them since; None if they are no longer all here."""
        names = [view.segment.name for view in replaced]
        current = [view.segment.name for view in self.views]
        if not names or names[0] not in current:
            return None
        first = current.index(names[0])
        if current[first : first + len(names)] != names:
            return None
        now = self.views[first : first + len(names)]
        since = np.concatenate([new.segment.rows[_newly_deleted(old, new)] for old, new in zip(replaced, now)])
        view = SegmentView(segment)
        _, at = view.positions_of(since)
        view = view.without(at) if len(at) else view
        middle = (view,) if len(segment) else ()
        return replace(self, views=self.views[:first] + middle + self.views[first + len(names):])


def _newly_deleted(old: SegmentView, new: SegmentView) -> np.ndarray:
    """Positions ``new`` has deleted that ``old`` (the same segment, earlier) had not."""
    if new.deleted is None:
        return np.zeros(0, np.int64)
    before = old.deleted if old.deleted is not None else np.zeros(new.size, dtype=bool)
    return np.flatnonzero(new.deleted & ~before)


def _best(parts: list[Scored], k: int) -> Scored:
    """The ``k`` best of several segments' results; ties to the lower position."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return Scored(np.zeros(0, np.int64), np.zeros(0, np.float32))
    if len(parts) == 1:
        return parts[0].top(k)
    positions = np.concatenate([part.ids for part in parts])
    scores = np.concatenate([part.scores for part in parts])
    order = np.lexsort((positions, -scores))[:k]
    return Scored(positions[order], scores[order])
