"""Segments: writes, deletes and merges rank exactly as one index built afresh from the store.

The reference is the store itself: its SQLite file copied and opened with no derived
files, which reads every live passage into one segment. Vectors are random (no model
is needed to test where passages are kept), words drawn from a small vocabulary so
that BM25's statistics move with every write.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import qa.embedded
import qa.index
import qa.lexical
import qa.segments
import qa.vector_store
from qa.chunking import ChunkSettings
from qa.database import FORMAT_VERSION, Revision
from qa.documents import Document, Passage
from qa.embedded import EmbeddedEngine
from qa.filters import SearchFilter
from qa.index import DATABASE, DERIVED, SEGMENTS, SNAPSHOT, Index, load_snapshot
from qa.lexical import Collection, CountedTerms, LexicalSettings, QuestionTerms
from qa.search import SearchRequest
from qa.segments import SegmentBuilder
from qa.tokens import terms

DIMENSION = 8
WORDS = ("river delta flood harvest millet sorghum market bridge tower glacier volcano ash honey bee "
         "lighthouse harbour coast storm winter summer").split()
META = {"format_version": str(FORMAT_VERSION), "model": "random-vectors", "dimension": str(DIMENSION),
        "chunking": json.dumps(ChunkSettings().as_dict())}


def revision(doc_id: str, rng: np.random.Generator, passages: int = 2) -> Revision:
    """A document of ``passages`` passages of random words, with random unit vectors."""
    texts = [" ".join(rng.choice(WORDS, rng.integers(3, 12))) + "." for _ in range(passages)]
    text, spans, start = " ".join(texts), [], 0
    for ordinal, part in enumerate(texts):
        spans.append(Passage(doc_id, ordinal, start, start + len(part), part))
        start += len(part) + 1
    vectors = rng.standard_normal((passages, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source = "even" if int(doc_id.rsplit("-", 1)[1]) % 2 == 0 else "odd"
    return Revision(Document(doc_id, f"Doc {doc_id}", source, text, {}), spans, vectors)


def afresh(index_root: Path, tmp_path: Path) -> Index:
    """The store of ``index_root`` alone, copied and opened with no derived files."""
    fresh = tmp_path / f"fresh-{time.monotonic_ns()}"
    fresh.mkdir()
    for file in index_root.glob(f"{DATABASE}*"):
        shutil.copy(file, fresh / file.name)
    return Index.open(fresh)


QUESTIONS = ["river flood", "honey bee harvest", "storm coast harbour", "glacier", "millet sorghum market",
             "winter summer winter", "zebra"]


def rankings(index: Index, snapshot, rng_seed: int = 3) -> list:
    """Every mode's top 10 rows and scores for each question, with and without a filter."""
    engine, rng = EmbeddedEngine(index), np.random.default_rng(rng_seed)
    found = []
    for question in QUESTIONS:
        vector = rng.standard_normal(DIMENSION).astype(np.float32)
        vector /= np.linalg.norm(vector)
        for mode in ("dense", "lexical", "hybrid"):
            for search_filter in (None, SearchFilter(source="even")):
                request = SearchRequest.parse(question, 10, mode, search_filter)
                result = engine.positions(request, vector, terms(question), snapshot)
                found.append(((question, mode, search_filter), snapshot.row_at(result.ids).tolist(),
                              result.scores.astype(np.float64)))
    return found


def assert_same_as_afresh(index: Index, tmp_path: Path) -> None:
    snapshot = index.refresh()
    reference = afresh(index.root, tmp_path)
    try:
        expected = reference.snapshot()
        assert len(expected.views) == 1
        assert snapshot.rows.tolist() == expected.rows.tolist() == reference.store.live_rows().rows.tolist()
        assert snapshot.documents == expected.documents
        for (asked, rows, scores), (_, want_rows, want_scores) in zip(rankings(index, snapshot),
                                                                      rankings(reference, expected)):
            assert rows == want_rows, asked
            np.testing.assert_allclose(scores, want_scores, rtol=1e-5, err_msg=str(asked))
    finally:
        reference.close()


@pytest.fixture
def merge_often(monkeypatch):
    monkeypatch.setattr(qa.segments, "MERGE_FACTOR", 3)


