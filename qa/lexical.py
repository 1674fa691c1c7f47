"""BM25 over passage terms with bm25s, saved without pickle."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import numpy as np

from qa.tokens import terms


@dataclass(frozen=True)
class LexicalSettings:
    """How passages are scored by BM25; recorded in each index's manifest.

    Chosen on SciFact train and SQuAD-dev (docs/EVALUATION.md): Pyserini's k1 and b,
    and the document's title counted in every passage, as a title field would be.
    """

    k1: float = 0.9
    b: float = 0.4
    title_in_every_passage: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def passage_terms(text: str, title: str, settings: LexicalSettings = LexicalSettings()) -> list[str]:
    """The terms BM25 indexes for a passage: its own, plus its title's where absent."""
    words = terms(text)
    if settings.title_in_every_passage and title and title.lower() not in text.lower():
        words = terms(title) + words
    return words


class LexicalIndex:
    """BM25 scores of passages (rows) for a list of query terms."""

    def __init__(self, retriever: bm25s.BM25) -> None:
        self._bm25 = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict
        indptr = retriever.scores["indptr"]
        self._document_frequency = np.diff(indptr)
        self._rows = int(retriever.scores["num_docs"])

    @classmethod
    def build(cls, passage_terms: list[list[str]], settings: LexicalSettings = LexicalSettings()) -> "LexicalIndex":
        retriever = bm25s.BM25(k1=settings.k1, b=settings.b)
        # An empty passage still needs a row; an empty token keeps bm25s happy.
        retriever.index([t or [""] for t in passage_terms], show_progress=False)
        return cls(retriever)

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        return cls(bm25s.BM25.load(str(directory), allow_pickle=False, show_progress=False))

    def save(self, directory: Path) -> None:
        self._bm25.save(str(directory), allow_pickle=False, show_progress=False)

    def __len__(self) -> int:
        return self._rows

    def known(self, terms: list[str]) -> list[str]:
        return [t for t in terms if t and t in self._vocab]

    def search(self, terms: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, rows) with a positive score, best first."""
        query = self.known(terms)
        if not query:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = self._bm25.get_scores(query)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return scores[top].astype(np.float32), top.astype(np.int64)

    def idf(self, term: str) -> float:
        """Inverse document frequency of ``term`` (0 for an unknown term)."""
        column = self._vocab.get(term)
        if column is None:
            return 0.0
        df = int(self._document_frequency[column])
        return math.log(1 + (self._rows - df + 0.5) / (df + 0.5))
