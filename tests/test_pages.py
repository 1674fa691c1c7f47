"""The server-rendered search page."""

from __future__ import annotations

import pytest

from qa.index import Index
from qa.ingest import ingest
from qa.search import Searcher
from qa.web import create_app


def test_empty_page_has_the_search_box(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<form method="get"' in html and 'name="q"' in html and "autofocus" in html
    assert '<label for="q">' in html


def test_results_render_on_the_server_with_the_answer_marked(client):
    page = client.get("/", query_string={"q": "when did Wagner arrive in Mali?"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Wagner Group withdraws from Mali" in html and "cgtn.com" in html
    first = html.index('<li class="result">')
    mark = html.index('<mark class="answer">', first)
    assert "December 2021" in html[mark : html.index("</mark>", mark)]
    assert 'value="when did Wagner arrive in Mali?"' in html


def test_bad_input_shows_a_message_not_a_crash(client):
    page = client.get("/", query_string={"q": "   "})
    assert page.status_code == 400
    assert "is empty" in page.get_data(as_text=True)
    assert client.get("/", query_string={"q": "x", "k": "lots"}).status_code == 400


@pytest.fixture(scope="module")
def hostile_client(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "xss.txt").write_text(
        "A passage that mentions <script>alert(1)</script> inside its text, and an ampersand & a quote \".\n"
    )
    root = folder / "index"
    ingest([folder / "xss.txt"], root, embedder)
    app = create_app({"TESTING": True}, searcher=Searcher(Index.open(root), embedder))
    return app.test_client()


def test_document_text_is_escaped(hostile_client):
    html = hostile_client.get("/", query_string={"q": "passage that mentions alert"}).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    page_query = hostile_client.get("/", query_string={"q": '"><script>x()</script>'}).get_data(as_text=True)
    assert "<script>x()</script>" not in page_query
