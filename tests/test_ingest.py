"""Ingest with the real model: every file type, broken files, and an index that survives failure."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import minimal_pdf

from qa.database import DocumentStore
from qa.embedded import EmbeddedEngine
from qa.engines import EngineChoice
from qa.errors import IndexUnavailable, InvalidInput, UnreadableFile
from qa.index import DATABASE, DERIVED, Index
from qa.ingest import files_to_read, ingest
from qa.search import Searcher, SearchRequest
from qa.tokens import terms


def stored(index: Index) -> dict:
    """Every stored document, by id."""
    return {d["id"]: index.store.document(d["id"])[0] for d in index.store.documents()}


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "volcano.txt").write_text(
        "Mount Etna erupted again on Tuesday, sending ash two kilometres into the sky above Sicily.\n"
    )
    (folder / "bees.md").write_text("# Honey bees\n\nA worker honey bee lives for about six weeks in summer.\n")
    (folder / "sub" / "page.html").write_text(
        "<html><head><title>Lighthouses</title><style>p {color: red}</style></head><body>"
        "<p>The Tower of Hercules is the oldest lighthouse still in use.</p>"
        "<script>var secretToken = 'xyzzy-script-content';</script></body></html>"
    )
    (folder / "glaciers.pdf").write_bytes(
        minimal_pdf(["The Aletsch Glacier is the largest glacier in the Alps."], title="Glaciers")
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    return folder


def test_every_format_is_indexed_and_a_broken_file_is_skipped_by_name(corpus, tmp_path, embedder):
    report = ingest([corpus], EngineChoice(index=tmp_path / "index"), embedder)
    assert (report.stored, report.added, report.documents) == (4, 4, 4)
    assert len(report.skipped) == 1 and "broken.pdf" in report.skipped[0]

    index = Index.open(tmp_path / "index")
    documents = stored(index)
    assert sorted(documents) == ["docs/bees.md", "docs/glaciers.pdf", "docs/sub/page.html", "docs/volcano.txt"]
    assert documents["docs/bees.md"].title == "Honey bees"
    assert documents["docs/sub/page.html"].title == "Lighthouses"
    assert documents["docs/glaciers.pdf"].title == "Glaciers"
    assert "Aletsch Glacier" in documents["docs/glaciers.pdf"].text
    html = documents["docs/sub/page.html"].text
    assert "Tower of Hercules" in html and "xyzzy" not in html and "color" not in html

    searcher = Searcher(EmbeddedEngine(index), embedder)
    top = searcher.search(SearchRequest.parse("which is the biggest glacier in the Alps?", 1, "dense"))
    assert top.results[0].doc_id == "docs/glaciers.pdf"
    assert searcher.search(SearchRequest.parse("xyzzy", 5, "lexical")).results == []


def test_seed_document_has_its_title_and_source(seed_index):
    (document,) = stored(Index.open(seed_index)).values()
    assert document.title == "Wagner Group withdraws from Mali"
    assert document.source == "cgtn.com"
    assert "Reference(s)" not in document.text


def test_ingest_again_replaces_a_document_and_keeps_the_others(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    ingest([corpus], EngineChoice(index=root), embedder)
    (corpus / "volcano.txt").write_text("Stromboli has erupted almost continuously for two thousand years.\n")
    report = ingest([corpus / "volcano.txt"], EngineChoice(index=root), embedder)
    assert report.documents == 5  # four from the folder, plus the file known by its own name
    index = Index.open(root)
    texts = {doc_id: d.text for doc_id, d in stored(index).items()}
    assert "Stromboli" in texts["volcano.txt"] and "Etna" in texts["docs/volcano.txt"]
    # carried-over vectors still belong to their passages
    etna = Searcher(EmbeddedEngine(index), embedder).search(SearchRequest.parse("ash cloud over Sicily", 1, "dense"))
    assert etna.results[0].doc_id == "docs/volcano.txt"

    ingest([corpus], EngineChoice(index=root), embedder, replace=True)
    replaced = Index.open(root)
    assert "volcano.txt" not in stored(replaced)
    stromboli = Searcher(EmbeddedEngine(replaced), embedder).search(SearchRequest.parse("Stromboli", 5, "lexical"))
    assert [r.doc_id for r in stromboli.results] == ["docs/volcano.txt"]


def test_files_read_by_worker_processes_are_skipped_by_name_or_left_alone_when_unchanged(tmp_path, embedder,
                                                                                      monkeypatch):
    """A bulk ingest reads most files in worker processes: what they cannot read is
    told by name, what is unchanged is not written again, and an edit is seen."""
    import qa.ingest

    corpus = tmp_path / "many"
    corpus.mkdir()
    for n in range(30):
        (corpus / f"note{n:02}.txt").write_text(f"Note {n} says the river rose {n} centimetres overnight.")
    (corpus / "zz-broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    monkeypatch.setattr(qa.ingest, "PREPARE_DOCUMENTS", 4)  # eight groups: all but the first go to workers
    root = tmp_path / "index"
    first = ingest([corpus], EngineChoice(index=root), embedder)
    assert first.documents == first.stored == first.added == 30
    assert len(first.skipped) == 1 and "zz-broken.pdf" in first.skipped[0]
    (corpus / "note17.txt").write_text("Note 17 now says the river fell by morning.")
    again = ingest([corpus], EngineChoice(index=root), embedder, replace=True)
    assert (again.stored, again.added, again.unchanged) == (1, 0, 29)
    assert again.documents == 30 and len(again.skipped) == 1
    index = Index.open(root)
    try:
        assert "fell by morning" in stored(index)["many/note17.txt"].text
    finally:
        index.close()


def test_files_found_twice_under_the_same_id_are_read_once_and_named(tmp_path):
    docs, other = tmp_path / "docs", tmp_path / "other"
    (docs / "sub").mkdir(parents=True)
    other.mkdir()
    for path in (docs / "a.txt", docs / "b.md", docs / "sub" / "c.txt", other / "a.txt"):
        path.write_text("Some text.")
    said: list[str] = []
    found = [f.doc_id for f in files_to_read([docs, docs, other / "a.txt", docs / "a.txt"], said.append)]
    assert found == ["docs/a.txt", "docs/b.md", "docs/sub/c.txt", "a.txt"]
    assert len(said) == 4 and all("same id" in line for line in said)
    said.clear()
    found = [f.doc_id for f in files_to_read([docs, docs / "a.txt", tmp_path / "gone"], said.append)]
    assert found == ["docs/a.txt", "docs/b.md", "docs/sub/c.txt", "a.txt"]
    assert len(said) == 1 and "no such file" in said[0]


def test_nothing_readable_is_an_error_and_changes_nothing(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    ingest([corpus], EngineChoice(index=root), embedder)
    before = DocumentStore(root / DATABASE).generation()
    with pytest.raises(InvalidInput):
        ingest([corpus / "broken.pdf", tmp_path / "missing"], EngineChoice(index=root), embedder)
    assert DocumentStore(root / DATABASE).generation() == before


class _FailingEmbedder:
    """The real model (or one of another name), failing partway through like a crash mid-ingest."""

    def __init__(self, real, name=None, after=0):
        self.real, self.name, self.dimension = real, name or real.name, real.dimension
        self.left = after

    def encode(self, texts, progress=False):
        if self.left <= 0:
            raise RuntimeError("killed mid-ingest")
        self.left -= 1
        return self.real.encode(texts)


def test_a_failed_ingest_leaves_the_previous_index_whole(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    ingest([corpus], EngineChoice(index=root), embedder)
    before = Index.open(root)
    with pytest.raises(RuntimeError):
        (corpus / "bees.md").write_text("# Honey bees\n\nA queen bee can live for five years.\n")
        ingest([corpus], EngineChoice(index=root), _FailingEmbedder(embedder), replace=True)
    after = Index.open(root)
    assert after.snapshot().generation == before.snapshot().generation
    assert stored(after) == stored(before)
    assert after.store.counts() == (4, len(after.snapshot()))


class _WatchingEmbedder:
    """The real model, noting the garbage collector's thresholds whenever it is asked to encode."""

    def __init__(self, real):
        self.real, self.name, self.dimension = real, real.name, real.dimension
        self.seen: list[tuple[int, ...]] = []

    def encode(self, texts, progress=False):
        self.seen.append(gc.get_threshold())
        return self.real.encode(texts)


