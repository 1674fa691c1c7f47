"""/api/openapi.json describes every route, and the app keeps to it (schemathesis)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from conftest import start_server
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa.embedded import EmbeddedEngine
from qa.index import Index
from qa.search import Searcher
from qa.web import create_app

TOKEN = "openapi-test-token"
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


def described(spec: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in spec["paths"].items() for method in item if method.upper() in METHODS}


def routed(app) -> set[tuple[str, str]]:
    """Every (path, method) the app answers, in OpenAPI's {name} form; static files aside."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        found |= {(path, method) for method in rule.methods & METHODS}
    return found


def test_every_route_is_described_and_nothing_else(client, app):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert routed(app) - described(spec) == set(), "routes missing from the spec"
    assert described(spec) - routed(app) == set(), "the spec describes routes that do not exist"


def test_every_operation_lists_its_errors(client):
    spec = client.get("/api/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method.upper() in METHODS and path not in {"/api/health"}:
                assert any(status.startswith("4") or status == "503" for status in operation["responses"]), (path, method)


@pytest.fixture(scope="module")
def writable_app(seed_index, embedder, tmp_path_factory):
    root = tmp_path_factory.mktemp("openapi") / "index"
    shutil.copytree(seed_index, root)
    return create_app({"TESTING": True, "API_TOKEN": TOKEN}, searcher=Searcher(EmbeddedEngine(Index.open(root)), embedder))


@pytest.fixture(scope="module")
def api_schema(writable_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", writable_app)


CHECKS = {
    # Requests the spec calls valid: answered as the spec says, in status, content type and body.
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance, content_type_conformance,
                              response_schema_conformance],
    # Requests it calls invalid (wrong types, out-of-range values, malformed bodies): never a 500.
    GenerationMode.NEGATIVE: [not_a_server_error],
}


@pytest.mark.parametrize("mode", list(CHECKS), ids=lambda m: m.value)
def test_no_request_gets_a_500_or_an_answer_the_spec_does_not_describe(api_schema, mode):
    """Generated requests to every operation, with the write token; 25 per operation and mode."""
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not (operation.query or operation.path_parameters or operation.body):
            continue  # nothing in the request to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS[mode])

        check()


def test_schemathesis_finds_nothing_with_every_check_against_a_real_server(seed_index, tmp_path):
    """The CLI run an operator would make: every check, 60 examples an operation, writes
    allowed. Each schema-valid request is accepted, each invalid one refused, 405s say Allow."""
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root, {"QA_API_TOKEN": TOKEN})
    try:
        run = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{base}/api/openapi.json",
             "--checks", "all", "--max-examples", "60", "-H", f"Authorization: Bearer {TOKEN}"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "API Operations:" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0 or only_multipart_text_taken_as_typed(run.stdout), run.stdout[-8000:]


# A multipart text field carries no type: schemathesis's negative check makes an id the
# null or a file the number 5 and sends the text "null" or "5", which is a valid id or
# file, and counts its acceptance as a failure. Nothing else is forgiven.
_UNTYPED_PART = re.compile(r"violates `(?:type|not)` at /properties/(?:file|id|title|source)\b")


def only_multipart_text_taken_as_typed(output: str) -> bool:
    """Whether every failure schemathesis reports is such a request, identical on the wire
    to a valid one."""
    failures = re.findall(r"^- (ST\d+) ", output, re.MULTILINE)
    cases = output.split("Test Case ID:")[1:]
    return bool(failures) and set(failures) == {"ST201"} and all(
        "multipart/form-data" in case
        and all(_UNTYPED_PART.search(line) for line in case.splitlines() if "violates `" in line)
        for case in cases)
