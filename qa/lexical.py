"""BM25 over passage terms, one segment of passages at a time.

Scores are Lucene's BM25 (as Pyserini and bm25s compute it) with statistics of the
whole collection: a term's IDF counts the live passages of every segment that hold
it, and lengths are normalised by the average over all of them, so a passage scores
the same whichever segment holds it. A segment keeps raw term counts, by passage and
by term, and weighs the postings a question reads when it reads them; its arrays are
saved as plain ``.npy`` files (no pickle) and opened memory-mapped.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from qa.chunking import SECTION_SEPARATOR
from qa.tokens import terms
from qa.topk import best_positions

# The files of a saved segment begin so (lexical-counts.npy, ...).
LEXICAL = "lexical"
# MaxScore (LexicalSegment.search) stops looking for candidates once their postings
# pass 1/SPARSE_SHARE of the passages: summing every posting into one array is then
# cheaper (python -m bench.hybrid_at_scale).
SPARSE_SHARE = 8


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


class TermCounter:
    """Counts passages' terms into CSR rows as they come, with a vocabulary that grows."""

    def __init__(self) -> None:
        self.columns: dict[str, int] = {}
        self._parts: list[sparse.csr_matrix] = []
        self.rows = 0

    def add(self, passages: list[list[str]]) -> None:
        """Count ``passages`` (their terms) in one sort."""
        columns = self.columns
        ids = np.fromiter((columns.setdefault(w, len(columns)) for words in passages for w in words), dtype=np.int64)
        owner = np.repeat(np.arange(len(passages), dtype=np.int64), [len(words) for words in passages])
        pairs, counts = np.unique(owner * (len(columns) + 1) + ids, return_counts=True)
        rows, indices = np.divmod(pairs, len(columns) + 1)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(passages)))])
        self._parts.append(sparse.csr_matrix((counts.astype(np.int32), indices.astype(np.int32), indptr),
                                             shape=(len(passages), len(columns))))
        self.rows += len(passages)

    def segment(self, settings: LexicalSettings) -> LexicalSegment:
        """Everything counted so far as one segment."""
        width = len(self.columns)
        for part in self._parts:
            part.resize((part.shape[0], width))
        counts = sparse.vstack(self._parts, format="csr", dtype=np.int32) if self._parts else \
            sparse.csr_matrix((0, width), dtype=np.int32)
        return LexicalSegment.of_counts(list(self.columns), counts, settings)