def test_an_ingest_collects_garbage_rarely_and_leaves_the_collector_as_it_found_it(corpus, tmp_path, embedder):
    """A bulk ingest makes objects by the million, freed by their reference counts: the
    cyclic collector looks less often meanwhile, and the process that called it (a
    program using qa as a library) gets its own settings back, whether it ends well or not."""
    own = gc.get_threshold()
    gc.set_threshold(900, 11, 12)
    try:
        watching = _WatchingEmbedder(embedder)
        ingest([corpus], EngineChoice(index=tmp_path / "index"), watching)
        assert watching.seen and all(seen[0] > 900 for seen in watching.seen)
        assert gc.get_threshold() == (900, 11, 12)
        with pytest.raises(RuntimeError):
            ingest([corpus], EngineChoice(index=tmp_path / "other"), _FailingEmbedder(embedder))
        assert gc.get_threshold() == (900, 11, 12)
    finally:
        gc.set_threshold(*own)


def test_an_index_from_another_model_or_format_fails_clearly(seed_index, tmp_path):
    with pytest.raises(IndexUnavailable, match="built with model 'all-MiniLM-L6-v2'"):
        Index.open(seed_index, model="some-other-model")

    copy = tmp_path / "copy"
    shutil.copytree(seed_index, copy)
    with sqlite3.connect(copy / DATABASE) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(IndexUnavailable, match="format version '99'"):
        Index.open(copy)

    (copy / DATABASE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexUnavailable, match="not a readable index database"):
        Index.open(copy)

    with pytest.raises(IndexUnavailable, match="no index"):
        Index.open(tmp_path / "nowhere")


