"""`qa serve` as a real process on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import SEEDS, http, start_server


@pytest.fixture(scope="module")
def server(seed_index):
    process, base = start_server(seed_index)
    yield base
    process.terminate()
    process.wait(timeout=30)


def test_served_over_http(server):
    status, health = http(f"{server}/api/health")
    assert status == 200 and health["status"] == "ok" and health["passages"] >= 5

    query = urllib.parse.urlencode({"q": "when did Wagner arrive in Mali?", "k": 3})
    status, body = http(f"{server}/api/search?{query}")
    assert status == 200 and len(body["results"]) == 3
    assert "December 2021" in body["results"][0]["answer"]["text"]

    request = urllib.request.Request(
        f"{server}/api/search", data=json.dumps({"q": "Who killed Prigozhin?", "k": 0}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=30)
        pytest.fail("k=0 was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 400 and json.load(error)["error"]["code"] == "invalid_k"


def test_the_production_server_answers(server):
    with urllib.request.urlopen(f"{server}/", timeout=30) as response:
        assert response.headers["Server"] == "qa"  # waitress, not Flask's development server
        assert "<form" in response.read().decode()


def test_a_running_server_picks_up_what_qa_ingest_and_qa_delete_change(seed_index, tmp_path):
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    note = tmp_path / "note.txt"
    note.write_text("The Aletsch Glacier is the largest glacier in the Alps.")
    process, base = start_server(root)
    try:
        def found() -> set[str]:
            query = urllib.parse.urlencode({"q": "largest glacier in the Alps", "mode": "lexical"})
            return {r["doc_id"] for r in http(f"{base}/api/search?{query}")[1]["results"]}

        cli = [sys.executable, "-m", "qa"]
        subprocess.run([*cli, "ingest", str(note), "--index", str(root)], check=True, capture_output=True)
        assert _eventually(lambda: found() == {"note.txt"})
        subprocess.run([*cli, "delete", "note.txt", "--index", str(root)], check=True, capture_output=True)
        assert _eventually(lambda: found() == set())
        assert http(f"{base}/api/health")[1]["documents"] == 1
    finally:
        process.terminate()
        process.wait(timeout=30)


def _eventually(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_of_simultaneous_creates_of_one_id_exactly_one_succeeds(seed_index, tmp_path):
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root, {"QA_API_TOKEN": "creates"})
    statuses: dict[str, list[int]] = {f"race-{n}": [] for n in range(10)}
    try:
        for doc_id, answers in statuses.items():
            start = threading.Barrier(4)

            def create(text: str) -> None:
                start.wait()
                answers.append(http(f"{base}/api/documents", "POST", {"id": doc_id, "title": "t", "text": text},
                                    token="creates")[0])

            writers = [threading.Thread(target=create, args=(f"version {n} of {doc_id}",)) for n in range(4)]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join(timeout=60)
        _, listed = http(f"{base}/api/documents?limit=100")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert {doc_id: sorted(answers) for doc_id, answers in statuses.items()} == {
        doc_id: [201, 409, 409, 409] for doc_id in statuses}
    assert sorted(d["id"] for d in listed["documents"] if d["id"].startswith("race-")) == sorted(statuses)


def test_a_server_whose_index_is_rebuilt_with_another_model_says_so_once(seed_index, tmp_path, static_model):
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root)
    try:
        query = urllib.parse.urlencode({"q": "when did Wagner arrive in Mali?"})
        assert http(f"{base}/api/search?{query}")[0] == 200
        rebuilt = subprocess.run([sys.executable, "-m", "qa", "ingest", str(SEEDS), "--index", str(root),
                                  "--replace", "--model", str(static_model)], capture_output=True, text=True)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert _eventually(lambda: http(f"{base}/api/search?{query}")[0] == 503)
        for _ in range(20):  # every search, and readiness, refuse the same way
            status, body = http(f"{base}/api/search?{query}")
            assert status == 503 and body["error"]["code"] == "index_settings"
            time.sleep(0.02)
        status, body = http(f"{base}/api/ready")
        assert status == 503 and body["error"]["code"] == "index_settings"
        assert str(static_model) in body["error"]["message"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    log = process.log.read_text()
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if "was rebuilt with model" in line]) == 1


def test_a_server_follows_an_index_rebuilt_with_the_same_model(seed_index, tmp_path, embedder):
    """Another process rebuilds the store with other chunking but the same model: the
    server serves the rebuilt contents without a restart."""
    from qa.chunking import ChunkSettings
    from qa.engines import EngineChoice
    from qa.ingest import ingest

    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root)
    try:
        before = http(f"{base}/api/health")[1]["passages"]
        report = ingest([SEEDS], EngineChoice(index=root), embedder, ChunkSettings(max_words=60), replace=True)
        assert report.passages != before
        assert _eventually(lambda: http(f"{base}/api/health")[1]["passages"] == report.passages)
        query = urllib.parse.urlencode({"q": "when did Wagner arrive in Mali?", "k": 1})
        status, body = http(f"{base}/api/search?{query}")
        assert status == 200 and "December 2021" in body["results"][0]["text"]
        assert len(body["results"][0]["text"].split()) <= 60
    finally:
        process.terminate()
        process.wait(timeout=30)
