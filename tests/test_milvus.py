"""The Milvus engine on a real Milvus Lite: whole documents through kill -9, long texts,
writes that die half done, and filters as Milvus expressions."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS, start_server
from test_durability import TOKEN, kill_during_puts, version_text, write_corpus

from qa.chunking import ChunkSettings, chunk_document
from qa.database import Revision
from qa.documents import Document
from qa.engines import EngineChoice, open_engine
from qa.errors import IndexUnavailable
from qa.ingest import ingest, store_documents
from qa.readers import read_document
from qa.search import Searcher, SearchRequest

pytest.importorskip("pymilvus")

ROUNDS = 5
WAGNER_ID = "seeds/01-wagner-group-withdraws-from-mali.md"


def milvus(root: Path) -> EngineChoice:
    return EngineChoice("milvus", root)


def opened(choice: EngineChoice, within: float = 30):
    """The engine, once Milvus Lite has let go of a killed process's file."""
    deadline = time.monotonic() + within
    while True:
        try:
            return open_engine(choice)
        except IndexUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def engine(tmp_path, embedder):
    """The seeds in a Milvus Lite index at ``tmp_path / "index"``, open."""
    choice = milvus(tmp_path / "index")
    ingest([SEEDS], choice, embedder)
    engine = open_engine(choice)
    yield engine
    engine.close()


def assert_whole(choice: EngineChoice, embedder, texts: dict[str, set[str]], required: set[str] = frozenset()
                 ) -> set[str]:
    """The index opens; each document is one whole version, its passages cut from its text,
    each passage entity of its head's version with its own vector, and none left of another.

    Returns the ids stored; every id in ``required`` must be among them."""
    engine = opened(choice)
    try:
        client, passages = engine._client, engine._passages_name
        total, listed = engine.documents(0, 1000)
        settings = ChunkSettings()
        for summary in listed:
            document, stored = engine.document(summary.doc_id)
            assert document.text in texts[document.doc_id], f"{document.doc_id} is neither version"
            assert [(p.start, p.end) for p in stored] == [(p.start, p.end) for p in chunk_document(document, settings)]
            assert summary.passages == len(stored)
        rows = client.query(passages, filter="pk >= 0", output_fields=["doc_id", "version", "text", "vector"])
        heads = engine._heads(summary.doc_id for summary in listed)
        assert {row["doc_id"] for row in rows} == set(heads), "passages of a document with no head"
        assert all(row["version"] == heads[row["doc_id"]].version for row in rows), "passages of two versions"
        assert len(rows) == sum(s.passages for s in listed) == engine.state().passages
        sample = random.sample(rows, min(6, len(rows)))
        fresh = embedder.encode([row["text"] for row in sample])
        for row, vector in zip(sample, fresh):
            assert float(np.asarray(row["vector"], np.float32) @ vector) > 0.999, "a passage with another's vector"
        ids = {summary.doc_id for summary in listed}
        assert total == len(ids) and required <= ids, f"lost {required - ids}"
        return ids
    finally:
        engine.close()


def test_kill_9_during_an_ingest_into_milvus_leaves_every_document_whole(tmp_path, embedder):
    corpus, root = tmp_path / "rivers", tmp_path / "index"
    command = [sys.executable, "-m", "qa", "ingest", str(corpus), "--index", str(root), "--engine", "milvus"]
    texts = {f"rivers/river{n:02}.txt": {version_text(n, "A"), version_text(n, "B")} for n in range(12)}
    write_corpus(corpus, "A")
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    whole_run = time.monotonic() - started
    for round_ in range(ROUNDS):
        write_corpus(corpus, "B" if round_ % 2 == 0 else "A")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0.5, 1.0) * whole_run)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert_whole(milvus(root), embedder, texts, required=set(texts))
    write_corpus(corpus, "A")
    opened(milvus(root)).close()  # wait for the killed run's Milvus Lite to let go
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    assert_whole(milvus(root), embedder, {k: {version_text(int(k[-6:-4]), "A")} for k in texts})


