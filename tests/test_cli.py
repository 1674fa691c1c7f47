"""The `qa` command line, run as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import SEEDS


def qa(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def engine(engine_kind, monkeypatch):
    """Every `qa` run in a test using this fixture works on the engine ``engine_kind``."""
    monkeypatch.setenv("QA_ENGINE", engine_kind)
    return engine_kind


def test_ingest_then_ask(tmp_path, engine):
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


def test_errors_are_messages_not_tracebacks(tmp_path, engine):
    missing = qa("ask", "anything", "--index", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no index" in missing.stderr and "Traceback" not in missing.stderr

    empty = qa("ask", " ", "--index", str(tmp_path / "none"))
    assert empty.returncode == 1 and "is empty" in empty.stderr

    nothing = qa("ingest", str(tmp_path / "nowhere"), "--index", str(tmp_path / "index"))
    assert nothing.returncode == 1 and "no readable documents" in nothing.stderr
    assert not (tmp_path / "index").exists()


def test_list_ingest_with_an_id_and_delete(tmp_path, engine):
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


def test_an_ingest_with_nothing_readable_names_every_file_and_why(tmp_path, engine):
    missing = qa("ingest", str(tmp_path / "no" / "such" / "path"), "--index", str(tmp_path / "index"))
    assert missing.returncode == 1
    assert f"{tmp_path / 'no' / 'such' / 'path'}: no such file or folder" in missing.stderr
    assert "no readable documents" in missing.stderr

    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    (folder / "data.txt").write_bytes(b"\x00\x01\x02binary\x00" * 20)
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    done = qa("ingest", str(folder), "--index", str(tmp_path / "index"))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    for name, reason in (("broken.pdf", "not a readable PDF"), ("data.txt", "binary data"),
                         ("photo.jpg", "unsupported file type .jpg")):
        assert any(name in line and reason in line for line in lines), (name, done.stderr)
    # what pypdf says reaches the terminal only beside the file it is about
    assert all("broken.pdf" in line for line in lines if "EOF marker" in line), done.stderr
    assert not (tmp_path / "index" / "documents.sqlite").exists() or "0 document" in done.stdout


def test_a_pdf_read_with_warnings_is_indexed_and_the_warning_names_it(tmp_path):
    from conftest import minimal_pdf

    damaged = minimal_pdf(["The Aletsch Glacier is the largest glacier in the Alps."])
    damaged = re.sub(rb"startxref\n\d+", b"startxref\n99999", damaged)  # a wrong offset: pypdf searches for the table
    (tmp_path / "glacier.pdf").write_bytes(damaged)
    done = qa("ingest", str(tmp_path / "glacier.pdf"), "--index", str(tmp_path / "index"))
    assert done.returncode == 0, done.stderr
    assert "1 document(s)" in done.stdout
    warned = [line for line in done.stderr.splitlines() if "pypdf" in line]
    assert warned and all("glacier.pdf" in line for line in warned), done.stderr