@pytest.mark.parametrize("whole_arrays_up_to", [qa.embedded.WHOLE_ARRAYS_UP_TO, 0])
def test_writes_deletes_and_merges_rank_as_an_index_built_afresh(tmp_path, merge_often, monkeypatch,
                                                                 whole_arrays_up_to):
    monkeypatch.setattr(qa.embedded, "WHOLE_ARRAYS_UP_TO", whole_arrays_up_to)  # both ways of fusing
    rng = np.random.default_rng(1)
    index = Index.open_for_writing(tmp_path / "index", META)
    try:
        index.write([revision(f"doc-{n}", rng, 3) for n in range(40)])  # a first, larger segment
        index.refresh()
        deletions_seen = False
        for step in range(30):
            doc = f"doc-{rng.integers(0, 60)}"
            if step % 5 == 4:
                index.write(delete=[doc])
            else:
                index.write([revision(doc, rng)])  # new, or replacing: its old rows are deleted
            deletions_seen |= any(view.deleted is not None for view in index.refresh().views)
            if step % 7 == 0:
                assert_same_as_afresh(index, tmp_path)
        snapshot = index.settle()
        assert deletions_seen and len(snapshot.views) < 12  # 31 writes, merged as they came
        assert_same_as_afresh(index, tmp_path)
        index.save()
    finally:
        index.close()
    reopened = Index.open(tmp_path / "index")
    try:
        assert_same_as_afresh(reopened, tmp_path)  # saved segments, their deletions, as they were
    finally:
        reopened.close()


def test_a_bulk_load_ends_in_few_full_segments_and_a_small_one_after_merges_nothing_large(tmp_path, monkeypatch):
    monkeypatch.setattr(qa.segments, "MERGED_BYTES", 2 * DIMENSION * 30)  # merged segments of 30 passages at most
    rng = np.random.default_rng(7)
    index = Index.open_for_writing(tmp_path / "index", META)
    try:
        for first in range(0, 40, 4):  # ten writes of 12 passages, a segment each
            index.write([revision(f"doc-{n}", rng, 3) for n in range(first, first + 4)])
            index.refresh()
        compacted = index.compact()
        assert [view.live for view in compacted.views] == [24, 24, 24, 24, 24]
        assert_same_as_afresh(index, tmp_path)
        index.write([revision("doc-99", rng, 3)])
        after = index.compact()
        assert [view.segment.name for view in after.views[:5]] == [view.segment.name for view in compacted.views]
        assert [view.live for view in after.views] == [24, 24, 24, 24, 24, 3]
    finally:
        index.close()


@pytest.fixture
def small_segments(monkeypatch):
    """Writes sealed every 30 passages, and indexed (not searched exactly) above 20;
    the sizes of the IVF indexes built, as they are built."""
    monkeypatch.setattr(qa.index, "SEGMENT_PASSAGES", 30)
    monkeypatch.setattr(qa.segments, "EXACT_UP_TO", 20)
    monkeypatch.setattr(qa.vector_store, "EXACT_UP_TO", 20)
    built: list[int] = []
    plan = qa.vector_store._ivf_plan
    monkeypatch.setattr(qa.vector_store, "_ivf_plan",
                        lambda sources, dimension: built.append(sum(s.size for s in sources)) or plan(sources, dimension))
    return built


def test_a_bulk_load_indexes_the_segments_it_seals_once_as_it_ends(tmp_path, small_segments):
    rng = np.random.default_rng(8)
    index = Index.open_for_writing(tmp_path / "index", META, bulk=True)
    try:
        for first in range(0, 36, 4):  # 9 writes of 12 passages: sealed at 36, 36 and 36
            index.write([revision(f"doc-{n}", rng, 3) for n in range(first, first + 4)])
        loaded = index.refresh()
        assert [(view.size, view.segment.indexed, view.segment.vectors.kind) for view in loaded.views] == \
            [(36, False, "exact")] * 3
        assert small_segments == []
        assert_same_as_afresh(index, tmp_path)  # searched exactly meanwhile
        small_segments.clear()  # the index built afresh (one segment, indexed)
        index.write([revision(f"doc-{n}", rng, 3) for n in range(36, 44)])  # 24 passages, held
        compacted = index.compact()
        assert [(view.size, view.segment.indexed) for view in compacted.views] == [(132, True)]
        assert small_segments == [132]  # the writes still held sealed unindexed too: one index, of all
        assert_same_as_afresh(index, tmp_path)
    finally:
        index.close()


