"""Documents read, compared with their stored copies, chunked, and their passages'
BM25 terms made, in worker processes."""

from __future__ import annotations

import logging
import os
from collections import Counter

import pytest

import qa.preparing
from qa.chunking import ChunkSettings, chunk_document
from qa.documents import Document, Heading
from qa.lexical import LexicalSettings, passage_terms
from qa.preparing import Prepared, Unchanged, Unreadable, Work, prepare, prepared
from qa.readers import find_files, read_document


def _documents(count: int) -> list[Document]:
    """Documents of every shape chunking knows: headings, pages, long paragraphs, none at all."""
    made = []
    for n in range(count):
        heading = f"Rivers of region {n}"
        body = " ".join(f"The river number {n} rose {k} centimetres overnight, said Dr. Okafor." for k in range(40))
        text = f"{heading}\n\n{body}\n\nA short closing note {n}."
        made.append(Document(f"docs/{n}.md", f"Report {n}", "tests", text, {"n": n},
                             headings=(Heading(0, len(heading), 1),), pages=(0, len(text) // 2) if n % 3 else ()))
    made.append(Document("docs/empty.md", "Empty", "tests", ""))
    return made


def test_documents_prepared_in_workers_are_those_prepared_here():
    documents = _documents(30)
    groups = [Work(documents[first : first + 4]) for first in range(0, len(documents), 4)]
    chunking, lexical = ChunkSettings(), LexicalSettings()
    in_workers = [done for group in prepared(groups, chunking, lexical, workers=2) for done in group]
    here = [done for group in groups for done in prepare(group, chunking, lexical)]
    assert [done.document for done in in_workers] == [done.document for done in here] == documents
    for done, same in zip(in_workers, here):
        assert done.passages == same.passages == chunk_document(done.document, chunking)
        assert done.terms.expanded() == same.terms.expanded()
        assert [Counter(terms.split()) for terms in done.terms.expanded()] == [
            Counter(passage_terms(p.text, done.document.title, lexical, p.section)) for p in done.passages]
    assert any(done.passages[-1].page == 2 for done in in_workers)  # pages survive the trip


def test_files_read_in_workers_are_the_documents_read_here_and_the_unchanged_and_unreadable_say_so(tmp_path,
                                                                                                      monkeypatch):
    monkeypatch.setattr("qa.preparing.READ_THREADS", 3)  # the first group, read here: threads of two files and one
    for n in range(11):
        (tmp_path / f"{n:02}.md").write_text(f"# Rivers of region {n}\n\nThe river number {n} rose overnight.\n")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    found = list(find_files([tmp_path]))
    read = {f.doc_id: read_document(f.path, f.doc_id) for f in found if f.suffix == ".md"}
    same, edited = read[found[3].doc_id], read[found[5].doc_id]
    stored = {same.doc_id: same.checksum, edited.doc_id: "the checksum of an older copy"}
    groups = [Work(found[first : first + 4], stored) for first in range(0, len(found), 4)]
    chunking, lexical = ChunkSettings(), LexicalSettings()
    in_workers = [done for group in prepared(groups, chunking, lexical, workers=2) for done in group]
    assert [type(done) for done in in_workers] == [Prepared] * 3 + [Unchanged] + [Prepared] * 7 + [Unreadable]
    assert [done.document.doc_id if isinstance(done, Prepared) else done.doc_id for done in in_workers] == [
        f.doc_id for f in found]  # in the order found, whichever reading thread read each
    assert in_workers[3] == Unchanged(same.doc_id)
    assert in_workers[-1].doc_id.endswith("broken.pdf") and "broken.pdf" in in_workers[-1].message
    for done in in_workers[:3] + in_workers[4:-1]:
        assert done.document == read[done.document.doc_id]
        assert done.passages == chunk_document(done.document, chunking)
        assert [Counter(terms.split()) for terms in done.terms.expanded()] == [
            Counter(passage_terms(p.text, done.document.title, lexical, p.section)) for p in done.passages]


def test_what_a_worker_raises_is_raised_to_the_caller():
    broken = Document("docs/broken.md", "Broken", "tests", None)  # type: ignore[arg-type]
    groups = [Work(_documents(2)), Work([broken]), Work(_documents(2))]
    found = prepared(groups, ChunkSettings(), LexicalSettings(), workers=1)
    assert len(next(found)) == 3  # the first group, prepared here
    with pytest.raises(AttributeError):  # None has no text methods
        next(found)


def test_a_single_group_starts_no_worker(monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(qa.preparing, "ProcessPoolExecutor", no_pool)
    done = list(prepared([Work(_documents(3))], ChunkSettings(), LexicalSettings(), workers=4))
    assert len(done) == 1 and len(done[0]) == 4


class _EndsTheWorkerThatUnpicklesIt:
    """Metadata that kills the worker process handed it, as the kernel's OOM killer might."""

    def __reduce__(self):
        return os._exit, (1,)


def test_groups_a_dead_worker_held_are_prepared_here_and_the_rest_too(caplog):
    killer = Document("docs/killer.md", "Killer", "tests", "A short text.", {"end": _EndsTheWorkerThatUnpicklesIt()})
    groups = [_documents(2), _documents(3), [killer], _documents(4), _documents(5)]
    with caplog.at_level(logging.WARNING, logger="qa.preparing"):
        found = list(prepared(map(Work, groups), ChunkSettings(), LexicalSettings(), workers=1))
    assert [[done.document for done in group] for group in found] == groups
    assert [done.passages for group in found for done in group] == [
        chunk_document(document, ChunkSettings()) for group in groups for document in group]
    assert "worker processes stopped" in caplog.text
