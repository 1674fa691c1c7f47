"""BM25 over passage terms, kept as term counts so passages can come and go.

Scores are Lucene's BM25 (as Pyserini and bm25s compute it). The counts are a
sparse matrix (passage positions x vocabulary); an index drops passages and takes
new ones without reading the others again, and is saved as plain arrays (no pickle).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from qa.chunking import SECTION_SEPARATOR
from qa.tokens import terms
from qa.topk import best_positions

# The files of a saved index begin so (lexical-counts.npy, ...).
LEXICAL = "lexical"
# New passages are counted in groups of this many: one sort each, in bounded memory.
COUNTED_TOGETHER = 10_000
# MaxScore (LexicalIndex.search) stops looking for candidates once their postings
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
    added = [word for header in headers if header and header.lower() not in lowered for word in terms(header)]
    return added + terms(text)


class LexicalIndex:
    """BM25 scores of passage positions for a list of query terms."""

    def __init__(self, vocabulary: list[str], counts: sparse.csr_matrix, settings: LexicalSettings,
                 derived: tuple[np.ndarray, sparse.csc_matrix, np.ndarray] | None = None) -> None:
        """``derived``: the (idf, weights, best) that ``counts`` give, as saved, when known."""
        self.settings = settings
        self._vocabulary = vocabulary
        self._columns = {term: column for column, term in enumerate(vocabulary)}
        self._counts = counts
        self._idf, self._weights, self._best = derived or self._derived()

    def _derived(self) -> tuple[np.ndarray, sparse.csc_matrix, np.ndarray]:
        """Each term's IDF, every posting's BM25 weight by term, and each term's highest
        weight in any passage (what it can add to a score at most)."""
        counts = self._counts
        frequency = np.bincount(counts.indices, minlength=len(self._vocabulary))  # passages holding each term
        idf = np.log(1 + (counts.shape[0] - frequency + 0.5) / (frequency + 0.5))
        weights = self._bm25_weights(idf).tocsc()
        weights.sort_indices()
        starts, ends = weights.indptr[:-1], weights.indptr[1:]
        held = ends > starts
        best = np.zeros(len(self._vocabulary))
        if held.any():
            best[held] = np.maximum.reduceat(weights.data, starts[held])
        return idf, weights, best

    @classmethod
    def build(cls, passage_terms: list[list[str]], settings: LexicalSettings = LexicalSettings()) -> LexicalIndex:
        return cls.empty(settings).updated(np.zeros(0, dtype=bool), passage_terms)

    @classmethod
    def empty(cls, settings: LexicalSettings = LexicalSettings()) -> LexicalIndex:
        return cls([], sparse.csr_matrix((0, 0), dtype=np.int32), settings)

    def updated(self, keep: np.ndarray, added: Iterable[list[str]]) -> LexicalIndex:
        """A new index of the positions where ``keep`` is true, then ``added`` passages
        (their terms, taken one passage at a time)."""
        columns = dict(self._columns)
        parts = [_counted(group, columns) for group in _groups_of(added, COUNTED_TOGETHER)]
        width = len(columns)
        kept = self._counts[np.flatnonzero(keep)]
        kept.resize((kept.shape[0], width))
        new = [sparse.csr_matrix((counts, indices, indptr), shape=(len(indptr) - 1, width))
               for counts, indices, indptr in parts]
        return LexicalIndex(list(columns), sparse.vstack([kept, *new], format="csr", dtype=np.int32), self.settings)

    def _bm25_weights(self, idf: np.ndarray) -> sparse.csr_matrix:
        counts = self._counts
        rows = counts.shape[0]
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        average = lengths.mean() if rows and lengths.mean() > 0 else 1.0
        tf = counts.data.astype(np.float64)
        length = np.repeat(lengths, np.diff(counts.indptr))
        k1, b = self.settings.k1, self.settings.b
        weights = idf[counts.indices] * tf / (tf + k1 * (1 - b + b * length / average))
        return sparse.csr_matrix((weights.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape)

    @classmethod
    def load(cls, directory: Path, settings: LexicalSettings) -> LexicalIndex:
        """Open what ``save`` wrote in ``directory``, its arrays memory-mapped: nothing is
        computed again, and processes serving the same files share their pages."""
        def array(name: str) -> np.ndarray:
            return np.load(directory / f"{LEXICAL}-{name}.npy", mmap_mode="r", allow_pickle=False)

        vocabulary = (directory / f"{LEXICAL}-vocabulary.txt").read_text(encoding="utf-8").split("\n")
        vocabulary = vocabulary if vocabulary != [""] else []
        rows, width = (int(n) for n in array("shape"))
        counts = sparse.csr_matrix((array("counts"), array("indices"), array("indptr")), shape=(rows, width))
        weights = sparse.csc_matrix((array("weights"), array("weight-rows"), array("weight-indptr")),
                                    shape=(rows, width))
        if not len(vocabulary) == width == len(array("idf")) == len(array("best")):
            raise ValueError("its vocabulary and arrays differ in size")
        return cls(vocabulary, counts, settings, (array("idf"), weights, array("best")))

    def save(self, directory: Path) -> None:
        """Write the index into ``directory`` as plain arrays (``.npy``) and its
        vocabulary as text, one term a line (terms are words: no line breaks)."""
        (directory / f"{LEXICAL}-vocabulary.txt").write_text("\n".join(self._vocabulary), encoding="utf-8")
        for name, values in {
            "shape": np.array(self._counts.shape), "counts": self._counts.data, "indices": self._counts.indices,
            "indptr": self._counts.indptr, "weights": self._weights.data, "weight-rows": self._weights.indices,
            "weight-indptr": self._weights.indptr, "idf": self._idf, "best": self._best,
        }.items():
            np.save(directory / f"{LEXICAL}-{name}.npy", np.asarray(values), allow_pickle=False)

    def __len__(self) -> int:
        return self._counts.shape[0]

    def known(self, terms: list[str]) -> list[str]:
        return [t for t in terms if t in self._columns]

    def scores(self, terms: list[str]) -> np.ndarray:
        """Every position's BM25 score for ``terms`` (0 where none matches), as float64.

        A term repeated in the question counts each time, as in bm25s."""
        return self._every_score([self._columns[t] for t in self.known(terms)])

    def _every_score(self, columns: list[int]) -> np.ndarray:
        positions, values = self._postings(columns)
        # astype: bincount gives integers where the terms' passages are all gone
        return np.bincount(positions, weights=values, minlength=len(self)).astype(np.float64, copy=False)

    def search(self, terms: list[str], k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, positions) with a positive score, best first; ties go to
        the lower position. The same ranking and scores as ``scores`` gives, found by
        MaxScore where it can: see ``_candidates``. With ``allowed`` (sorted positions),
        the best of those."""
        columns = [self._columns[t] for t in self.known(terms)]
        if allowed is not None:
            among = self._every_score(columns)[allowed]
            top = best_positions(among, k, above=0.0)
            return among[top].astype(np.float32), allowed[top].astype(np.int64)
        candidates = self._candidates(columns, k)
        if candidates is None:  # no pruning: summing every posting at once is cheapest
            every = self._every_score(columns)
            top = best_positions(every, k, above=0.0)
            return every[top].astype(np.float32), top.astype(np.int64)
        found = self._scores_of(candidates, columns)
        top = best_positions(found, k, above=0.0)
        return found[top].astype(np.float32), candidates[top].astype(np.int64)

    def _scores_of(self, candidates: np.ndarray, columns: list[int]) -> np.ndarray:
        """The BM25 scores of the sorted positions ``candidates``, each column's postings
        read by binary search, in the question's order (so the sums equal ``scores``)."""
        found = np.zeros(len(candidates))
        for column in columns:
            positions, values = self._postings([column])
            if not len(positions):
                continue
            at = np.minimum(np.searchsorted(positions, candidates), len(positions) - 1)
            hit = positions[at] == candidates
            found[hit] += values[at[hit]]
        return found

    def _candidates(self, columns: list[int], k: int) -> np.ndarray | None:
        """The passages that can reach the top ``k`` (MaxScore), sorted; None when that is
        nearly every passage holding a term.

        Terms are taken by their best possible contribution, highest first. Once the
        passages holding the terms taken hold ``k`` whose partial scores all beat what
        the other terms could add together, no passage outside them can make the top
        ``k``: only they are scored, reading the other terms' postings by binary search."""
        distinct, repeats = np.unique(np.asarray(columns, dtype=np.int64), return_counts=True)
        bounds = self._best[distinct] * repeats
        order = np.argsort(-bounds, kind="stable")
        rest = np.concatenate([np.cumsum(bounds[order][::-1])[::-1][1:], [0.0]])  # what the terms after add at most
        for taken in range(1, len(order)):
            chosen = distinct[order[:taken]]
            positions, values = self._postings(list(np.repeat(chosen, repeats[order[:taken]])))
            if len(positions) * SPARSE_SHARE > len(self):
                return None
            matched, where = np.unique(positions, return_inverse=True)
            if len(matched) < k:
                continue
            partial = np.bincount(where, weights=values, minlength=len(matched))
            if np.partition(partial, len(partial) - k)[len(partial) - k] > rest[taken - 1]:
                return matched
        return None

    def _postings(self, columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(positions, BM25 weights) of every posting of ``columns``, column after column;
        within a column, positions are in order."""
        if not columns:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        weights = self._weights
        spans = [slice(weights.indptr[c], weights.indptr[c + 1]) for c in columns]
        return np.concatenate([weights.indices[s] for s in spans]), np.concatenate([weights.data[s] for s in spans])

    def idf(self, terms: list[str]) -> dict[str, float]:
        """Inverse document frequency of each of ``terms`` (0 for an unknown term)."""
        known = self.known(terms)
        weights = dict.fromkeys(terms, 0.0)
        weights.update(zip(known, self._idf[[self._columns[t] for t in known]].tolist()))
        return weights


def _groups_of(items: Iterable[list[str]], size: int) -> Iterator[list[list[str]]]:
    group: list[list[str]] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _counted(passages: list[list[str]], columns: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts, columns, indptr) of CSR rows for ``passages``, new terms added to
    ``columns``: every (passage, term) pair counted in one sort rather than one per passage."""
    ids = np.fromiter((columns.setdefault(w, len(columns)) for words in passages for w in words), dtype=np.int64)
    owner = np.repeat(np.arange(len(passages), dtype=np.int64), [len(words) for words in passages])
    pairs, counts = np.unique(owner * (len(columns) + 1) + ids, return_counts=True)
    rows, indices = np.divmod(pairs, len(columns) + 1)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(passages)))])
    return counts.astype(np.int32), indices.astype(np.int32), indptr