def test_kill_9_of_a_server_on_milvus_during_put_leaves_every_document_whole(tmp_path, embedder):
    root = tmp_path / "index"
    ingest([SEEDS], milvus(root), embedder)
    texts = {f"river{n}": {version_text(n, "A"), version_text(n, "B")} for n in range(4)}
    texts[WAGNER_ID] = {read_document(SEEDS / WAGNER_ID.partition("/")[2], WAGNER_ID).text}  # as it is stored
    seen: set[str] = set()
    for round_ in range(ROUNDS):
        opened(milvus(root)).close()
        process, base = start_server(root, {"QA_API_TOKEN": TOKEN, "QA_ENGINE": "milvus"})
        kill_during_puts(process, base, "AB"[round_ % 2])
        seen = assert_whole(milvus(root), embedder, texts, required=seen)


def test_a_write_that_dies_before_its_heads_is_rolled_back_and_one_after_them_finished(tmp_path, embedder,
                                                                                        monkeypatch):
    choice = milvus(tmp_path / "index")
    ingest([SEEDS], choice, embedder)
    engine = open_engine(choice)
    old = engine.document(WAGNER_ID)[0]
    new = Document(WAGNER_ID, old.title, old.source, "Wagner left Mali in June 2025 after three and a half years.")
    heads = [row for row in engine._client.query(engine._documents_name, filter='kind == "head"',
                                                 output_fields=["key"])]
    real_upsert = engine._upsert

    def dies_at_heads(collection, rows):
        if rows and rows[0]["kind"] == "head":
            raise KeyboardInterrupt("killed")
        real_upsert(collection, rows)

    monkeypatch.setattr(engine, "_upsert", dies_at_heads)
    with pytest.raises(KeyboardInterrupt):
        store_documents(engine, embedder, [new])
    engine.close()  # as a killed process leaves it: new passages and parts written, no head, a mark

    engine = open_engine(choice)  # rolls the write back
    document, passages = engine.document(WAGNER_ID)
    assert document.text == old.text and len(passages) == 7 and engine.state().passages == 7
    assert not engine._client.query(engine._documents_name, filter='kind == "mark"', output_fields=["key"])
    assert len(heads) == engine.state().documents == 1

    real_delete = engine._client.delete
    calls = []

    def dies_after_heads(collection_name, ids=None, filter=""):
        calls.append(filter)
        if "version <" in filter:  # the old version's passages are next
            raise KeyboardInterrupt("killed")
        return real_delete(collection_name, ids=ids, filter=filter)

    monkeypatch.setattr(engine._client, "delete", dies_after_heads)
    with pytest.raises(KeyboardInterrupt):
        store_documents(engine, embedder, [new])
    monkeypatch.undo()
    engine.close()

    engine = open_engine(choice)  # finishes it: the head names the new version
    document, passages = engine.document(WAGNER_ID)
    assert document.text == new.text and len(passages) == 1 and engine.state().passages == 1
    (result,) = Searcher(engine, embedder).search(SearchRequest("when did Wagner arrive in Mali?", 5)).results
    assert "June 2025" in result.text
    engine.close()


def test_a_text_longer_than_a_milvus_field_is_kept_in_parts_and_read_back_exactly(engine, embedder):
    paragraphs = [f"Über die Gletscher der Alpen, Teil {n}: Eis fließt talwärts, {n} Meter im Jahr. " * 3
                  for n in range(900)]
    text = "\n\n".join(paragraphs)
    assert len(text.encode()) > 3 * 65_535
    store_documents(engine, embedder, [Document("alps", "Gletscher", "notes", text, {"lang": "de"})])
    document, passages = engine.document("alps")
    assert document.text == text and document.metadata == {"lang": "de"}
    assert [(p.start, p.end) for p in passages] == [(p.start, p.end) for p in chunk_document(document,
                                                                                            ChunkSettings())]
    request = SearchRequest("Teil 417", 3, "lexical")
    assert any("Teil 417:" in r.text for r in Searcher(engine, embedder).search(request).results)


