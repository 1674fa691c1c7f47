"""BM25 over passage terms, one segment of passages at a time.

Scores are Lucene's BM25 (as Pyserini and bm25s compute it) with statistics of the
whole collection: a term's IDF counts the live passages of every segment that hold
it, and lengths are normalised by the average over all of them, so a passage scores
the same whichever segment holds it. A segment keeps raw term counts, by passage and
by term, and weighs the postings a question reads when it reads them; its arrays are
saved as plain ``.npy`` files (no pickle) and opened memory-mapped.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import overload

import numpy as np
from scipy import sparse

from qa.chunking import SECTION_SEPARATOR
from qa.memory import release_pages
from qa.tokens import terms
from qa.topk import best_positions

# The files of a saved segment begin so (lexical-counts.npy, ...).
LEXICAL = "lexical"
# MaxScore (LexicalSegment.search) stops looking for candidates once their postings
# pass 1/SPARSE_SHARE of the passages: summing every posting into one array is then
# cheaper (python -m bench.hybrid_at_scale).
SPARSE_SHARE = 8
# Postings weighed at a time when a segment is built (what its temporaries hold).
BEST_CHUNK = 1 << 22
# Postings a merge joins at a time, passage by passage and then term by term (save_joined):
# its temporaries hold about 100 MB.
JOIN_POSTINGS = 1 << 22
# Postings cast to float32 at a time, in place (16 MB).
CAST_CHUNK = 1 << 22
# Passages in reach above 1/MASK_SHARE of a segment are read off the scratch array of
# every position rather than sorted; candidates above 1/SLOT_SHARE of a term's postings
# are found in them through a slot array rather than by binary search (chosen on
# python -m bench.segments at a million passages).
MASK_SHARE = 64
SLOT_SHARE = 4


@dataclass(frozen=True)
class LexicalSettings:
    """How passages are scored by BM25; recorded with each derived index.

    Chosen on SciFact train and SQuAD-dev (docs/EVALUATION.md): Pyserini's k1 and b,
    and the document's title counted in every passage, as a title field would be;
    likewise the headings of the passage's section (on documentation pages,
    docs/EVALUATION.md).
    """

    k1: float = 0.9
    b: float = 0.4
    title_in_every_passage: bool = True
    section_in_every_passage: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def passage_terms(text: str, title: str, settings: LexicalSettings = LexicalSettings(), section: str = "") -> list[str]:
    """The terms BM25 indexes for a passage: its own, plus its title's and its section's
    headings' (``section`` is a path from ``chunking``), each where the text lacks it."""
    headers = [title] if settings.title_in_every_passage else []
    if settings.section_in_every_passage and section:
        headers += section.split(SECTION_SEPARATOR)[1:]  # the path begins with the title
    lowered = text.lower()
    added = [word for header in headers if header and header.lower() not in lowered for word in _terms_of(header)]
    return added + terms(text)


@functools.lru_cache(maxsize=4096)
def _terms_of(header: str) -> tuple[str, ...]:
    """A title's or heading's terms: the same for every passage under it."""
    return tuple(terms(header))


def _float32_in_place(values: np.ndarray) -> np.ndarray:
    """Integer ``values`` of 32 bits as float32 in their own memory, ``CAST_CHUNK`` at a
    time: ``astype`` would hold both copies of a million passages' postings at once."""
    if values.dtype.itemsize != 4:
        return values.astype(np.float32)
    cast = values.view(np.float32)
    for first in range(0, len(values), CAST_CHUNK):
        cast[first : first + CAST_CHUNK] = values[first : first + CAST_CHUNK]  # numpy copies overlapping input
    return cast


def _best_saturation(postings: sparse.csc_matrix, lengths: np.ndarray, average: float,
                     settings: LexicalSettings) -> np.ndarray:
    """Each term's highest ``tf / (tf + k1·(1 - b + b·length/average))``, computed over
    runs of whole columns of at most ``BEST_CHUNK`` postings (bounded temporaries)."""
    indptr = postings.indptr
    width = len(indptr) - 1
    best = np.zeros(width, np.float32)
    k1, b = settings.k1, settings.b
    for first, last in _column_runs(indptr, BEST_CHUNK):
        lo, hi = indptr[first], indptr[last]
        tf = postings.data[lo:hi]
        norm = np.float32(k1 * (1 - b)) + np.float32(k1 * b / average) * lengths[postings.indices[lo:hi]]
        saturation = tf / (tf + norm)
        starts, ends = indptr[first:last] - lo, indptr[first + 1 : last + 1] - lo
        nonempty = ends > starts
        if nonempty.any():
            best[first:last][nonempty] = np.maximum.reduceat(saturation, starts[nonempty])
    return best


