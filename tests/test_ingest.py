"""Ingest with the real model: every file type, broken files, and an index that survives failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexUnavailable, InvalidInput
from qa.index import CURRENT, MANIFEST, Index, current_generation
from qa.ingest import ingest
from qa.search import Searcher, SearchRequest

from conftest import minimal_pdf


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "volcano.txt").write_text(
        "Mount Etna erupted again on Tuesday, sending ash two kilometres into the sky above Sicily.\n"
    )
    (folder / "bees.md").write_text("# Honey bees\n\nA worker honey bee lives for about six weeks in summer.\n")
    (folder / "sub" / "page.html").write_text(
        "<html><head><title>Lighthouses</title><style>p {color: red}</style></head><body>"
        "<p>The Tower of Hercules is the oldest lighthouse still in use.</p>"
        "<script>var secretToken = 'xyzzy-script-content';</script></body></html>"
    )
    (folder / "glaciers.pdf").write_bytes(
        minimal_pdf(["The Aletsch Glacier is the largest glacier in the Alps."], title="Glaciers")
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    return folder


def test_every_format_is_indexed_and_a_broken_file_is_skipped_by_name(corpus, tmp_path, embedder):
    report = ingest([corpus], tmp_path / "index", embedder)
    assert sorted(report.ingested) == ["docs/bees.md", "docs/glaciers.pdf", "docs/sub/page.html", "docs/volcano.txt"]
    assert len(report.skipped) == 1 and "broken.pdf" in report.skipped[0]

    index = Index.open(tmp_path / "index")
    documents = {d.doc_id: d for d in index.store.documents()}
    assert documents["docs/bees.md"].title == "Honey bees"
    assert documents["docs/sub/page.html"].title == "Lighthouses"
    assert documents["docs/glaciers.pdf"].title == "Glaciers"
    assert "Aletsch Glacier" in documents["docs/glaciers.pdf"].text
    html = documents["docs/sub/page.html"].text
    assert "Tower of Hercules" in html and "xyzzy" not in html and "color" not in html

    searcher = Searcher(index, embedder)
    top = searcher.search(SearchRequest.parse("which is the biggest glacier in the Alps?", 1, "dense"))
    assert top["results"][0]["doc_id"] == "docs/glaciers.pdf"
    assert searcher.search(SearchRequest.parse("xyzzy", 5, "lexical"))["results"] == []


def test_seed_document_has_its_title_and_source(seed_index):
    (document,) = Index.open(seed_index).store.documents()
    assert document.title == "Wagner Group withdraws from Mali"
    assert document.source == "cgtn.com"
    assert "Reference(s)" not in document.text


def test_ingest_again_replaces_a_document_and_keeps_the_others(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    ingest([corpus], root, embedder)
    (corpus / "volcano.txt").write_text("Stromboli has erupted almost continuously for two thousand years.\n")
    report = ingest([corpus / "volcano.txt"], root, embedder)
    assert report.documents == 5  # four from the folder, plus the file known by its own name
    index = Index.open(root)
    texts = {d.doc_id: d.text for d in index.store.documents()}
    assert "Stromboli" in texts["volcano.txt"] and "Etna" in texts["docs/volcano.txt"]
    # carried-over vectors still belong to their passages
    etna = Searcher(index, embedder).search(SearchRequest.parse("ash cloud over Sicily", 1, "dense"))
    assert etna["results"][0]["doc_id"] == "docs/volcano.txt"

    ingest([corpus], root, embedder, replace=True)
    replaced = Index.open(root)
    assert "volcano.txt" not in {d.doc_id for d in replaced.store.documents()}
    stromboli = Searcher(replaced, embedder).search(SearchRequest.parse("Stromboli", 5, "lexical"))
    assert [r["doc_id"] for r in stromboli["results"]] == ["docs/volcano.txt"]


def test_nothing_readable_is_an_error_and_changes_nothing(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    ingest([corpus], root, embedder)
    before = (root / CURRENT).read_text()
    with pytest.raises(InvalidInput):
        ingest([corpus / "broken.pdf", tmp_path / "missing"], root, embedder)
    assert (root / CURRENT).read_text() == before


class _FailingEmbedder:
    """The real model, failing partway through like a crash mid-ingest."""

    def __init__(self, real):
        self.name, self.dimension = real.name, real.dimension

    def encode(self, texts, progress=False):
        raise RuntimeError("killed mid-ingest")


def test_a_failed_ingest_leaves_the_previous_index_whole(corpus, tmp_path, embedder):
    root = tmp_path / "index"
    ingest([corpus], root, embedder)
    before = Index.open(root).manifest
    with pytest.raises(RuntimeError):
        ingest([corpus / "bees.md"], root, _FailingEmbedder(embedder), replace=True)
    after = Index.open(root)
    assert after.manifest == before
    assert after.store.counts() == (before.documents, before.passages)


def test_an_index_from_another_model_or_format_fails_clearly(seed_index, tmp_path):
    with pytest.raises(IndexUnavailable, match="built with model 'all-MiniLM-L6-v2'"):
        Index.open(seed_index, model="some-other-model")

    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(seed_index, copy)
    manifest_path = current_generation(copy) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(IndexUnavailable, match="format version 99"):
        Index.open(copy)

    manifest_path.write_text(json.dumps({**manifest, "passages": manifest["passages"] + 1}))
    with pytest.raises(IndexUnavailable, match="inconsistent"):
        Index.open(copy)

    with pytest.raises(IndexUnavailable, match="no index"):
        Index.open(tmp_path / "nowhere")


def test_vectors_are_unit_length(embedder):
    vectors = embedder.encode(["one passage", "another passage"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
