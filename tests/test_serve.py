"""`qa serve` as a real process on a free loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(scope="module")
def server(seed_index):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", str(port), "--index", str(seed_index)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"qa serve exited with {process.returncode}: {process.stdout.read()}")
        try:
            if _get(f"{base}/api/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.25)
    else:
        process.kill()
        pytest.fail("qa serve did not answer /api/health within 120 s")
    yield base
    process.terminate()
    process.wait(timeout=30)


def test_served_over_http(server):
    status, health = _get(f"{server}/api/health")
    assert status == 200 and health["status"] == "ok" and health["passages"] >= 5

    query = urllib.parse.urlencode({"q": "when did Wagner arrive in Mali?", "k": 3})
    status, body = _get(f"{server}/api/search?{query}")
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
