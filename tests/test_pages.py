"""The server-rendered search page."""

from __future__ import annotations

import re

import pytest

from qa.embedded import EmbeddedEngine
from qa.engines import EngineChoice
from qa.index import Index
from qa.ingest import ingest
from qa.search import Searcher
from qa.web import create_app


def test_empty_page_has_the_search_box(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'method="get"' in html and 'name="q"' in html and "autofocus" in html
    assert "1 document, " in html  # the empty state says what can be searched
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
    assert '<b class="term">Wagner</b>' in html and '<b class="term">Mali</b>' in html


def test_a_result_links_to_its_passage_in_the_whole_document(client, searcher):
    html = client.get("/", query_string={"q": "when did Wagner arrive in Mali?"}).get_data(as_text=True)
    start = html.index('<a class="title" href="') + len('<a class="title" href="')
    link = html[start : html.index('"', start)].replace("&amp;", "&")
    assert link.startswith("/documents/") and link.endswith("#chosen")
    page = client.get(link.split("#")[0])
    assert page.status_code == 200
    document_html = page.get_data(as_text=True)
    chosen = document_html[document_html.index('<mark id="chosen"') : document_html.index("</mark>")]
    assert "December 2021" in chosen
    assert "Back to the results" in document_html
    ((document, passages),) = [searcher.engine.document(d.doc_id) for d in searcher.engine.documents(0, 10)[1]]
    last_words = document.text.strip().split()[-1]
    assert last_words in document_html  # the whole document, not just the passage


def test_a_missing_document_is_a_page_that_says_so(client):
    page = client.get("/documents/no/such/thing")
    assert page.status_code == 404
    assert "no document with the id" in page.get_data(as_text=True).lower()


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
    ingest([folder / "xss.txt"], EngineChoice(index=root), embedder)
    app = create_app({"TESTING": True}, searcher=Searcher(EmbeddedEngine(Index.open(root)), embedder))
    return app.test_client()


def test_document_text_is_escaped(hostile_client):
    html = hostile_client.get("/", query_string={"q": "passage that mentions alert"}).get_data(as_text=True)
    assert "&lt;script&gt;" in html and "&lt;/script&gt;" in html
    assert "<script>alert" not in html
    page_query = hostile_client.get("/", query_string={"q": '"><script>x()</script>'}).get_data(as_text=True)
    assert "<script>x()</script>" not in page_query


def test_the_pages_load_nothing_from_elsewhere(client):
    """No external fonts, scripts, styles or CDNs: the service must work offline."""
    for path in ("/", "/?q=Wagner", "/documents/no-such"):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), path
        assert "@import" not in html
    css = client.get("/static/style.css").get_data(as_text=True)
    assert "url(" not in css and "@import" not in css
