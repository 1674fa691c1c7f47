"""Read a retrieval benchmark in BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.documents import Document
from qa.errors import InvalidInput


@dataclass
class Dataset:
    """A corpus, the questions of one split, their judgements and any gold answers."""

    name: str
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)


def _json_lines(path: Path) -> Iterator[dict]:
    if not path.is_file():
        raise InvalidInput(f"{path} is missing: a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as error:
                raise InvalidInput(f"{path}:{number}: not JSON ({error})") from error


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise InvalidInput(f"{path} is missing; splits here: {', '.join(splits) or 'none'}")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as rows:
        for row in csv.reader(rows, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def document_text(title: str, text: str) -> str:
    """A corpus entry as the document people would write: its title, then its text."""
    return f"{title}\n\n{text}" if title else text


def _document(row: dict, source: str) -> Document:
    title = (row.get("title") or "").replace("_", " ")
    return Document(str(row["_id"]), title, source, document_text(title, row.get("text") or ""))


def load_beir(folder: Path, split: str = "test") -> Dataset:
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    documents = [_document(row, folder.name) for row in _json_lines(folder / "corpus.jsonl")]
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for row in _json_lines(folder / "queries.jsonl"):
        qid = str(row["_id"])
        if qid in qrels:
            queries[qid] = row["text"]
            gold = (row.get("metadata") or {}).get("answers")
            if gold:
                answers[qid] = [a if isinstance(a, str) else a.get("text", "") for a in gold]
    return Dataset(folder.resolve().name, documents, queries, {q: qrels[q] for q in queries}, answers)
