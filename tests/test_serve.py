"""`qa serve` as a real process on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import http, start_server


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