class LexicalSegment:
    """BM25 term counts of one segment's passages (positions ``0..len-1``)."""

    def __init__(self, vocabulary: list[str], counts: sparse.csr_matrix, postings: sparse.csc_matrix,
                 lengths: np.ndarray, best: np.ndarray, settings: LexicalSettings) -> None:
        """``postings``: the counts by term, as float32; ``best``: each term's highest
        ``tf / (tf + k1·(1 - b + b·length/average))`` at this segment's own average length."""
        self.settings = settings
        self.vocabulary = vocabulary
        self.columns = {term: column for column, term in enumerate(vocabulary)}
        self.counts = counts
        self._postings = postings
        self.lengths = lengths
        self._best = best
        self.total_length = int(lengths.sum(dtype=np.float64))
        self.frequency = np.diff(postings.indptr).astype(np.int64)  # passages holding each term
        self.own_average = self.total_length / len(lengths) if len(lengths) and self.total_length else 1.0

    @classmethod
    def of_counts(cls, vocabulary: list[str], counts: sparse.csr_matrix, settings: LexicalSettings) -> LexicalSegment:
        lengths = np.asarray(counts.sum(axis=1), dtype=np.int64).ravel().astype(np.float32)  # exact below 2**24
        postings = counts.astype(np.float32).tocsc()
        postings.sort_indices()
        average = lengths.mean() if len(lengths) and lengths.sum() else 1.0
        tf = postings.data
        norm = settings.k1 * (1 - settings.b + settings.b * lengths[postings.indices] / average)
        saturation = (tf / (tf + norm)).astype(np.float32)
        starts, ends = postings.indptr[:-1], postings.indptr[1:]
        held = ends > starts
        best = np.zeros(len(vocabulary), np.float32)
        if held.any():
            best[held] = np.maximum.reduceat(saturation, starts[held])
        return cls(vocabulary, counts, postings, lengths, best, settings)

    @classmethod
    def build(cls, passages: list[list[str]], settings: LexicalSettings = LexicalSettings()) -> LexicalSegment:
        counter = TermCounter()
        counter.add(passages)
        return counter.segment(settings)

    @classmethod
    def joined(cls, parts: list[tuple[LexicalSegment, np.ndarray]], settings: LexicalSettings) -> LexicalSegment:
        """One segment of the given positions of each segment, in order (a merge)."""
        columns: dict[str, int] = {}
        rows = []
        for segment, positions in parts:
            remap = np.array([columns.setdefault(t, len(columns)) for t in segment.vocabulary], np.int32)
            kept = segment.counts[positions]
            rows.append((kept.data, remap[kept.indices] if len(remap) else kept.indices, kept.indptr))
        width = len(columns)
        matrices = [sparse.csr_matrix((d, i, p), shape=(len(p) - 1, width)) for d, i, p in rows]
        counts = sparse.vstack(matrices, format="csr", dtype=np.int32) if matrices else \
            sparse.csr_matrix((0, width), dtype=np.int32)
        counts.sort_indices()
        return cls.of_counts(list(columns), counts, settings)

    @classmethod
    def load(cls, directory: Path, settings: LexicalSettings) -> LexicalSegment:
        """Open what ``save`` wrote in ``directory``, its arrays memory-mapped: processes
        serving the same files share their pages."""
        def array(name: str) -> np.ndarray:
            return np.load(directory / f"{LEXICAL}-{name}.npy", mmap_mode="r", allow_pickle=False)

        vocabulary = (directory / f"{LEXICAL}-vocabulary.txt").read_text(encoding="utf-8").split("\n")
        vocabulary = vocabulary if vocabulary != [""] else []
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
            np.save(directory / f"{LEXICAL}-{name}.npy", np.asarray(values), allow_pickle=False)

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

    def search(self, question: QuestionTerms, k: int, dead: np.ndarray | None = None,
               allowed: np.ndarray | None = None, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, positions) with a score above ``floor`` (and 0), best first;
        ties go to the lower position. Positions ``dead`` marks (deleted passages) never
        count. The same ranking and scores as ``scores`` gives, found by MaxScore where
        it can (``_candidates``). With ``allowed`` (sorted live positions), the best of
        those. ``floor`` is what earlier segments' k-th best already scored."""
        above = max(0.0, floor)
        if allowed is not None:
            among = self.scores(question)[allowed]
            top = best_positions(among, k, above=above)
            return among[top].astype(np.float32), allowed[top].astype(np.int64)
        candidates = self._candidates(question, k, dead, above)
        if candidates is None:  # no pruning: summing every posting at once is cheapest
            every = self.scores(question)
            if dead is not None:
                every[dead] = 0.0
            top = best_positions(every, k, above=above)
            return every[top].astype(np.float32), top.astype(np.int64)
        found = self._scores_of(candidates, question)
        if dead is not None:
            found[dead[candidates]] = 0.0
        top = best_positions(found, k, above=above)
        return found[top].astype(np.float32), candidates[top].astype(np.int64)

    def _weights(self, column: int, idf: float, average: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions, BM25 weights) of one term's postings, positions in order."""
        span = slice(self._postings.indptr[column], self._postings.indptr[column + 1])
        positions = self._postings.indices[span]
        tf = self._postings.data[span]
        k1, b = self.settings.k1, self.settings.b
        norm = np.float32(k1 * (1 - b)) + np.float32(k1 * b / average) * self.lengths[positions]
        return positions, np.float32(idf) * tf / (tf + norm)

    def _postings_of(self, question: QuestionTerms, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, weights) of every posting of the question's terms ``which``, term after term."""
        if not len(which):
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        parts = [self._weights(int(question.columns[i]), float(question.idf[i]), question.average_length)
                 for i in which]
        return np.concatenate([p for p, _ in parts]), np.concatenate([w for _, w in parts])

    def _scores_of(self, candidates: np.ndarray, question: QuestionTerms) -> np.ndarray:
        """The BM25 scores of the sorted positions ``candidates``, each term's postings
        read by binary search, in the question's order (so the sums equal ``scores``)."""
        found = np.zeros(len(candidates))
        for i in range(len(question.columns)):
            positions, values = self._postings_of(question, np.array([i]))
            if not len(positions):
                continue
            at = np.minimum(np.searchsorted(positions, candidates), len(positions) - 1)
            hit = positions[at] == candidates
            found[hit] += values[at[hit]]
        return found

    def _candidates(self, question: QuestionTerms, k: int, dead: np.ndarray | None,
                    floor: float = 0.0) -> np.ndarray | None:
        """The passages that can reach the top ``k`` (MaxScore), sorted; None when that is
        nearly every passage holding a term.

        Terms are taken by their best possible contribution, highest first. Once the
        live passages holding the terms taken include ``k`` whose partial scores all beat
        what the other terms could add together, no passage outside them can make the top
        ``k``: only they are scored, reading the other terms' postings by binary search.
        So too once the other terms could add no more than ``floor`` together.
        A term's bound is its best weight at this segment's average length, raised by
        the ratio of the collection's average to it where that is larger (weights grow
        at most so much with the average)."""
        if not len(question.columns):
            return None
        raise_by = max(1.0, question.average_length / self.own_average)
        bounds = question.idf * self._best[question.columns] * raise_by
        order = np.argsort(-bounds, kind="stable")
        rest = np.concatenate([np.cumsum(bounds[order][::-1])[::-1][1:], [0.0]])  # what the terms after add at most
        for taken in range(1, len(order)):
            positions, values = self._postings_of(question, order[:taken])
            if len(positions) * SPARSE_SHARE > len(self):
                return None
            matched, where = np.unique(positions, return_inverse=True)
            if rest[taken - 1] <= floor:
                return matched
            partial = np.bincount(where, weights=values, minlength=len(matched))
            if dead is not None:
                partial[dead[matched]] = -np.inf
            if np.count_nonzero(partial > -np.inf) < k:
                continue
            if np.partition(partial, len(partial) - k)[len(partial) - k] > rest[taken - 1]:
                return matched
        return None
