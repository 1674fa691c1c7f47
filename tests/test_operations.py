"""What an operator relies on: readiness, /metrics, access logs, settings in README, several workers."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import click
import pytest
from conftest import REPO, http, start_server

from qa.cli import cli
from qa.web import create_app

SECRET_QUESTION = "what did the lighthouse keeper whisper at midnight?"


def metric(client, line_start: str) -> float:
    """The value of the first /metrics line starting with ``line_start`` (0 when absent)."""
    text = client.get("/metrics").get_data(as_text=True)
    found = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def test_ready_says_what_is_loaded(client, searcher):
    response = client.get("/api/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ready"] is True and body["model"] == searcher.engine.meta()["model"]
    assert body["passages"] == searcher.engine.state().passages


def test_ready_is_503_when_the_store_cannot_be_read(client, searcher, monkeypatch):
    def unreadable():
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(searcher.engine, "state", unreadable)
    response = client.get("/api/ready")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "not_ready"
    assert "disk I/O error" in response.get_json()["error"]["message"]


def test_probes_need_no_token_but_metrics_do(searcher):
    client = create_app({"TESTING": True, "READ_TOKEN": "r"}, searcher=searcher).test_client()
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/ready").status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer r"}).status_code == 200


def test_metrics_count_requests_by_route_and_status_and_time_searches_by_mode(client, searcher):
    ok = 'qa_http_requests_total{method="GET",route="/api/search",status="200"}'
    bad = 'qa_http_requests_total{method="GET",route="/api/search",status="400"}'
    lexical = 'qa_search_seconds_count{mode="lexical"}'
    before = {name: metric(client, name) for name in (ok, bad, lexical)}
    assert client.get("/api/search", query_string={"q": "Wagner", "mode": "lexical"}).status_code == 200
    assert client.get("/api/search", query_string={"q": "Wagner", "k": "0"}).status_code == 400
    assert metric(client, ok) == before[ok] + 1
    assert metric(client, bad) == before[bad] + 1
    assert metric(client, lexical) == before[lexical] + 1
    assert metric(client, 'qa_http_request_seconds_count{method="GET",route="/api/search",status="200"}') >= 1
    response = client.get("/metrics")
    assert response.content_type.startswith("text/plain")
    assert metric(client, "qa_index_passages ") == searcher.engine.state().passages
    assert metric(client, "qa_index_documents ") == searcher.engine.state().documents


@pytest.mark.parametrize("log_queries", [False, True])
def test_the_access_log_has_one_json_line_per_request_and_questions_only_when_asked(
    searcher, access_lines, log_queries
):
    client = create_app({"TESTING": True, "LOG_QUERIES": log_queries}, searcher=searcher).test_client()
    client.get("/api/search", query_string={"q": SECRET_QUESTION})
    client.post("/api/search", json={"q": SECRET_QUESTION, "k": 2})
    client.get("/documents/nothing-here")
    assert [(line["method"], line["route"], line["status"]) for line in access_lines] == [
        ("GET", "/api/search", 200), ("POST", "/api/search", 200), ("GET", "/documents/<path:doc_id>", 404)]
    assert all(line["ms"] >= 0 and "time" in line for line in access_lines)
    logged = json.dumps(access_lines)
    assert ("lighthouse keeper" in logged) is log_queries
    if log_queries:
        assert [line.get("q") for line in access_lines[:2]] == [SECRET_QUESTION, SECRET_QUESTION]


def test_every_setting_and_option_is_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    options = {
        option
        for command in cli.commands.values()
        for parameter in command.params if isinstance(parameter, click.Option)
        for option in parameter.opts if option.startswith("--")
    }
    missing = sorted(option for option in options if f"{option}" not in readme)
    assert not missing, f"README lacks the options {missing}"


def wait_until_all_find(base: str, doc_id: str, clients: int, each: int) -> bool:
    """Whether, within 60 s, ``clients`` concurrent clients each find ``doc_id`` ``each`` times in a row.
    Concurrent clients keep both workers busy, so both answer."""
    def client(number: int) -> bool:
        streak, deadline = 0, time.monotonic() + 60
        while streak < each and time.monotonic() < deadline:
            question = urllib.parse.urlencode({"q": f"largest glacier in the Alps {number} {streak}", "k": 1})
            status, body = http(f"{base}/api/search?{question}")
            found = status == 200 and body["results"] and body["results"][0]["doc_id"] == doc_id
            streak = streak + 1 if found else 0
        return streak == each

    with ThreadPoolExecutor(clients) as pool:
        return all(pool.map(client, range(clients)))


def test_several_workers_share_one_index_and_see_each_others_writes(seed_index, tmp_path):
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root, {"QA_API_TOKEN": "t"}, "--workers", "2", "--threads", "2")
    try:
        workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        deadline = time.monotonic() + 120
        while process.log.read_text().count(" ready: model and index loaded") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, _ = http(f"{base}/api/documents/glacier", "PUT",
                         {"title": "Aletsch", "text": "The Aletsch Glacier is the largest glacier in the Alps."}, "t")
        assert status == 201
        assert wait_until_all_find(base, "glacier", clients=8, each=10)
        lines = [json.loads(line) for line in process.log.read_text().splitlines() if line.startswith("{")]
        assert {line["pid"] for line in lines} == {int(pid) for pid in workers}
        text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
        searches = [line for line in text.splitlines()
                    if line.startswith('qa_http_requests_total{method="GET",route="/api/search",status="200"}')]
        assert float(searches[0].rsplit(" ", 1)[1]) >= 20  # counted across both workers
        assert not list((root / "derived").glob(".tmp-*"))
    finally:
        process.terminate()
        process.wait(timeout=60)