def test_segments_a_bulk_load_saved_unindexed_are_indexed_by_the_next_process(tmp_path, small_segments, monkeypatch):
    monkeypatch.setattr(qa.index, "SAVED_FROM", 0)
    rng = np.random.default_rng(9)
    writer = Index.open_for_writing(tmp_path / "index", META, bulk=True)
    try:
        writer.write([revision(f"doc-{n}", rng, 3) for n in range(12)])
        writer.refresh()
        writer.save()  # killed before it compacted, say
    finally:
        writer.close()
    assert small_segments == []
    server = Index.open(tmp_path / "index")
    try:
        assert [view.segment.indexed for view in server.snapshot().views] == [False]
        settled = server.settle()
        assert [(view.size, view.segment.indexed) for view in settled.views] == [(36, True)]
        assert small_segments == [36]
        assert_same_as_afresh(server, tmp_path)
    finally:
        server.close()


def test_a_write_holding_one_id_twice_keeps_the_later_revision(tmp_path):
    """A write is stored a run of distinct ids at a time: a repeated id starts a new run,
    so its later revision replaces the earlier one, as if written one by one."""
    rng = np.random.default_rng(10)
    index = Index.open_for_writing(tmp_path / "index", META)
    try:
        index.write([revision("doc-1", rng), revision("doc-2", rng)])
        later = revision("doc-1", rng, 3)
        result = index.write([revision("doc-1", rng), revision("doc-3", rng), later, revision("doc-2", rng)])
        assert result.replaced == {"doc-1", "doc-2"} and result.documents_added == 1
        assert len(result.added_rows) == 2 + 2 + 3 + 2
        stored = index.store.passages(index.refresh().rows)
        assert sorted(r.passage.text for r in stored.values() if r.passage.doc_id == "doc-1") == \
            sorted(p.text for p in later.passages)
        assert index.refresh().documents == 3
        assert_same_as_afresh(index, tmp_path)
    finally:
        index.close()


def test_a_write_of_another_process_is_read_from_the_store(tmp_path):
    rng = np.random.default_rng(2)
    writer = Index.open_for_writing(tmp_path / "index", META)
    writer.write([revision(f"doc-{n}", rng) for n in range(10)])
    reader = Index.open(tmp_path / "index")
    writer.write([revision("doc-3", rng), revision("doc-30", rng)], delete=["doc-4"])
    reader.write([revision("doc-31", rng)])  # follows a write it did not make: read back
    writer.write([revision("doc-32", rng)])
    try:
        for index in (writer, reader):
            assert_same_as_afresh(index, tmp_path)
    finally:
        writer.close()
        reader.close()


def test_a_merge_that_fails_leaves_the_snapshot_as_it_was(tmp_path, merge_often, monkeypatch, caplog):
    rng = np.random.default_rng(4)
    index = Index.open_for_writing(tmp_path / "index", META)
    monkeypatch.setattr(qa.index, "merged", lambda views, settings, folder: (_ for _ in ()).throw(OSError("disk full")))
    try:
        for n in range(6):
            index.write([revision(f"doc-{n}", rng)])
            index.refresh()
        index.settle()
        assert "could not merge" in caplog.text
        assert len(index.refresh().views) == 6
        assert_same_as_afresh(index, tmp_path)
    finally:
        index.close()


# Writes forever, one document at a time, merging every 2 small segments and saving
# after each write, so that a kill lands in a merge, a segment's save or a snapshot's.
_WRITER = """
import sys, numpy as np
import qa.segments, qa.index
sys.path.insert(0, {tests!r})
from test_segments import META, revision
qa.segments.MERGE_FACTOR = 2
qa.index.SAVED_FROM = 50
index = qa.index.Index.open_for_writing(qa.index.Path({root!r}), META)
rng = np.random.default_rng({seed})
n = 0
while True:
    index.write([revision(f"doc-{{rng.integers(0, 400)}}", rng, 20)])
    index.refresh()
    index.save()
    n += 1
    print(n, len(index.snapshot().views), flush=True)
"""


