"""Shared fixtures: the real bundled model, loaded once, and indexes built with it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.stand_in import build_static_model
from qa.embedded import EmbeddedEngine
from qa.embedding import DEFAULT_MODEL, Embedder, model_location
from qa.engine import Engine
from qa.engines import EngineChoice, open_engine
from qa.ingest import ingest
from qa.search import Searcher
from qa.web import create_app

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


def build_tiny_transformer(folder: Path, after: tuple[str, ...] = ()) -> Path:
    """A one-layer BERT of random weights, mean-pooled, then the modules named in
    ``after`` ("Dense", "Normalize"), saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    models = _modules()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_location(DEFAULT_MODEL))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    bert = folder / "bert"
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    extra = {"Dense": lambda: models.Dense(32, 32), "Normalize": models.Normalize}
    modules = [models.Transformer(str(bert), max_seq_length=128), models.Pooling(32, "mean")]
    SentenceTransformer(modules=modules + [extra[name]() for name in after]).save(str(folder / "model"))
    return folder / "model"


def _modules():
    """sentence-transformers' model modules, where this version keeps them."""
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # before 5.x
        from sentence_transformers import models as modules
    return modules


@pytest.fixture(scope="session")
def static_model(tmp_path_factory) -> Path:
    return build_static_model(tmp_path_factory.mktemp("static-model"), dimension=32)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    root = tmp_path_factory.mktemp("index") / "seeds"
    ingest([SEEDS], EngineChoice(index=root), embedder)
    return root


# The engines the API, document API, page and CLI tests run against.
ENGINES = ("embedded", "milvus")


@pytest.fixture(scope="session", params=ENGINES)
def engine_kind(request) -> str:
    return request.param


def seeded(root: Path, kind: str, embedder: Embedder, seed_index: Path) -> EngineChoice:
    """An index of seeds/ at ``root`` in the engine ``kind``: the embedded one copied from
    ``seed_index``, a Milvus Lite one ingested."""
    choice = EngineChoice(kind, root)
    if kind == "embedded":
        shutil.copytree(seed_index, root)
    else:
        ingest([SEEDS], choice, embedder)
    return choice


@pytest.fixture(scope="session")
def seed_engine(engine_kind, seed_index, tmp_path_factory, embedder) -> Iterator[Engine]:
    """The seed index, open, in each engine in turn."""
    if engine_kind == "embedded":
        engine: Engine = EmbeddedEngine.open(seed_index)
    else:
        engine = open_engine(seeded(tmp_path_factory.mktemp("milvus") / "seeds", engine_kind, embedder, seed_index))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def searcher(seed_engine, embedder) -> Searcher:
    return Searcher(seed_engine, embedder)


@pytest.fixture(scope="session")
def embedded_searcher(seed_index, embedder) -> Searcher:
    """The seed index in the embedded engine only, for tests of its own parts."""
    return Searcher(EmbeddedEngine.open(seed_index), embedder)


@pytest.fixture
def app(searcher):
    return create_app({"TESTING": True}, searcher=searcher)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def access_lines():
    """The JSON objects the access log writes during a test."""
    lines: list[dict] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(record.getMessage()))

    handler = Keep()
    logging.getLogger("qa.access").addHandler(handler)
    yield lines
    logging.getLogger("qa.access").removeHandler(handler)


def _pdf_object(number: int, body: bytes) -> bytes:
    return b"%d 0 obj\n" % number + body + b"\nendobj\n"


def minimal_pdf(lines: list[str], title: str = "") -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (ASCII only)."""
    return paged_pdf([lines], title)


def paged_pdf(pages: list[list[str]], title: str = "") -> bytes:
    """A PDF of one page per item of ``pages``, each holding its lines (ASCII only)."""
    def stream(lines: list[str]) -> bytes:
        return b"BT /F1 12 Tf 72 720 Td 14 TL " + b" ".join(
            b"(%s) '" % line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("ascii")
            for line in lines
        ) + b" ET"

    first_page = 5  # objects 1-4: catalog, page tree, font, info; then a page and its contents per page
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * n) for n in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (%s) >>" % title.encode("ascii"),
    ]
    for n, lines in enumerate(pages):
        content = stream(lines)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % (first_page + 2 * n + 1))
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += _pdf_object(number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    """(status, JSON body) of one request; an HTTP error status is an answer, not an exception."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def start_server(index: Path, env: dict[str, str] | None = None, *options: str) -> tuple[subprocess.Popen, str]:
    """A real `qa serve` process on a free loopback port, answering /api/health.

    Its output (the access log among it) goes to the file ``process.log``.
    """
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="qa-serve-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "serve", "--port", str(port), "--index", str(index), *options],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
    process.log = Path(log.name)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"qa serve exited with {process.returncode}: {process.log.read_text()}")
        try:
            if http(f"{base}/api/health")[0] == 200:
                return process, base
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    process.kill()
    pytest.fail("qa serve did not answer /api/health within 120 s")