def test_derived_files_of_an_earlier_layout_are_rebuilt_once_and_replaced(seed_index, tmp_path, caplog):
    import json

    from qa.index import SNAPSHOT

    copy = tmp_path / "copy"
    shutil.copytree(seed_index, copy)
    (derived,) = (copy / DERIVED).glob("gen-*")
    description = json.loads((derived / SNAPSHOT).read_text())
    del description["format"]  # as versions before the current layout wrote it
    (derived / SNAPSHOT).write_text(json.dumps(description))
    index = Index.open(copy)
    assert "written in format 1" in caplog.text and len(index.snapshot()) == 7
    index.save()  # the same generation: the stale description is replaced, not kept
    caplog.clear()
    assert len(Index.open(copy).snapshot()) == 7 and "ignoring derived index" not in caplog.text
    (saved,) = (copy / DERIVED).glob("gen-*")
    assert saved != derived


def test_opening_an_index_saved_up_to_date_reads_no_passage_rows(seed_index, monkeypatch):
    reads = []
    real = DocumentStore.live_rows
    monkeypatch.setattr(DocumentStore, "live_rows", lambda self: reads.append(1) or real(self))
    index = Index.open(seed_index)
    assert len(index.snapshot()) == 7 and reads == []
    index.close()


def test_damaged_derived_files_are_rebuilt_from_the_store(seed_index, tmp_path, embedder):
    from qa.index import SEGMENTS

    copy = tmp_path / "copy"
    shutil.copytree(seed_index, copy)
    (segment,) = (copy / DERIVED / SEGMENTS).iterdir()
    (segment / "vectors.faiss").write_bytes(b"garbage")
    (segment / "lexical-counts.npy").unlink()
    searcher = Searcher(EmbeddedEngine(Index.open(copy)), embedder)
    assert len(searcher.engine.index.snapshot()) == 7
    top = searcher.search(SearchRequest.parse("when did Wagner arrive in Mali?", 1, "hybrid"))
    assert "December 2021" in top.results[0].answer.text