def _column_runs(indptr: np.ndarray, postings: int) -> Iterator[tuple[int, int]]:
    """Runs ``first..last-1`` of whole columns, in order, each of at most ``postings``
    postings (or of one column holding more)."""
    width, first = len(indptr) - 1, 0
    while first < width:
        last = min(width, max(first + 1, int(np.searchsorted(indptr, indptr[first] + postings, side="right")) - 1))
        yield first, last
        first = last


def idf(frequency: np.ndarray | int, passages: int) -> np.ndarray:
    """Lucene's IDF of terms held by ``frequency`` of ``passages`` passages."""
    return np.log(1 + (passages - np.asarray(frequency, np.float64) + 0.5) / (np.asarray(frequency) + 0.5))


@dataclass(frozen=True)
class Collection:
    """What BM25 needs of every live passage: how many, their average length, and each
    question term's IDF and frequency (how many hold it)."""

    passages: int
    average_length: float
    idf: dict[str, float]
    frequency: dict[str, int]


@dataclass(frozen=True)
class QuestionTerms:
    """A question's terms as one segment knows them: its columns and each one's IDF,
    in the question's order (a repeated term counts each time, as in bm25s)."""

    columns: np.ndarray
    idf: np.ndarray
    average_length: float

    @classmethod
    def of(cls, segment: LexicalSegment, question: list[str], collection: Collection) -> QuestionTerms:
        known = [t for t in question if t in segment.columns]
        return cls(np.array([segment.columns[t] for t in known], np.int64),
                   np.array([collection.idf[t] for t in known], np.float64), collection.average_length)


@dataclass(frozen=True, eq=False)  # holds arrays
class CountedTerms:
    """Passages' terms, each distinct term of a passage once, with how often it occurs:
    passage ``i`` holds the words numbered ``ids[ends[i-1]:ends[i]]`` in ``vocabulary``,
    ``counts[ends[i-1]:ends[i]]`` times each. Documents prepared together share one
    vocabulary: what ingest's worker processes send back names each word once, and a
    segment looks each up once, not once for every passage that holds it."""

    vocabulary: Words
    ids: np.ndarray  # int32
    counts: np.ndarray  # int32
    ends: np.ndarray  # int64

    @classmethod
    def of(cls, passages: Iterable[list[str]], vocabulary: Words | None = None) -> CountedTerms:
        """The counted terms of passages given as their terms, in order, repeats kept;
        words new to ``vocabulary`` (else to a vocabulary of their own) are added to it."""
        vocabulary = Words() if vocabulary is None else vocabulary
        ids: list[int] = []
        counts: list[int] = []
        ends: list[int] = []
        for passage in passages:
            counted = collections.Counter(passage)
            ids += map(vocabulary.__getitem__, counted)
            counts += counted.values()
            ends.append(len(ids))
        return cls(vocabulary, np.array(ids, np.int32), np.array(counts, np.int32), np.array(ends, np.int64))

    def __len__(self) -> int:
        return len(self.ends)

    def split(self, sizes: list[int]) -> list[CountedTerms]:
        """These passages as runs of ``sizes`` passages in turn, each a view of these
        arrays in this vocabulary (a worker counts a group's passages at once, and sends
        its arrays once)."""
        if sum(sizes) != len(self):
            raise ValueError(f"{sum(sizes)} passages asked for, of {len(self)}")
        bounds = np.concatenate([[0], self.ends]).tolist()
        runs, first = [], 0
        for size in sizes:
            begin, end = bounds[first], bounds[first + size]
            runs.append(CountedTerms(self.vocabulary, self.ids[begin:end], self.counts[begin:end],
                                     self.ends[first : first + size] - begin))
            first += size
        return runs

    def expanded(self) -> list[str]:
        """Each passage's terms joined by spaces, each as often as it occurs there (in
        no particular order: what a bag of words needs)."""
        words = self.vocabulary.listed()
        return [" ".join(words[number] for number, count in zip(self.ids[begin:end].tolist(),
                                                                self.counts[begin:end].tolist())
                         for _ in range(count))
                for begin, end in zip([0, *self.ends[:-1].tolist()], self.ends.tolist())]


