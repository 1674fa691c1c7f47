"""The document API on a copy of the seed index: writes, reads, tokens and bad input."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from conftest import minimal_pdf, seeded

from qa.engine import Engine
from qa.engines import open_engine
from qa.search import Searcher
from qa.web import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODES = ("hybrid", "dense", "lexical")
VOLCANO = {"id": "notes/volcano", "title": "Etna", "source": "field notes",
           "text": "Mount Etna erupted on Tuesday, sending ash two kilometres above Sicily.",
           "metadata": {"tags": ["volcano"]}}


@pytest.fixture
def index(engine_kind, seed_index, tmp_path, embedder) -> Iterator[Engine]:
    """A copy of the seed index, in each engine in turn."""
    engine = open_engine(seeded(tmp_path / "index", engine_kind, embedder, seed_index))
    yield engine
    engine.close()


def make_client(index, embedder, **config):
    app = create_app({"TESTING": True, "API_TOKEN": TOKEN, **config}, searcher=Searcher(index, embedder))
    return app.test_client()


@pytest.fixture
def client(index, embedder):
    return make_client(index, embedder)


def results(client, question: str) -> dict[str, list[dict]]:
    """The results each mode returns for ``question``."""
    return {
        mode: client.get("/api/search", query_string={"q": question, "mode": mode, "k": 10}).get_json()["results"]
        for mode in MODES
    }


def found(client, question: str) -> dict[str, set[str]]:
    """The document ids each mode returns for ``question``."""
    return {mode: {r["doc_id"] for r in found} for mode, found in results(client, question).items()}


def test_a_posted_document_is_listed_read_and_found_in_every_mode(client):
    created = client.post("/api/documents", json=VOLCANO, headers=AUTH)
    assert created.status_code == 201, created.data
    assert created.get_json()["id"] == "notes/volcano" and created.get_json()["passages"] == 1
    assert created.headers["Location"] == "/api/documents/notes%2Fvolcano"  # the id is one path parameter
    assert client.get(created.headers["Location"]).get_json()["id"] == "notes/volcano"

    document = client.get("/api/documents/notes/volcano").get_json()
    assert document["text"] == VOLCANO["text"] and document["metadata"] == {"tags": ["volcano"]}
    assert [p["passage_id"] for p in document["passages"]] == ["notes/volcano#0"]

    listing = client.get("/api/documents").get_json()
    assert listing["total"] == 2 and {d["id"] for d in listing["documents"]} == {
        "notes/volcano", "seeds/01-wagner-group-withdraws-from-mali.md"}
    assert client.get("/api/documents", query_string={"limit": 1, "offset": 1}).get_json()["documents"][0]["id"] \
        == "seeds/01-wagner-group-withdraws-from-mali.md"

    assert all("notes/volcano" in ids for ids in found(client, "Etna eruption ash over Sicily").values())
    health = client.get("/api/health").get_json()
    assert health["documents"] == 2 and health["passages"] == 8 and health["writable"] is True


def test_a_replaced_document_is_found_only_by_its_new_text(client):
    client.post("/api/documents", json=VOLCANO, headers=AUTH)
    replaced = client.put("/api/documents/notes/volcano", headers=AUTH,
                          json={"title": "Stromboli", "text": "Stromboli has erupted almost without pause for "
                                "two thousand years, lighting the sea at night."})
    assert replaced.status_code == 200 and replaced.get_json()["title"] == "Stromboli"
    texts = [r["text"] for found in results(client, "Etna Sicily Tuesday").values() for r in found]
    assert texts and not any("Etna" in text for text in texts)
    assert all("notes/volcano" in ids for ids in found(client, "Stromboli erupting for millennia").values())
    assert client.get("/api/health").get_json()["passages"] == 8

    created = client.put("/api/documents/notes/new", json={"title": "New", "text": "A brand new note."},
                         headers=AUTH)
    assert created.status_code == 201


def test_a_deleted_document_is_gone_everywhere(client):
    client.post("/api/documents", json=VOLCANO, headers=AUTH)
    deleted = client.delete("/api/documents/notes/volcano", headers=AUTH)
    assert deleted.status_code == 200 and deleted.get_json() == {"id": "notes/volcano", "deleted": True}
    assert not any("notes/volcano" in ids for ids in found(client, "Etna eruption ash over Sicily").values())
    assert client.get("/api/documents/notes/volcano").status_code == 404
    assert client.delete("/api/documents/notes/volcano", headers=AUTH).status_code == 404
    assert client.get("/api/health").get_json()["passages"] == 7


def test_uploads_in_every_format(client):
    uploads = {
        "bees.md": b"# Honey bees\n\nA worker honey bee lives for about six weeks in summer.\n",
        "light.html": b"<title>Lighthouses</title><p>The Tower of Hercules is the oldest lighthouse in use.</p>"
                      b"<script>alert(1)</script>",
        "glacier.pdf": minimal_pdf(["The Aletsch Glacier is the largest glacier in the Alps."], title="Glaciers"),
    }
    for name, data in uploads.items():
        response = client.post("/api/documents", headers=AUTH, data={"file": (io.BytesIO(data), name)})
        assert response.status_code == 201, response.data
        assert response.get_json()["id"] == name
    assert client.get("/api/documents/light.html").get_json()["title"] == "Lighthouses"
    assert "alert" not in client.get("/api/documents/light.html").get_json()["text"]
    assert "glacier.pdf" in found(client, "biggest glacier in the Alps")["dense"]

    named = client.put("/api/documents/my-bees", headers=AUTH, data={
        "file": (io.BytesIO(uploads["bees.md"]), "bees.md"), "title": "Bees", "metadata": '{"lang": "en"}'})
    assert named.status_code == 201 and named.get_json()["title"] == "Bees"
    assert named.get_json()["metadata"] == {"lang": "en"}


def test_an_upload_name_is_never_a_path(client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the launch code is 0000")
    for name in (f"../../{secret}", str(secret), "..\\..\\secret.txt"):
        response = client.post("/api/documents", headers=AUTH,
                               data={"file": (io.BytesIO(b"A harmless note about tea."), name)})
        assert response.status_code in (201, 409), response.data
        assert client.get("/api/documents/secret.txt").get_json()["text"] == "A harmless note about tea."
    for name in ("..", ""):
        response = client.post("/api/documents", headers=AUTH, data={"file": (io.BytesIO(b"tea"), name)})
        assert response.status_code == 400


@pytest.mark.parametrize("name, data, status, code", [
    ("empty.txt", b"", 400, "empty_file"),
    ("blank.md", b"  \n\n ", 400, "empty_file"),
    ("binary.txt", b"\x00\x01\x02binary", 415, "binary_file"),
    ("program.exe", b"MZ\x90\x00", 415, "unsupported_file"),
    ("broken.pdf", b"%PDF-1.4 not really", 400, "unreadable_file"),
])
def test_bad_uploads_are_refused_and_change_nothing(client, name, data, status, code):
    before = client.get("/api/health").get_json()
    response = client.post("/api/documents", headers=AUTH, data={"file": (io.BytesIO(data), name)})
    assert response.status_code == status, response.data
    assert response.get_json()["error"]["code"] == code
    assert client.get("/api/health").get_json() == before


@pytest.mark.parametrize("body, code", [
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b'{"title": "No text"}', "invalid_document"),
    (b'{"title": "Blank", "text": "   "}', "invalid_document"),
    (b'{"text": "No title"}', "invalid_document"),
    (b'{"title": 5, "text": "x"}', "invalid_document"),
    (b'{"title": "t", "text": "x", "metadata": [1]}', "invalid_document"),
    (b'{"title": "t", "text": "x", "source": 7}', "invalid_document"),
    (b'{"id": " padded ", "title": "t", "text": "x"}', "invalid_id"),
    (b'{"id": "a\\u0000b", "title": "t", "text": "x"}', "invalid_id"),
    (b'{"id": 12, "title": "t", "text": "x"}', "invalid_id"),
])
def test_malformed_bodies_are_400_and_change_nothing(client, body, code):
    before = client.get("/api/health").get_json()
    response = client.post("/api/documents", data=body, content_type="application/json", headers=AUTH)
    assert response.status_code == 400, response.data
    assert response.get_json()["error"]["code"] == code
    assert client.get("/api/health").get_json() == before


def test_multipart_without_a_file_and_existing_ids_are_refused(client):
    no_file = client.post("/api/documents", headers=AUTH, data={"title": "x"}, content_type="multipart/form-data")
    assert no_file.status_code == 400 and no_file.get_json()["error"]["code"] == "missing_file"
    client.post("/api/documents", json=VOLCANO, headers=AUTH)
    conflict = client.post("/api/documents", json=VOLCANO, headers=AUTH)
    assert conflict.status_code == 409 and conflict.get_json()["error"]["code"] == "document_exists"


WRITES = [
    ("post", "/api/documents", {"json": VOLCANO}),
    ("put", "/api/documents/notes/volcano", {"json": VOLCANO}),
    ("delete", "/api/documents/seeds/01-wagner-group-withdraws-from-mali.md", {}),
]


@pytest.mark.parametrize("method, path, body", WRITES)
def test_writes_need_the_token(client, method, path, body):
    before = client.get("/api/health").get_json()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        response = getattr(client, method)(path, headers=headers, **body)
        assert response.status_code == 401, (headers, response.data)
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/health").get_json() == before


@pytest.mark.parametrize("method, path, body", WRITES)
def test_without_a_configured_token_the_server_is_read_only(index, embedder, method, path, body):
    client = make_client(index, embedder, API_TOKEN=None)
    assert client.get("/api/health").get_json()["writable"] is False
    response = getattr(client, method)(path, headers=AUTH, **body)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "read_only"
    assert client.get("/api/documents").get_json()["total"] == 1


def test_a_read_token_guards_searches_and_document_reads_but_not_liveness(index, embedder):
    client = make_client(index, embedder, READ_TOKEN="reader")
    reader = {"Authorization": "Bearer reader"}
    for path in ("/api/search?q=Wagner", "/api/documents", "/?q=Wagner",
                 "/api/documents/seeds/01-wagner-group-withdraws-from-mali.md"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=reader).status_code == 200, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    assert client.get("/api/health").status_code == 200
    assert client.post("/api/documents", json=VOLCANO, headers=reader).status_code == 401


def test_an_oversized_upload_is_413_and_changes_nothing(index, embedder):
    client = make_client(index, embedder, MAX_BODY_BYTES=10_000)
    big = b"Tea is a drink. " * 1000
    response = client.post("/api/documents", headers=AUTH, data={"file": (io.BytesIO(big), "tea.txt")})
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "request_entity_too_large"
    assert client.get("/api/documents").get_json()["total"] == 1


@pytest.mark.parametrize("query, code", [("offset=-1", "invalid_offset"), ("limit=0", "invalid_limit"),
                                         ("limit=101", "invalid_limit"), ("limit=ten", "invalid_limit")])
def test_bad_paging_is_400(client, query, code):
    response = client.get(f"/api/documents?{query}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


def test_an_upload_named_without_its_type_is_read_as_its_part_says(client):
    created = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data", data={
        "file": (io.BytesIO(b"Mount Etna erupted again."), "notes", "text/plain")})
    assert created.status_code == 201, created.data
    assert created.get_json()["id"] == "notes.txt"
    pasted = client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                         data={"file": "A field of text sent without a file name.", "id": "pasted"})
    assert pasted.status_code == 201, pasted.data
    assert client.get("/api/documents/pasted").get_json()["text"] == "A field of text sent without a file name."


def test_an_id_in_the_body_is_checked_even_where_the_url_gives_it(client):
    response = client.put("/api/documents/notes/ok", json={"id": "bad\x0fid", "title": "t", "text": "x"},
                          headers=AUTH)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_id"
    assert client.get("/api/documents/notes/ok").status_code == 404


def test_an_upload_gives_each_field_once_and_metadata_as_an_object(client):
    def upload(**fields):
        return client.post("/api/documents", headers=AUTH, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"Mount Etna erupted again."), "etna.txt"), **fields})

    for fields in ({"metadata": "null"}, {"metadata": "[1, 2]"}, {"source": ["a", "b"]}, {"id": ["x", "y"]}):
        response = upload(**fields)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_document", fields
    assert client.get("/api/documents/etna.txt").status_code == 404
    assert upload(metadata='{"lang": "it"}').get_json()["metadata"] == {"lang": "it"}
