"""`qa serve` as a real process on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
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