def test_kill_9_during_merges_and_saves_leaves_an_index_that_loads_whole(tmp_path):
    root = tmp_path / "index"
    for attempt in range(5):
        script = _WRITER.format(tests=str(Path(__file__).parent), root=str(root), seed=attempt)
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
        writes = 0
        while writes < 8 + attempt * 3:
            line = process.stdout.readline()
            assert line, "the writer stopped"
            writes = int(line.split()[0])
        time.sleep(random.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait()
        index = Index.open(root)
        try:
            for directory in (root / DERIVED).glob("gen-*"):  # every saved snapshot loads whole
                load_snapshot(directory, root / DERIVED / SEGMENTS, index.store_id, LexicalSettings())
                json.loads((directory / SNAPSHOT).read_text())
            assert_same_as_afresh(index, tmp_path)
        finally:
            index.close()
    assert len(list((root / DERIVED / SEGMENTS).iterdir())) > 1


def test_a_filter_asked_again_after_a_merge_ranks_the_merged_positions(tmp_path, monkeypatch):
    """A merge keeps the generation and moves positions (deleted ones are gone): a
    filter's cached positions from before it must not be used after it."""
    rng = np.random.default_rng(6)
    monkeypatch.setattr(qa.index, "to_merge", lambda views: [])  # no merge until asked for
    index = Index.open_for_writing(tmp_path / "index", META)
    engine = EmbeddedEngine(index)
    request = SearchRequest.parse("river flood", 10, "lexical", SearchFilter(source="even"))
    try:
        for n in (0, 2, 4, 0):  # a segment each; doc-0 again: its first passages are deleted
            index.write([revision(f"doc-{n}", rng, 4)])
            before = index.refresh()
        rows = before.row_at(engine.positions(request, None, terms("river flood"), before).ids)
        monkeypatch.setattr(qa.index, "to_merge", qa.segments.to_merge)
        after = index.settle()
        assert after.generation == before.generation and after.size < before.size
        found = engine.positions(request, None, terms("river flood"), after)
        assert after.row_at(found.ids).tolist() == rows.tolist() and len(rows)
    finally:
        index.close()


def test_convex_fusion_of_candidates_ranks_as_fusing_every_passage(tmp_path, monkeypatch):
    """Above WHOLE_ARRAYS_UP_TO a hybrid search fuses the dense top ``candidates`` with
    the BM25 top k of the rest; it must rank as fusing every live passage's BM25 score
    with the dense scores of that top, filter or not, deletions or not."""
    from qa.fusion import Fusion, fuse_scores

    monkeypatch.setattr(qa.embedded, "WHOLE_ARRAYS_UP_TO", 0)
    rng = np.random.default_rng(8)
    index = Index.open_for_writing(tmp_path / "index", META)
    engine = EmbeddedEngine(index)
    try:
        index.write([revision(f"doc-{n}", rng, 3) for n in range(40)])
        index.write([revision("doc-3", rng, 2)], delete=["doc-8"])  # deletions in the first segment
        snapshot = index.refresh()
        depth = 15
        for question in QUESTIONS:
            vector = rng.standard_normal(DIMENSION).astype(np.float32)
            vector /= np.linalg.norm(vector)
            for search_filter in (None, SearchFilter(source="even")):
                allowed = engine.allowed(search_filter, snapshot) if search_filter else snapshot.live_positions
                top = snapshot.dense(vector, depth, allowed if search_filter else None)
                dense = np.full(snapshot.size, -np.inf, np.float32)
                dense[top.ids] = top.scores
                every = fuse_scores(dense[allowed], snapshot.lexical_scores(terms(question))[allowed], Fusion(), 10,
                                    depth)
                request = SearchRequest.parse(question, 10, "hybrid", search_filter)
                found = engine.positions(request, vector, terms(question), snapshot, Fusion(), depth)
                assert found.ids.tolist() == allowed[every.ids].tolist(), (question, search_filter)
                np.testing.assert_allclose(found.scores, every.scores, rtol=1e-6)
    finally:
        index.close()


def _builders(tmp_path: Path, passages: int, dimension: int = DIMENSION, saved_from: int = 25):
    """A builder that saves its segment from ``saved_from`` passages and one that holds
    everything in memory, both given the same ``passages`` (clustered vectors, random
    words) ten at a time."""
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((4, dimension))
    vectors = (centres[rng.integers(0, 4, passages)] + 0.1 * rng.standard_normal((passages, dimension)))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    words = [list(rng.choice(WORDS, 4)) for _ in range(passages)]
    saving = SegmentBuilder(dimension, LexicalSettings(), saved_in=tmp_path / "segments", saved_from=saved_from)
    holding = SegmentBuilder(dimension, LexicalSettings())
    for first in range(0, passages, 10):
        for builder in (saving, holding):
            builder.add(np.arange(first, first + 10) * 2, vectors[first : first + 10],
                        [CountedTerms.of(words[first : first + 10])])
    return saving, holding


def _staged(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "segments").glob(".tmp-*"))