class Words(dict):
    """Words numbered from 0 in the order they are first looked up: a new word takes
    the next number. Iterated, the words in that order."""

    def __missing__(self, word: str) -> int:
        number = self[word] = len(self)
        return number

    def listed(self) -> list[str]:
        """The words in number order, listed once for as many as it holds: the documents
        of a group, each asking in turn, do not list the group's words again."""
        listed: list[str] | None = getattr(self, "_listed", None)
        if listed is None or len(listed) != len(self):
            listed = self._listed = list(self)
        return listed


class TermCounter:
    """Counts passages' terms into CSR rows as they come, with a vocabulary that grows."""

    def __init__(self) -> None:
        self.columns: dict[str, int] = Words()
        self._parts: list[sparse.csr_matrix] = []
        self.rows = 0

    def add(self, parts: list[CountedTerms]) -> None:
        """Count the passages of ``parts``: one lookup per word of each vocabulary they use,
        and a few array operations for all the parts at once (a part is a document, and
        one-paragraph documents come thousands to a write)."""
        if not parts:
            return
        # Each vocabulary's numbers as this counter's columns, one table after another.
        tables: list[np.ndarray] = []
        bases: dict[int, int] = {}  # where each vocabulary's table begins, by identity
        for vocabulary, ids in _ids_by_vocabulary(parts):
            bases[id(vocabulary)] = sum(len(table) for table in tables)
            tables.append(self._columns_of(vocabulary, ids))
        sizes = [len(part.ids) for part in parts]
        ids = np.concatenate([part.ids for part in parts]) + np.repeat(
            [bases[id(part.vocabulary)] for part in parts], sizes)
        rows_per_part = [len(part.ends) for part in parts]
        firsts = np.cumsum(sizes) - sizes  # where each part's ids begin among all of them
        indptr = np.concatenate([[0], np.concatenate([part.ends for part in parts]) + np.repeat(firsts, rows_per_part)])
        counted = sparse.csr_matrix((np.concatenate([part.counts for part in parts]),
                                     np.concatenate(tables)[ids], indptr),
                                    shape=(len(indptr) - 1, len(self.columns)))
        counted.sort_indices()
        self._parts.append(counted)
        self.rows += counted.shape[0]

    def _columns_of(self, vocabulary: Words, ids: list[np.ndarray]) -> np.ndarray:
        """The column of each word of ``vocabulary`` that ``ids`` use (-1 for the others,
        which take none)."""
        used = np.zeros(len(vocabulary), bool)
        used[np.concatenate(ids)] = True
        words = vocabulary.listed()
        numbers = np.flatnonzero(used)
        columns = np.full(len(vocabulary), -1, np.int32)
        columns[numbers] = np.fromiter(map(self.columns.__getitem__, (words[n] for n in numbers.tolist())),
                                       np.int32, len(numbers))
        return columns

    def save(self, settings: LexicalSettings, directory: Path) -> None:
        """Write everything counted into ``directory`` as ``LexicalSegment.save`` would
        write its segment, without making it: the postings by term are gathered from the
        saved counts in bands, as a merge gathers them (sealing a bulk load's segment of
        200,000 passages held three copies of its counts at once, made in memory)."""
        parts = self._widened()
        held = np.concatenate([np.diff(part.indptr) for part in parts] or [np.zeros(0, np.int64)])
        _save_counted(directory, list(self.columns), held, parts, settings)

    def segment(self, settings: LexicalSettings) -> LexicalSegment:
        """Everything counted so far as one segment."""
        parts = self._widened()
        counts = sparse.vstack(parts, format="csr", dtype=np.int32) if parts else \
            sparse.csr_matrix((0, len(self.columns)), dtype=np.int32)
        return LexicalSegment.of_counts(list(self.columns), counts, settings)

    def _widened(self) -> list[sparse.csr_matrix]:
        """The parts counted, each made as wide as the vocabulary has grown since."""
        for part in self._parts:
            part.resize((part.shape[0], len(self.columns)))
        return self._parts


