"""The `qa` command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SEEDS


def qa(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, timeout=300, env=env)


def test_ingest_then_ask(tmp_path):
    index = tmp_path / "index"
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"not a pdf")
    done = qa("ingest", str(SEEDS), str(broken), "--index", str(index))
    assert done.returncode == 0, done.stderr
    assert "1 document(s)" in done.stdout and "broken.pdf" in done.stderr

    answer = qa("ask", "when did Wagner arrive in Mali?", "-k", "2", "--index", str(index))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("1. Wagner first arrived in Mali in December 2021")

    as_json = json.loads(qa("ask", "when did Wagner arrive in Mali?", "--json", "--index", str(index)).stdout)
    assert as_json["k"] == 5 and "December 2021" in as_json["results"][0]["text"]


def test_errors_are_messages_not_tracebacks(tmp_path):
    missing = qa("ask", "anything", "--index", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no index at" in missing.stderr and "Traceback" not in missing.stderr

    empty = qa("ask", " ", "--index", str(tmp_path / "none"))
    assert empty.returncode == 1 and "is empty" in empty.stderr

    nothing = qa("ingest", str(tmp_path / "nowhere"), "--index", str(tmp_path / "index"))
    assert nothing.returncode == 1 and "no readable documents" in nothing.stderr
    assert not (tmp_path / "index").exists()


def test_list_ingest_with_an_id_and_delete(tmp_path):
    index = tmp_path / "index"
    note = tmp_path / "note.txt"
    note.write_text("The Aletsch Glacier is the largest glacier in the Alps.")
    assert qa("ingest", str(SEEDS), str(note), "--index", str(index)).returncode == 0
    again = qa("ingest", str(note), "--id", "glaciers/aletsch", "--index", str(index))
    assert again.returncode == 0 and "now holds 3 document(s)" in again.stdout

    listed = [json.loads(line) for line in qa("list", "--json", "--index", str(index)).stdout.splitlines()]
    assert [d["id"] for d in listed] == ["glaciers/aletsch", "note.txt", "seeds/01-wagner-group-withdraws-from-mali.md"]
    assert listed[2]["passages"] == 7

    deleted = qa("delete", "note.txt", "nothing-here", "--index", str(index))
    assert deleted.returncode == 1 and "deleted note.txt" in deleted.stdout and "not found: nothing-here" in deleted.stderr
    answer = json.loads(qa("ask", "largest glacier in the Alps", "--json", "--mode", "lexical", "--index", str(index)).stdout)
    assert {r["doc_id"] for r in answer["results"]} == {"glaciers/aletsch"}
    assert qa("list", "--index", str(index)).stdout.count("\n") == 2