@pytest.mark.parametrize("indexed", [False, True])
def test_a_large_segment_goes_to_disk_as_it_grows_and_is_the_one_built_in_memory(tmp_path, small_segments, indexed):
    saving, holding = _builders(tmp_path, 2000)
    assert len(_staged(tmp_path)) == 1  # its vectors, written as they came
    saved, held = saving.build(indexed), holding.build(indexed)
    assert saved.directory is not None and held.directory is None and not _staged(tmp_path)
    assert (saved.indexed, saved.vectors.kind) == (held.indexed, held.vectors.kind) == \
        (indexed, "ivf" if indexed else "exact")
    assert small_segments == ([2000, 2000] if indexed else [])
    np.testing.assert_array_equal(saved.rows, held.rows)
    np.testing.assert_array_equal(saved.vectors.vectors(), held.vectors.vectors())
    queries = held.vectors.vectors()[::70]
    np.testing.assert_array_equal(saved.vectors.search(queries, 5)[1], held.vectors.search(queries, 5)[1])
    assert list(saved.lexical.vocabulary) == list(held.lexical.vocabulary)
    assert (saved.lexical.counts != held.lexical.counts).nnz == 0
    for question in ([word] for word in WORDS[:6]), [list(WORDS[:4])]:  # BM25 of what each holds: the same
        for terms in question:
            collection = Collection(len(held), held.lexical.own_average, {t: 1.0 for t in terms}, {})
            found = [segment.lexical.search(QuestionTerms.of(segment.lexical, terms, collection), 20)
                     for segment in (saved, held)]
            assert len(found[0][1]) and found[0][1].tolist() == found[1][1].tolist()
            np.testing.assert_array_equal(found[0][0], found[1][0])


def test_a_segment_going_to_disk_holds_none_of_its_vectors_in_memory(tmp_path):
    tracemalloc.start()
    try:
        saving, _ = _builders(tmp_path, 0, dimension=256)  # nothing held yet
        before = tracemalloc.get_traced_memory()[0]
        for first in range(0, 50_000, 1000):  # 51 MB of vectors
            saving.add(np.arange(first, first + 1000), np.full((1000, 256), 1 / 16, np.float32),
                       [CountedTerms.of([["river"]] * 1000)])
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 5e6
    assert len(saving.build(indexed=False)) == 50_000


@pytest.mark.parametrize("failing", ["vectors", "segment"])
def test_a_segment_that_cannot_be_written_is_kept_whole_in_memory(tmp_path, monkeypatch, caplog, failing):
    """A full disk while the vectors are written, or while the segment is saved: the
    segment is built in memory, as it would have been saved, and no staging is left."""
    failures = iter([False, True] if failing == "vectors" else [True])

    def full(*args, original=None):
        if next(failures, False):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(*args)

    target = (qa.vector_store.FlatFile, "add") if failing == "vectors" else (qa.lexical.TermCounter, "save")
    monkeypatch.setattr(*target, functools.partialmethod(full, original=getattr(*target)))
    saving, holding = _builders(tmp_path, 60)
    segment = saving.build(indexed=False)
    assert segment.directory is None and not _staged(tmp_path) and "kept in memory" in caplog.text
    np.testing.assert_array_equal(segment.rows, holding.build(indexed=False).rows)
    np.testing.assert_array_equal(segment.vectors.vectors(), holding.build(indexed=False).vectors.vectors())


def test_a_merge_reads_an_indexed_segment_part_by_part(tmp_path, small_segments, monkeypatch):
    """Rewriting a large IVF segment after deletions holds one part of its vectors at a
    time, not every one decoded at once: the parts are the same vectors."""
    monkeypatch.setattr(qa.segments, "READ_VECTORS", 300)
    saving, _ = _builders(tmp_path, 2000)
    segment = saving.build(indexed=True)
    assert segment.vectors.kind == "ivf" and segment.directory is not None
    live = np.flatnonzero(np.random.default_rng(12).random(len(segment)) > 0.3)
    sources = segment.vector_sources(live)
    assert len(sources) == 5 and max(source.size for source in sources) == 300
    np.testing.assert_array_equal(np.vstack([source.read() for source in sources]), segment.vectors.vectors()[live])