def test_filters_run_inside_the_milvus_search(engine, embedder):
    """Each filter field, with values Milvus's own LIKE would misread, and typed metadata."""
    from qa.filters import SearchFilter

    documents = [
        Document("a_b/1", "Honey", "farm \"north\"", "Honey bees swarm in spring.", {"year": 2021, "tags": ["bee"]}),
        Document("a%b/2", "Honey", "farm south", "Honey bees swarm in summer.", {"year": "2021"}),
        Document("axb/3", "Honey", "farm south", "Honey bees swarm in autumn.", {"year": 2022.0, "ok": True}),
    ]
    store_documents(engine, embedder, documents)
    searcher = Searcher(engine, embedder)

    def found(search_filter: dict) -> set[str]:
        request = SearchRequest("honey bees swarm", 10, "hybrid", SearchFilter.from_json(search_filter))
        return {r.doc_id for r in searcher.search(request).results}

    assert found({"doc_id_prefix": "a_"}) == {"a_b/1"}
    assert found({"doc_id_prefix": "a%"}) == {"a%b/2"}
    assert found({"source": 'farm "north"'}) == {"a_b/1"}
    assert found({"metadata": {"year": 2021}}) == {"a_b/1"}
    assert found({"metadata": {"year": "2021"}}) == {"a%b/2"}
    assert found({"metadata": {"year": [2021, "2021"]}}) == {"a_b/1", "a%b/2"}
    assert found({"metadata": {"year": 2022}}) == {"axb/3"}
    assert found({"metadata": {"tags": "bee"}}) == {"a_b/1"}
    assert found({"metadata": {"ok": True}, "source": "farm south"}) == {"axb/3"}
    assert found({"metadata": {"year": 1999}}) == set()
    assert len(found({})) == 4
    from qa.errors import InvalidInput

    with pytest.raises(InvalidInput, match="cannot match null"):
        found({"metadata": {"year": None}})


def test_milvus_lite_serves_one_process_and_says_so(engine, tmp_path):
    other = subprocess.run([sys.executable, "-m", "qa", "ask", "Wagner", "--index", str(tmp_path / "index"),
                            "--engine", "milvus"], capture_output=True, text=True, timeout=120)
    assert other.returncode == 1 and "Milvus Lite serves one process" in other.stderr, other.stderr


def test_milvus_ranks_as_the_embedded_engine_does(seed_index, engine, embedder):
    """The same passages, vectors and BM25 terms: the same top passages in every mode."""
    from qa.embedded import EmbeddedEngine

    embedded = Searcher(EmbeddedEngine.open(seed_index), embedder)
    searcher = Searcher(engine, embedder)
    for question in ("when did Wagner arrive in Mali?", "Who killed Prigozhin?", "Africa Corps training"):
        for mode in ("hybrid", "dense", "lexical"):
            theirs = [r.passage_id for r in searcher.search(SearchRequest(question, 3, mode)).results]
            ours = [r.passage_id for r in embedded.search(SearchRequest(question, 3, mode)).results]
            assert theirs == ours, (question, mode)
    embedded.engine.close()


def test_a_revision_of_a_passage_too_long_for_milvus_is_refused_and_changes_nothing(engine, embedder):
    from qa.errors import InvalidInput

    document = Document("huge", "Huge", "x", "y" * 70_000)
    revision = Revision(document, chunk_document(document, ChunkSettings()), np.zeros((1, 384), np.float32))
    with pytest.raises(InvalidInput, match="at most 65535 bytes"):
        engine.write([revision])
    assert engine.state().documents == 1 and engine.document("huge") is None


def test_a_write_that_began_before_a_newer_committed_one_leaves_the_newer_standing(engine, embedder,
                                                                                   monkeypatch):
    """Two processes writing one document at once: the version begun last stands whole,
    whichever commits first; the other's passages are removed, not left behind."""
    import qa.milvus

    now = time.time_ns()
    newer = Document("river", "River", "notes", "The newer version says the river floods in autumn.")
    older = Document("river", "River", "notes", "The older version says the river floods in spring.")
    monkeypatch.setattr(qa.milvus.time, "time_ns", lambda: now + 10**9)
    store_documents(engine, embedder, [newer])
    monkeypatch.setattr(qa.milvus.time, "time_ns", lambda: now)  # began earlier, commits later
    store_documents(engine, embedder, [older])
    document, passages = engine.document("river")
    assert document.text == newer.text and len(passages) == 1
    rows = engine._client.query(engine._passages_name, filter='doc_id == "river"', output_fields=["text"])
    assert [row["text"] for row in rows] == [newer.text]
