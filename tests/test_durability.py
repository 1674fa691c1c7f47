"""Nothing corrupts the index: kill -9 mid-write, and searches racing writes.

Every round checks what a user relies on: the index opens, SQLite, FAISS and BM25
hold the same passages, and each document is wholly its old or its new version,
its passages cut from its stored text and its vectors those of those passages.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import build_static_model, http, seeded, start_server

from qa.chunking import ChunkSettings, chunk_document
from qa.embedded import EmbeddedEngine
from qa.engines import open_engine
from qa.index import DATABASE, DERIVED, SEGMENTS, SNAPSHOT, Index, load_snapshot
from qa.lexical import LexicalSettings
from qa.search import Searcher, SearchRequest
from qa.web import create_app

ROUNDS = 10
TOKEN = "durable"
SENTENCES = [
    "The {n} river floods its valley every {season}, and farmers plant {crop} when the water falls.",
    "Traders of the {n} delta carried {crop} downstream on flat boats long before the railway came.",
    "In {season} the {n} basin records its lowest rainfall, and wells in the hills run dry.",
]


def version_text(n: int, version: str) -> str:
    """A document of a few passages whose every sentence says which version it is."""
    season, crop = ("spring", "millet") if version == "A" else ("autumn", "sorghum")
    paragraph = " ".join(s.format(n=f"River{n}{version}", season=season, crop=crop) for s in SENTENCES)
    return "\n\n".join(f"{paragraph} Part {i} of version {version}." for i in range(4))


def write_corpus(folder: Path, version: str, count: int = 12) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / f"river{n:02}.txt").write_text(version_text(n, version))


def assert_whole(root: Path, embedder, texts: dict[str, set[str]], required: set[str] = frozenset()) -> set[str]:
    """The index at ``root`` opens, its parts agree, and each document is one whole version.

    Returns the ids stored; every id in ``required`` must be among them."""
    index = Index.open(root)
    try:
        snapshot = index.snapshot()
        live = index.store.live_rows()
        assert snapshot.generation == live.generation
        assert snapshot.rows.tolist() == live.rows.tolist() and len(snapshot) == len(live.rows)
        for directory in (root / DERIVED).glob("gen-*"):  # every saved snapshot of this store loads whole
            if json.loads((directory / SNAPSHOT).read_text())["store_id"] == index.store_id:
                load_snapshot(directory, root / DERIVED / SEGMENTS, index.store_id, LexicalSettings())
            else:  # left by a rebuild killed before it saved: ignored, and older, so the next save clears it
                assert int(directory.name.split("-")[1]) < live.generation
        settings = ChunkSettings(**index.chunking)
        for summary in index.store.documents():
            document, passages = index.store.document(summary["id"])
            assert document.text in texts[document.doc_id], f"{document.doc_id} is neither version"
            assert [(p.start, p.end) for p in passages] == [(p.start, p.end) for p in chunk_document(document, settings)]
        sample = [r.item() for r in random.sample(list(live.rows), min(6, len(live.rows)))]
        records = index.store.passages(sample)
        stored = index.store.vectors(sample, index.dimension)
        fresh = embedder.encode([records[r].passage.text for r in sample])
        for row, vector in zip(sample, fresh):
            assert float(stored[row] @ vector) > 0.999, f"passage row {row} has another passage's vector"
        ids = {d["id"] for d in index.store.documents()}
        assert required <= ids, f"lost {required - ids}"
        return ids
    finally:
        index.close()


def test_kill_9_during_ingest_never_corrupts_the_index(tmp_path, embedder):
    corpus, root = tmp_path / "rivers", tmp_path / "index"
    command = [sys.executable, "-m", "qa", "ingest", str(corpus), "--index", str(root)]
    texts = {f"rivers/river{n:02}.txt": {version_text(n, "A"), version_text(n, "B")} for n in range(12)}
    write_corpus(corpus, "A")
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    whole_run = time.monotonic() - started
    killed_while_writing = 0
    for round_ in range(ROUNDS):
        write_corpus(corpus, "B" if round_ % 2 == 0 else "A")
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if round_ % 2:  # at any moment of the run
            time.sleep(random.uniform(0.3, 1.1) * whole_run)
        else:  # just as the store or the derived files start to change
            killed_while_writing += _wait_for_write(root, process)
            time.sleep(random.uniform(0, 0.05))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert_whole(root, embedder, texts, required=set(texts))
    assert killed_while_writing >= ROUNDS // 4
    write_corpus(corpus, "A")
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    assert_whole(root, embedder, {k: {version_text(int(k[-6:-4]), "A")} for k in texts})


def _wait_for_write(root: Path, process: subprocess.Popen, limit: float = 60) -> bool:
    """Wait until the ingest writes to the store; False if it ended or the limit passed first."""
    def state():
        paths = [root / f"{DATABASE}-wal", root / DATABASE]
        return [p.stat().st_mtime_ns for p in paths if p.exists()] + sorted(os.listdir(root / DERIVED))

    before, deadline = state(), time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if state() != before:
            return True
        time.sleep(0.001)
    return False


def test_kill_9_of_a_server_during_put_never_corrupts_the_index(seed_index, tmp_path, embedder):
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    texts = {f"river{n}": {version_text(n, "A"), version_text(n, "B")} for n in range(4)}
    seed = Index.open(seed_index)
    texts["seeds/01-wagner-group-withdraws-from-mali.md"] = {
        seed.store.document("seeds/01-wagner-group-withdraws-from-mali.md")[0].text}
    seed.close()
    seen: set[str] = set()
    for round_ in range(ROUNDS):
        process, base = start_server(root, {"QA_API_TOKEN": TOKEN})
        kill_during_puts(process, base, "AB"[round_ % 2])
        seen = assert_whole(root, embedder, texts, required=seen)


def kill_during_puts(process: subprocess.Popen, base: str, version: str) -> None:
    """PUT version ``version`` of river0 to river3 at once, and kill -9 the server at a random
    moment of those writes."""
    writers = [threading.Thread(target=_put_quietly, args=(f"{base}/api/documents/river{n}", version_text(n, version)))
               for n in range(4)]
    for writer in writers:
        writer.start()
    time.sleep(random.uniform(0, 0.6))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    for writer in writers:
        writer.join(timeout=60)


def _put_quietly(url: str, text: str) -> None:
    try:
        http(url, "PUT", {"title": "River", "text": text}, token=TOKEN)
    except OSError:  # the server was killed mid-request
        pass


def test_searches_racing_writes_see_whole_states_and_final_counts_are_exact(engine_kind, seed_index, tmp_path,
                                                                           embedder):
    engine = open_engine(seeded(tmp_path / "index", engine_kind, embedder, seed_index))
    app = create_app({"TESTING": True, "API_TOKEN": TOKEN}, searcher=Searcher(engine, embedder))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    deleted_at: dict[str, float] = {}
    replaced_at: dict[str, float] = {}
    live: set[str] = set()
    errors: list[str] = []
    searches: list[tuple[float, list[dict]]] = []
    stop = time.monotonic() + 8

    def write(worker: int) -> None:
        client = app.test_client()
        n = 0
        while time.monotonic() < stop:
            doc_id = f"w{worker}-{n}"
            for method, text in (("post", f"marker{worker}x{n} old words"), ("put", f"marker{worker}x{n} new words")):
                path = "/api/documents" if method == "post" else f"/api/documents/{doc_id}"
                response = getattr(client, method)(path, json={"id": doc_id, "title": "t", "text": text},
                                                   headers=auth)
                if response.status_code not in (200, 201):
                    errors.append(f"{method} {doc_id}: {response.status_code} {response.data!r}")
            replaced_at[doc_id] = time.monotonic()
            if n % 2 == 0:
                response = client.delete(f"/api/documents/{doc_id}", headers=auth)
                if response.status_code != 200:
                    errors.append(f"delete {doc_id}: {response.status_code}")
                deleted_at[doc_id] = time.monotonic()
            else:
                live.add(doc_id)
            n += 1

    def search() -> None:
        client = app.test_client()
        while time.monotonic() < stop:
            started = time.monotonic()
            query = f"marker{random.randrange(2)}x{random.randrange(20)} words"
            response = client.get("/api/search", query_string={"q": query, "k": 10,
                                                               "mode": random.choice(["hybrid", "dense", "lexical"])})
            if response.status_code != 200:
                errors.append(f"search: {response.status_code} {response.data!r}")
            else:
                searches.append((started, response.get_json()["results"]))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors[:5]
    assert len(searches) > 50 and len(deleted_at) > 5
    for started, results in searches:
        for result in results:
            doc_id = result["doc_id"]
            assert not (doc_id in deleted_at and deleted_at[doc_id] < started), f"{doc_id} found after its delete"
            assert not ("old words" in result["text"] and replaced_at.get(doc_id, started) < started), \
                f"{doc_id}'s old text found after its replacement"
        versions = {(r["doc_id"], "old words" in r["text"]) for r in results if r["doc_id"].startswith("w")}
        assert len(versions) == len({doc_id for doc_id, _ in versions}), f"two versions of one document: {versions}"
    state = engine.state()
    assert state.documents == len(live) + 1 and state.passages == len(live) + 7
    total, listed = engine.documents(0, 1000)
    assert total == state.documents
    assert {d.doc_id for d in listed} == live | {"seeds/01-wagner-group-withdraws-from-mali.md"}
    engine.close()


def test_kill_9_during_a_rebuild_with_another_model_keeps_the_old_index_whole(tmp_path, static_model):
    """`qa ingest --replace --model OTHER` stages the new index and swaps it in at the end:
    killed at any moment, the old index is whole and searchable, or the new one is."""
    from qa.embedding import Embedder

    corpus, root = tmp_path / "rivers", tmp_path / "index"
    write_corpus(corpus, "A", count=600)  # 2,400 passages: several batches to stage
    texts = {f"rivers/river{n:02}.txt": {version_text(n, "A")} for n in range(600)}
    old, new = Embedder(str(static_model)), Embedder(str(build_static_model(tmp_path / "new-model", 48)))
    ingest = [sys.executable, "-m", "qa", "ingest", str(corpus), "--index", str(root), "--model"]
    subprocess.run([*ingest, old.name], check=True, capture_output=True, timeout=300)
    rebuild = [*ingest, new.name, "--replace"]
    started = time.monotonic()
    process = subprocess.Popen(rebuild, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staged = _wait_for_staged_rows(root, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert staged, "the rebuild was not caught while it staged its passages"
    assert_searchable(root, old, texts)
    whole_run = time.monotonic() - started
    for _ in range(3):  # at any moment of the run
        process = subprocess.Popen(rebuild, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0.5, 1.5) * whole_run)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert_searchable(root, new if Index.open(root).model == new.name else old, texts)
    subprocess.run(rebuild, check=True, capture_output=True, timeout=300)
    assert Index.open(root).model == new.name
    assert_searchable(root, new, texts)
    assert _staged_rows(root) == 0


def test_an_ingest_killed_leaves_none_of_its_worker_processes_running(tmp_path, static_model):
    """A bulk ingest prepares documents in worker processes: kill -9 the ingest, and
    they end too, rather than wait on it for good."""
    corpus = tmp_path / "rivers"
    write_corpus(corpus, "A", count=3000)  # over a dozen groups of documents: workers start after the first
    process = subprocess.Popen([sys.executable, "-m", "qa", "ingest", str(corpus), "--index", str(tmp_path / "index"),
                                "--model", str(static_model)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = _wait_for_workers(process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert workers, "the ingest ended before its workers were seen"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _running(workers):
        time.sleep(0.05)
    assert not _running(workers), f"worker processes {sorted(_running(workers))} outlived the ingest"


def _wait_for_workers(process: subprocess.Popen, limit: float = 120) -> set[int]:
    """Every process ``process`` has started, once one of them is a multiprocessing
    worker (empty if it ends first)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        children = {pid for pid, parent in _processes().items() if parent == process.pid}
        if any(b"spawn_main" in _command_line(pid) for pid in children):
            return children
        time.sleep(0.01)
    return set()


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it just ended
        return b""


def _processes() -> dict[int, int]:
    """Each live process's parent, from /proc (zombies, which run nothing, left out)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or one that just ended
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = int(fields[1])
    return found


def _running(pids: set[int]) -> set[int]:
    return pids & set(_processes())


def assert_searchable(root: Path, embedder, texts: dict[str, set[str]]) -> None:
    """Every document of ``texts`` is whole in the index at ``root`` and found by a search."""
    assert assert_whole(root, embedder, texts, required=set(texts)) == set(texts)
    searcher = Searcher(EmbeddedEngine(Index.open(root)), embedder)
    results = searcher.search(SearchRequest.parse("River3A floods its valley", 3, "hybrid")).results
    assert results and results[0].doc_id == "rivers/river03.txt"


def _staged_rows(root: Path) -> int:
    with sqlite3.connect(f"file:{root / DATABASE}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT count(*) FROM documents WHERE removed < 0").fetchone()[0]


def _wait_for_staged_rows(root: Path, process: subprocess.Popen, limit: float = 120) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if _staged_rows(root):
            return True
        time.sleep(0.002)
    return False