class SavedVocabulary(Sequence[str]):
    """A saved segment's terms, one a line, kept as that text until a term is asked for:
    a bulk ingest seals segments that it never searches, and a million one-paragraph
    files (a term of its own in each file's name) give them a million terms."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._size = text.count("\n") + 1 if text else 0

    @functools.cached_property
    def _terms(self) -> list[str]:
        terms, self._text = (self._text.split("\n") if self._text else []), ""
        return terms

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._terms[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)


def _ids_by_vocabulary(parts: list[CountedTerms]) -> list[tuple[Words, list[np.ndarray]]]:
    """Each distinct vocabulary of ``parts`` (by identity), with the ids of the parts using it."""
    found: dict[int, tuple[Words, list[np.ndarray]]] = {}
    for part in parts:
        found.setdefault(id(part.vocabulary), (part.vocabulary, []))[1].append(part.ids)
    return list(found.values())


class LexicalSegment:
    """BM25 term counts of one segment's passages (positions ``0..len-1``)."""

    def __init__(self, vocabulary: Sequence[str], counts: sparse.csr_matrix, postings: sparse.csc_matrix,
                 lengths: np.ndarray, best: np.ndarray, settings: LexicalSettings) -> None:
        """``vocabulary``: the terms in column order; ``postings``: the counts by term, as
        float32; ``best``: each term's highest ``tf / (tf + k1·(1 - b + b·length/average))``
        at this segment's own average length."""
        self.settings = settings
        self.vocabulary = vocabulary
        self.counts = counts
        self._postings = postings
        self.lengths = lengths
        self._best = best
        self.total_length = int(lengths.sum(dtype=np.float64))
        self.frequency = np.diff(postings.indptr).astype(np.int64)  # passages holding each term
        self.own_average = self.total_length / len(lengths) if len(lengths) and self.total_length else 1.0

    @functools.cached_property
    def columns(self) -> dict[str, int]:
        """Each term's column, made when first asked for: a bulk ingest, which seals
        segments and never searches them, holds no such table of their terms."""
        return {term: column for column, term in enumerate(self.vocabulary)}

    @classmethod
    def of_counts(cls, vocabulary: list[str], counts: sparse.csr_matrix, settings: LexicalSettings) -> LexicalSegment:
        """The segment of ``counts`` (int32, a row per passage), with at most one more
        copy of them made at a time: a merge builds a million passages' postings so."""
        lengths = np.asarray(counts.sum(axis=1), dtype=np.int64).ravel().astype(np.float32)  # exact below 2**24
        postings = counts.tocsc()
        postings.sort_indices()
        postings.data = _float32_in_place(postings.data)
        total = float(lengths.sum(dtype=np.float64))
        average = total / len(lengths) if len(lengths) and total else 1.0  # as own_average
        return cls(vocabulary, counts, postings, lengths, _best_saturation(postings, lengths, average, settings),
                   settings)

    @classmethod
    def build(cls, passages: list[list[str]], settings: LexicalSettings = LexicalSettings()) -> LexicalSegment:
        counter = TermCounter()
        counter.add([CountedTerms.of(passages)])
        return counter.segment(settings)

    @classmethod
    def load(cls, directory: Path, settings: LexicalSettings) -> LexicalSegment:
        """Open what ``save`` wrote in ``directory``, its arrays memory-mapped: processes
        serving the same files share their pages."""
        array = functools.partial(_mapped, directory)
        vocabulary = SavedVocabulary((directory / f"{LEXICAL}-vocabulary.txt").read_text(encoding="utf-8"))
        rows, width = (int(n) for n in array("shape"))
        counts = sparse.csr_matrix((array("counts"), array("indices"), array("indptr")), shape=(rows, width))
        postings = sparse.csc_matrix((array("tf"), array("rows"), array("columns")), shape=(rows, width))
        if not len(vocabulary) == width == len(array("best")) or len(array("lengths")) != rows:
            raise ValueError("its vocabulary and arrays differ in size")
        return cls(vocabulary, counts, postings, array("lengths"), array("best"), settings)

    def save(self, directory: Path) -> None:
        """Write the segment into ``directory`` as plain arrays (``.npy``) and its
        vocabulary as text, one term a line (terms are words: no line breaks)."""
        (directory / f"{LEXICAL}-vocabulary.txt").write_text("\n".join(self.vocabulary), encoding="utf-8")
        for name, values in {
            "shape": np.array(self.counts.shape), "counts": self.counts.data, "indices": self.counts.indices,
            "indptr": self.counts.indptr, "tf": self._postings.data, "rows": self._postings.indices,
            "columns": self._postings.indptr, "lengths": self.lengths, "best": self._best,
        }.items():
            _save_array(directory, name, values)

    def __len__(self) -> int:
        return self.counts.shape[0]

    def term_totals(self, positions: np.ndarray) -> tuple[np.ndarray, int]:
        """How many of ``positions`` hold each term, and their summed length: what
        dropping them takes from the collection's statistics."""
        rows = self.counts[positions]
        length = int(self.lengths[positions].sum(dtype=np.float64))
        return np.bincount(rows.indices, minlength=len(self.vocabulary)), length

    def scores(self, question: QuestionTerms) -> np.ndarray:
        """Every position's BM25 score (0 where no term matches), as float64."""
        positions, values = self._postings_of(question, np.arange(len(question.columns)))
        # astype: bincount gives integers where the terms' passages are all gone
        return np.bincount(positions, weights=values, minlength=len(self)).astype(np.float64, copy=False)

    def scores_at(self, question: QuestionTerms, positions: np.ndarray) -> np.ndarray:
        """The BM25 scores of the sorted ``positions``, as ``scores`` gives them."""
        return self._scores_of(np.asarray(positions, np.int64), question)

    def search(self, question: QuestionTerms, k: int, dead: np.ndarray | None = None,
               allowed: np.ndarray | None = None, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, positions) with a score above ``floor`` (and 0), best first;
        ties go to the lower position. Positions ``dead`` marks (deleted passages) never
        count. The same ranking and scores as ``scores`` gives, found by MaxScore where
        it can (``_maxscore``). With ``allowed`` (sorted live positions), the best of
        those. ``floor`` is what earlier segments' k-th best already scored."""
        above = max(0.0, floor)
        if allowed is not None:
            among = self.scores(question)[allowed]
            top = best_positions(among, k, above=above)
            return among[top].astype(np.float32), allowed[top].astype(np.int64)
        found = self._maxscore(question, k, dead, above)
        if found is None:  # no pruning: summing every posting at once is cheapest
            every = self.scores(question)
            if dead is not None:
                every[dead] = 0.0
            top = best_positions(every, k, above=above)
            return every[top].astype(np.float32), top.astype(np.int64)
        candidates, scores = found
        top = best_positions(scores, k, above=above)
        return scores[top].astype(np.float32), candidates[top].astype(np.int64)

    def _span(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, tf) of one term's postings, positions in order: views, nothing computed."""
        span = slice(self._postings.indptr[column], self._postings.indptr[column + 1])
        return self._postings.indices[span], self._postings.data[span]

    def _weights(self, positions: np.ndarray, tf: np.ndarray, idf: float, average: float) -> np.ndarray:
        """BM25 weights of one term's postings at ``positions`` with those ``tf``."""
        k1, b = self.settings.k1, self.settings.b
        norm = np.float32(k1 * (1 - b)) + np.float32(k1 * b / average) * self.lengths[positions]
        return np.float32(idf) * tf / (tf + norm)

    def _postings_of(self, question: QuestionTerms, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, weights) of every posting of the question's terms ``which``, term after term."""
        if not len(which):
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        parts = []
        for i in which:
            positions, tf = self._span(int(question.columns[i]))
            parts.append((positions, self._weights(positions, tf, float(question.idf[i]), question.average_length)))
        return np.concatenate([p for p, _ in parts]), np.concatenate([w for _, w in parts])

    def _scores_of(self, candidates: np.ndarray, question: QuestionTerms) -> np.ndarray:
        """The BM25 scores of the sorted positions ``candidates``, each term's postings
        weighed only where they hold a candidate, in the question's order (so the sums
        equal ``scores``)."""
        found = np.zeros(len(candidates))
        for column, term_idf in zip(question.columns, question.idf):
            positions, tf = self._span(int(column))
            hit, at = _located(candidates, positions)
            found[hit] += self._weights(candidates[hit], tf[at], float(term_idf), question.average_length)
        return found

    def _maxscore(self, question: QuestionTerms, k: int, dead: np.ndarray | None,
                  floor: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
        """The passages that can reach the top ``k`` (MaxScore), sorted, with their
        scores; None when the terms to read hold over 1/SPARSE_SHARE of the passages.

        Terms are taken by their best possible contribution, highest first, and their
        weights added term at a time into a scratch array over the positions: partial
        scores, each at most the passage's score, so the k-th best of a live passage
        (or ``floor``, if higher) is a threshold the top ``k`` reach. Once what the
        terms not taken could add together falls below it, a passage holding none of
        the terms taken cannot place, and of those holding one only the passages whose
        partial score plus that much reach it can; the other terms are read only where
        they hold one of those (``_reaching``), and what stays in reach is scored in full
        (the sums of ``scores``, term by term in the question's order). A term's
        bound is its best weight at this segment's average length, raised by the ratio
        of the collection's average to it where that is larger (weights grow at most
        so much with the average)."""
        if not len(question.columns):
            return None
        raise_by = max(1.0, question.average_length / self.own_average)
        bounds = question.idf * self._best[question.columns] * raise_by
        order = np.argsort(-bounds, kind="stable")
        untaken = np.concatenate([np.cumsum(bounds[order][::-1])[::-1], [0.0]])  # what terms order[i:] add at most
        partial = _scratch_array("partial", len(self), np.float32)
        touched = _scratch_array("touched", len(self), np.int32)  # [:held] the positions partial holds, each once
        threshold, taken, read, held = floor, 0, 0, 0
        try:
            while taken < len(order) and untaken[taken] >= threshold * _MARGIN:
                column = int(question.columns[order[taken]])
                positions, tf = self._span(column)
                read += len(positions)
                if read * SPARSE_SHARE > len(self):
                    return None  # summing every posting at once is cheaper
                new = positions[partial[positions] == 0]
                touched[held : held + len(new)] = new
                held += len(new)
                partial[positions] += self._weights(positions, tf, float(question.idf[order[taken]]),
                                                    question.average_length)
                taken += 1
                threshold = max(threshold, _kth_best(partial, touched[:held], k, dead))
            reach = _in_reach(partial, touched[:held], len(self), threshold * _MARGIN - untaken[taken])
            sums = partial[reach].astype(np.float64)
        finally:
            partial[touched[:held]] = 0.0
        candidates = self._reaching(question, order[taken:], untaken[taken + 1:], reach, sums, threshold * _MARGIN)
        scores = self._scores_of(candidates, question)
        if dead is not None:
            scores[dead[candidates]] = 0.0
        return candidates, scores

    def _reaching(self, question: QuestionTerms, rest: np.ndarray, bounds: np.ndarray, held: np.ndarray,
                  sums: np.ndarray, threshold: float) -> np.ndarray:
        """Of the sorted positions ``held`` with partial scores ``sums``, those that can
        still reach ``threshold`` as the question's terms ``rest`` are added in turn,
        where the terms after the i-th add at most ``bounds[i]`` together: each term is
        read only where it holds a passage still in reach, and those out of reach dropped."""
        for i, term in enumerate(rest):
            positions, tf = self._span(int(question.columns[term]))
            hit, at = _located(held, positions)
            sums[hit] += self._weights(held[hit], tf[at], float(question.idf[term]), question.average_length)
            reach = sums + bounds[i] >= threshold
            held, sums = held[reach], sums[reach]
        return held.astype(np.int64)


# Partial scores are float32 sums and bounds rounded weights: a passage is dropped only
# where it falls short of the threshold by more than either could err.
_MARGIN = 1 - 1e-4


def _in_reach(partial: np.ndarray, touched: np.ndarray, size: int, least: float) -> np.ndarray:
    """The positions ``touched`` (each once) whose ``partial`` score is at least ``least``
    (and above 0), sorted: many are read off the whole array in order, which is quicker
    than sorting them."""
    if len(touched) * MASK_SHARE > size:
        return np.flatnonzero(partial[:size] >= least if least > 0 else partial[:size] > 0)
    return np.sort(touched[partial[touched] >= least])


def _kth_best(partial: np.ndarray, held: np.ndarray, k: int, dead: np.ndarray | None) -> float:
    """The ``k``-th best partial score of the live positions ``held``, 0 below ``k`` of them."""
    values = partial[held] if dead is None else partial[held[~dead[held]]]
    return float(np.partition(values, len(values) - k)[len(values) - k]) if len(values) >= k else 0.0


_scratch = threading.local()  # each search thread's own arrays over the positions


def _scratch_array(name: str, size: int, dtype: type) -> np.ndarray:
    """This thread's array ``name`` of at least ``size`` zeros (or what its last use
    left, where that is read only after it is written: ``_located``'s slots, the
    positions ``_maxscore`` touched), grown when too short."""
    found = getattr(_scratch, name, None)
    if found is None or len(found) < size:
        found = np.zeros(max(size, 2 * len(found) if found is not None else 0), dtype)
        setattr(_scratch, name, found)
    return found


def _located(candidates: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which sorted ``candidates`` occur in the sorted ``positions``, and where.

    Few candidates against many postings: binary search. Many: each posting writes
    its index into a slot array over the positions, which each candidate then reads
    (slots left from earlier calls are caught by checking the posting they name), a
    pass over both rather than a search per candidate."""
    if not len(positions) or not len(candidates):
        return np.zeros(len(candidates), dtype=bool), np.zeros(0, np.int64)
    if len(candidates) * SLOT_SHARE < len(positions):
        at = np.minimum(np.searchsorted(positions, candidates), len(positions) - 1)
    else:
        size = int(max(positions[-1], candidates[-1])) + 1
        slots = _scratch_array("slots", size, np.int32)
        slots[positions] = _counting(len(positions))
        at = np.minimum(slots[candidates], len(positions) - 1)
        at = np.maximum(at, 0)
    hit = positions[at] == candidates
    return hit, at[hit]


_count = np.arange(1 << 16, dtype=np.int32)  # 0, 1, 2, ... read, never written


def _counting(n: int) -> np.ndarray:
    """``np.arange(n)`` as int32, from one array kept for it (grown when too short)."""
    global _count
    if len(_count) < n:
        _count = np.arange(max(n, 2 * len(_count)), dtype=np.int32)
    return _count[:n]


def save_joined(parts: list[tuple[LexicalSegment, np.ndarray]], settings: LexicalSettings, directory: Path) -> None:
    """Write into ``directory``, as ``LexicalSegment.save`` does, one segment of the
    given positions of each segment, in order (a merge).

    The joined counts go to their files ``JOIN_POSTINGS`` at a time; the postings by
    term are then gathered from those files one band of terms at a time, so a merge
    holds about that many postings at once rather than every one twice over."""
    columns: dict[str, int] = {}
    remaps = [np.array([columns.setdefault(t, len(columns)) for t in segment.vocabulary], np.int32)
              for segment, _ in parts]
    held = np.concatenate([np.diff(segment.counts.indptr)[positions] for segment, positions in parts] or [[]])

    def joined() -> Iterator[sparse.csr_matrix]:
        for (segment, positions), remap in zip(parts, remaps):
            yield from _rows_remapped(segment.counts, positions, remap)
            release_pages(segment.counts.data)  # read once: a merge need not keep them
            release_pages(segment.counts.indices)

    _save_counted(directory, list(columns), held, joined(), settings)


def _save_counted(directory: Path, vocabulary: list[str], held: np.ndarray, counted: Iterable[sparse.csr_matrix],
                  settings: LexicalSettings) -> None:
    """Write into ``directory``, as ``LexicalSegment.save`` does, the segment whose rows
    are those of ``counted`` in turn (int32 counts, columns sorted, numbered in
    ``vocabulary``), ``held[i]`` terms in row ``i``: the counts as they come, then the
    postings by term in bands (``_save_by_term``)."""
    indptr = np.concatenate([[0], np.cumsum(held, dtype=np.int64)])
    rows, width, postings = len(held), len(vocabulary), int(indptr[-1])
    kind = np.int32 if max(rows, width, postings) < 2**31 else np.int64  # as scipy keeps them
    lengths, frequency = np.empty(rows, np.float32), np.zeros(width, np.int64)
    with _npy_in_parts(directory, "counts", np.int32, postings) as write_counts, \
            _npy_in_parts(directory, "indices", np.int32, postings) as write_indices:
        row = 0
        for kept in counted:
            write_counts(kept.data)
            write_indices(kept.indices)
            lengths[row : row + kept.shape[0]] = np.asarray(kept.sum(axis=1), np.int64).ravel()
            frequency += np.bincount(kept.indices, minlength=width)
            row += kept.shape[0]
    for name, values in {"shape": np.array([rows, width]), "indptr": indptr.astype(kind),
                         "lengths": lengths}.items():
        _save_array(directory, name, values)
    total = float(lengths.sum(dtype=np.float64))
    average = total / rows if rows and total else 1.0  # as LexicalSegment.own_average
    by_term = np.concatenate([[0], np.cumsum(frequency)]).astype(kind)
    best = _save_by_term(directory, by_term, lengths, average, settings)
    for name, values in {"columns": by_term, "best": best}.items():
        _save_array(directory, name, values)
    (directory / f"{LEXICAL}-vocabulary.txt").write_text("\n".join(vocabulary), encoding="utf-8")


def _rows_remapped(counts: sparse.csr_matrix, positions: np.ndarray, remap: np.ndarray) -> Iterator[sparse.csr_matrix]:
    """The rows ``positions`` of ``counts``, their columns renumbered by ``remap`` and
    sorted, about ``JOIN_POSTINGS`` at a time."""
    ends = np.cumsum(np.diff(counts.indptr)[positions], dtype=np.int64)  # postings through each row
    first = 0
    while first < len(positions):
        before = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, before + JOIN_POSTINGS, side="right")))
        kept = counts[positions[first:last]]
        if len(remap):
            kept.indices = remap[kept.indices]
            kept.has_sorted_indices = False
            kept.sort_indices()
        yield kept
        first = last


def _save_by_term(directory: Path, by_term: np.ndarray, lengths: np.ndarray, average: float,
                  settings: LexicalSettings) -> np.ndarray:
    """Write the postings by term (tf as float32, and rows) from the saved counts, a
    band of whole terms of about ``JOIN_POSTINGS`` postings at a time, each band
    gathered in one scan of the counts; returns each term's best saturation."""
    data, indices, indptr = (_mapped(directory, name) for name in ("counts", "indices", "indptr"))
    best = np.zeros(len(by_term) - 1, np.float32)
    postings = int(by_term[-1])
    with _npy_in_parts(directory, "tf", np.float32, postings) as write_tf, \
            _npy_in_parts(directory, "rows", by_term.dtype, postings) as write_rows:
        for first, last in _column_runs(by_term, JOIN_POSTINGS):
            band = _band(data, indices, indptr, first, last, by_term)
            write_tf(band.data)
            write_rows(band.indices)
            best[first:last] = _best_saturation(band, lengths, average, settings)
    return best


def _band(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, first: int, last: int,
          by_term: np.ndarray) -> sparse.csc_matrix:
    """Terms ``first..last-1`` of the counts (CSR ``data``, ``indices``, ``indptr``) by
    term, rows ascending, tf as float32: one scan of the counts, ``JOIN_POSTINGS`` at a time."""
    found_rows, found_terms, found_tf = [np.zeros(0, by_term.dtype)], [np.zeros(0, np.int32)], [np.zeros(0, np.int32)]
    for lo in range(0, len(data), JOIN_POSTINGS):
        terms_here = indices[lo : lo + JOIN_POSTINGS]
        hit = np.flatnonzero((terms_here >= first) & (terms_here < last))
        found_rows.append((np.searchsorted(indptr, lo + hit, side="right") - 1).astype(by_term.dtype))
        found_terms.append(terms_here[hit])
        found_tf.append(data[lo : lo + JOIN_POSTINGS][hit])
        release_pages(data)  # each band reads every count once: the map need not keep them
        release_pages(indices)
    order = _stable_order(np.concatenate(found_terms) - first)  # rows stay ascending within a term
    span = (by_term[first : last + 1] - by_term[first]).astype(by_term.dtype)
    return sparse.csc_matrix((np.concatenate(found_tf)[order].astype(np.float32), np.concatenate(found_rows)[order],
                              span), shape=(len(indptr) - 1, last - first))


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """The stable ``argsort`` of ``keys`` (from 0, below 2**32) by numpy's radix sort of
    16-bit keys, in one pass or two (low half, then high): a merge sort of a band's 32-bit
    terms was most of what writing BM25's postings by term cost."""
    if not len(keys) or int(keys.max()) < 1 << 16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    by_low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return by_low[np.argsort((keys[by_low] >> 16).astype(np.uint16), kind="stable")]


@contextlib.contextmanager
def _npy_in_parts(directory: Path, name: str, dtype: type | np.dtype,
                  size: int) -> Iterator[Callable[[np.ndarray], None]]:
    """A function writing consecutive parts of the one-dimensional ``.npy`` file of
    ``size`` values of ``dtype`` that the segment's ``name`` array is saved as; refused
    on closing unless exactly ``size`` values came."""
    path, dtype, written = _array_path(directory, name), np.dtype(dtype), 0
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {
            "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (size,)})

        def write(values: np.ndarray) -> None:
            nonlocal written
            np.ascontiguousarray(values, dtype).tofile(file)
            written += len(values)

        yield write
    if written != size:
        raise ValueError(f"{path}: {written} values written of {size}")


def _array_path(directory: Path, name: str) -> Path:
    """The file a segment's array ``name`` is saved in."""
    return directory / f"{LEXICAL}-{name}.npy"


def _save_array(directory: Path, name: str, values: np.ndarray) -> None:
    np.save(_array_path(directory, name), np.asarray(values), allow_pickle=False)


def _mapped(directory: Path, name: str) -> np.ndarray:
    """A saved array, memory-mapped: a plain view of the map (numpy's memmap class costs
    a Python call per slice)."""
    return np.asarray(np.load(_array_path(directory, name), mmap_mode="r", allow_pickle=False))