def test_vectors_are_unit_length(embedder):
    vectors = embedder.encode(["one passage", "another passage"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_an_index_whose_first_ingest_died_before_writing_takes_the_next_ingest(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    root.mkdir()
    DocumentStore(root / DATABASE).close()  # the schema exists, nothing else
    with pytest.raises(IndexUnavailable, match="first ingest did not finish"):
        Index.open(root)
    assert ingest([corpus], EngineChoice(index=root), embedder).documents == 4


def test_a_write_from_elsewhere_is_seen_without_asking_the_store_at_every_search(seed_index, tmp_path, embedder):
    copy = tmp_path / "copy"
    shutil.copytree(seed_index, copy)
    reader = Index.open(copy)
    asked = []
    generation = reader.store.generation
    reader.store.generation = lambda: asked.append(1) or generation()
    before = reader.snapshot().generation
    for _ in range(50):
        reader.snapshot()
    assert len(asked) <= 2  # one look per CHECK_EVERY_SECONDS, not one per search

    (tmp_path / "new.md").write_text("# Timbuktu\n\nTimbuktu lies near the Niger river in Mali.\n")
    ingest([tmp_path / "new.md"], EngineChoice(index=copy), embedder)  # its own opening of the index, as another process
    deadline = time.monotonic() + 30
    while reader.snapshot().generation == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.snapshot().generation > before
    assert len(reader.snapshot()) == reader.store.counts()[1]
    reader.close()


def test_a_rebuild_with_another_model_that_fails_leaves_the_old_index_whole(corpus, tmp_path, embedder, monkeypatch):
    root = tmp_path / "index"
    ingest([corpus], EngineChoice(index=root), embedder)
    before = Index.open(root)
    monkeypatch.setattr("qa.ingest.BATCH_PASSAGES", 1)  # a batch per document: some are staged before it fails
    with pytest.raises(RuntimeError):
        ingest([corpus], EngineChoice(index=root), _FailingEmbedder(embedder, name="other-model", after=2), replace=True)
    after = Index.open(root)
    assert after.model == embedder.name and after.snapshot().generation == before.snapshot().generation
    assert stored(after) == stored(before)
    assert after.store.counts() == (4, len(after.snapshot()))
    top = Searcher(EmbeddedEngine(after), embedder).search(SearchRequest.parse("which is the biggest glacier in the Alps?", 1))
    assert top.results[0].doc_id == "docs/glaciers.pdf"


def test_during_a_rebuild_the_old_index_is_what_every_reader_sees(corpus, tmp_path, embedder, static_model,
                                                                  monkeypatch):
    from qa.embedding import Embedder

    root = tmp_path / "index"
    ingest([corpus], EngineChoice(index=root), embedder)
    reader = Index.open(root)
    seen = []
    other = Embedder(str(static_model))
    real_encode = other.encode

    def encode_and_look(texts, progress=False):
        seen.append((reader.refresh().documents, reader.store.meta()["model"], reader.store.counts()))
        return real_encode(texts)

    monkeypatch.setattr(other, "encode", encode_and_look)
    monkeypatch.setattr("qa.ingest.BATCH_PASSAGES", 1)
    report = ingest([corpus], EngineChoice(index=root), other, replace=True)
    assert len(seen) == 4 and set(seen) == {(4, embedder.name, (4, 4))}
    assert report.documents == 4 and Index.open(root).model == str(static_model)


def test_ingest_reads_files_as_it_writes_them_not_all_first(tmp_path, embedder, monkeypatch):
    """Memory must not grow with the corpus: the first batch is written before the
    last file is read, and no more than a few batches of texts are held at once (the
    one being embedded, those made ahead, the one being made, and those handed to the
    worker processes that read and chunk them)."""
    import qa.ingest
    import qa.preparing

    corpus = tmp_path / "many"
    corpus.mkdir()
    for n in range(100):
        (corpus / f"note{n:02}.txt").write_text(f"Note {n} says the river rose {n} centimetres overnight.")
    read, at_writes = [], []  # the files handed over to be read, here or by a worker
    real_prepared, real_write = qa.ingest.prepared, Index.write

    def handed(work):
        for group in work:
            read.extend(group.sources)
            yield group

    monkeypatch.setattr(qa.ingest, "prepared", lambda work, *a, **k: real_prepared(handed(work), *a, **k))
    monkeypatch.setattr(Index, "write", lambda self, *a, **k: at_writes.append(len(read)) or real_write(self, *a, **k))
    monkeypatch.setattr(qa.ingest, "BATCH_PASSAGES", 8)
    monkeypatch.setattr(qa.ingest, "WRITE_PASSAGES", 8)
    monkeypatch.setattr(qa.ingest, "PREPARE_DOCUMENTS", 8)
    report = ingest([corpus], EngineChoice(index=tmp_path / "index"), embedder)
    assert report.documents == 100 and len(read) == 100
    handed = qa.preparing.AHEAD_PER_WORKER * qa.preparing.preparation_workers()
    assert at_writes[0] <= 8 * (qa.ingest.PREPARED_AHEAD + 3 + handed) and len(at_writes) >= 12


def test_a_snapshot_reads_another_writers_passages_a_few_at_a_time_to_the_same_index(corpus, tmp_path, embedder,
                                                                                      monkeypatch):
    """The writer's own snapshot takes its passages from its writes; a reader of the same
    index reads them from the store, READ_ROWS at a time, and must hold the same."""
    import qa.index

    root = tmp_path / "index"
    ingest([corpus / "volcano.txt"], EngineChoice(index=root), embedder)
    reader = Index.open(root)
    monkeypatch.setattr(qa.index, "READ_ROWS", 2)
    ingest([corpus], EngineChoice(index=root), embedder)
    writer = Index.open(root)  # from the derived files the ingest saved
    one, other = writer.snapshot(), reader.refresh()
    assert len(other) == len(one) > 2 and len(other.views) > 1
    np.testing.assert_array_equal(one.rows, other.rows)
    vector = embedder.encode(["largest glacier"])[0]
    for question in ("largest glacier", "honey bee", "lighthouse"):
        for got, want in ((one.lexical(terms(question), 3), other.lexical(terms(question), 3)),
                          (one.dense(vector, 5), other.dense(vector, 5))):
            np.testing.assert_array_equal(one.row_at(got.ids), other.row_at(want.ids))
            np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)


def test_batches_made_ahead_come_in_order_and_their_errors_come_through():
    import threading

    from qa.ingest import _ahead

    assert list(_ahead(iter(range(100)))) == list(range(100))

    def failing():
        yield 1
        raise UnreadableFile("broken.txt: not text")

    made = _ahead(failing())
    assert next(made) == 1
    with pytest.raises(UnreadableFile, match="broken.txt"):
        next(made)
    before = threading.active_count()
    endless = _ahead(iter(range(10**9)))
    assert next(endless) == 0
    endless.close()  # a consumer that stops early stops the thread making its items
    assert threading.active_count() == before


def test_a_bulk_ingest_ends_in_one_segment_however_many_it_sealed_on_the_way(tmp_path, embedder, monkeypatch):
    """Searches read every segment: an ingest leaves the segments it sealed as it went
    merged into as few as fit (here one), and a small ingest after it merges nothing large."""
    import qa.index

    corpus = tmp_path / "many"
    corpus.mkdir()
    for n in range(60):
        (corpus / f"note{n:02}.txt").write_text(f"Note {n} says the river rose {n} centimetres overnight.")
    monkeypatch.setattr(qa.index, "SEGMENT_PASSAGES", 10)  # a segment sealed every 10 passages
    monkeypatch.setattr(qa.index, "SAVED_FROM", 10)
    monkeypatch.setattr("qa.ingest.BATCH_PASSAGES", 5)
    root = tmp_path / "index"
    ingest([corpus], EngineChoice(index=root), embedder)
    index = Index.open(root)
    try:
        assert [view.live for view in index.snapshot().views] == [60]
        merged = index.snapshot().views[0].segment.name
    finally:
        index.close()
    (corpus / "late.txt").write_text("A late note: the river fell again by morning.")
    ingest([corpus / "late.txt"], EngineChoice(index=root), embedder)
    index = Index.open(root)
    try:
        views = index.snapshot().views
        assert [view.live for view in views] == [60, 1] and views[0].segment.name == merged
        engine = EmbeddedEngine(index)
        searcher = Searcher(engine, embedder)
        assert searcher.search(SearchRequest.parse("when did the river fall", 1)).results[0].doc_id == "late.txt"
    finally:
        index.close()


def test_a_write_of_more_rows_than_one_statement_holds_stores_each(tmp_path, embedder, monkeypatch):
    import qa.database

    monkeypatch.setattr(qa.database, "ROWS_PER_STATEMENT", 4)
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(11):
        (folder / f"note-{n:02}.txt").write_text(f"Note number {n} is about the harbour code zq{n}x.\n\nIt has a second "
                                                  f"paragraph about the lighthouse keeper of zq{n}x.")
    ingest([folder], EngineChoice(index=tmp_path / "index"), embedder)
    index = Index.open(tmp_path / "index")
    documents = stored(index)
    assert sorted(documents) == [f"notes/note-{n:02}.txt" for n in range(11)]
    assert all(f"zq{n}x" in documents[f"notes/note-{n:02}.txt"].text for n in range(11))
    searcher = Searcher(EmbeddedEngine(index), embedder)
    for n in range(11):
        found = searcher.search(SearchRequest.parse(f"zq{n}x", 3, "lexical"))
        assert found.results[0].doc_id == f"notes/note-{n:02}.txt"
