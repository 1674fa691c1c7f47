"""`qa ingest --ray` on a real local Ray: the passages and vectors of a plain ingest."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS

pytest.importorskip("ray")


def qa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, timeout=600)


def stored_vectors(root: Path) -> dict[tuple[str, int, int, int], np.ndarray]:
    """Each live passage of the embedded index at ``root`` (document, ordinal, start, end) with its vector."""
    with sqlite3.connect(root / "documents.sqlite") as connection:
        rows = connection.execute('SELECT d.doc_id, p.ordinal, p.start, p."end", p.vector FROM passages p '
                                  "JOIN documents d USING (version) WHERE d.removed IS NULL").fetchall()
    return {(d, o, s, e): np.frombuffer(v, np.float32) for d, o, s, e, v in rows}


def test_an_ingest_on_ray_stores_what_a_plain_ingest_stores(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for seed in SEEDS.iterdir():
        (corpus / seed.name).write_bytes(seed.read_bytes())
    (corpus / "glacier.txt").write_text("The Aletsch Glacier is the largest glacier in the Alps.\n\n" * 3)
    (corpus / "broken.pdf").write_bytes(b"not a pdf")

    plain = qa("ingest", str(corpus), "--index", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr
    on_ray = qa("ingest", str(corpus), "--index", str(tmp_path / "ray"), "--ray", "--ray-workers", "1")
    assert on_ray.returncode == 0, on_ray.stderr
    assert "stored 2 document(s)" in on_ray.stdout and "skipped" in on_ray.stderr and "broken.pdf" in on_ray.stderr

    ours, theirs = stored_vectors(tmp_path / "plain"), stored_vectors(tmp_path / "ray")
    assert sorted(ours) == sorted(theirs) and len(ours) == 8
    assert min(float(ours[key] @ theirs[key]) for key in ours) > 0.999

    again = qa("ingest", str(corpus), "--index", str(tmp_path / "ray"), "--ray", "--ray-workers", "2")
    assert again.returncode == 0 and "(2 unchanged)" in again.stdout, again.stdout + again.stderr
    answer = qa("ask", "when did Wagner arrive in Mali?", "-k", "1", "--index", str(tmp_path / "ray"))
    assert "December 2021" in answer.stdout


def test_an_ingest_on_ray_into_milvus_is_searchable(tmp_path):
    pytest.importorskip("pymilvus")
    index = str(tmp_path / "index")
    done = qa("ingest", str(SEEDS), "--index", index, "--engine", "milvus", "--ray")
    assert done.returncode == 0, done.stderr
    assert "holds 1 document(s), 7 passage(s)" in done.stdout
    answer = qa("ask", "when did Wagner arrive in Mali?", "-k", "1", "--index", index, "--engine", "milvus")
    assert answer.stdout.startswith("1. Wagner first arrived in Mali in December 2021"), answer.stderr
