"""The JSON API on an index of seeds/ built with the real model."""

from __future__ import annotations

import pytest

from qa.search import SearchRequest
from qa.web import create_app

WAGNER = "when did Wagner arrive in Mali?"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_wagner_question_finds_december_2021(client, mode):
    response = client.get("/api/search", query_string={"q": WAGNER, "mode": mode})
    assert response.status_code == 200
    body = response.get_json()
    assert body["query"] == WAGNER and body["mode"] == mode and body["k"] == 5
    first = body["results"][0]
    assert first["rank"] == 1
    assert "December 2021" in first["text"]
    assert "December 2021" in first["answer"]["text"]


def test_result_fields_and_offsets_hold(client, searcher):
    body = client.get("/api/search", query_string={"q": WAGNER, "k": 3}).get_json()
    assert list(body) == ["query", "k", "mode", "took_ms", "results"]
    assert len(body["results"]) == 3
    ((document, _),) = [searcher.engine.document(d.doc_id) for d in searcher.engine.documents(0, 10)[1]]
    for result in body["results"]:
        assert set(result) == {"rank", "score", "passage_id", "doc_id", "title", "source", "section", "page",
                               "text", "start", "end", "answer", "matches"}
        assert document.text[result["start"] : result["end"]] == result["text"]
        answer = result["answer"]
        assert result["text"][answer["start"] : answer["end"]] == answer["text"]
        marked = {result["text"][start:end].lower() for start, end in result["matches"]}
        assert marked and marked <= {"wagner", "arrive", "arrived", "arrival", "arriving", "mali"}
        assert result["title"] == "Wagner Group withdraws from Mali" and result["source"] == "cgtn.com"
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_post_takes_the_same_fields(client):
    response = client.post("/api/search", json={"q": WAGNER, "k": 2, "mode": "dense"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["k"] == 2 and len(body["results"]) == 2
    assert "December 2021" in body["results"][0]["answer"]["text"]


def test_passages_shown_again_are_not_read_from_the_store_again(embedded_searcher, monkeypatch):
    searcher = embedded_searcher
    request = SearchRequest("when did Wagner arrive in Mali?", 3)
    first = searcher.search(request).results
    reads = []
    read = searcher.engine.index.store.passages
    monkeypatch.setattr(searcher.engine.index.store, "passages", lambda rows: reads.append(list(rows)) or read(rows))
    assert searcher.search(request).results == first
    assert reads == []


def test_k_larger_than_the_index_returns_what_there_is(client, searcher):
    body = client.get("/api/search", query_string={"q": WAGNER, "k": 50}).get_json()
    assert len(body["results"]) == searcher.engine.state().passages


def test_health(client):
    body = client.get("/api/health").get_json()
    assert body["status"] == "ok" and body["documents"] == 1 and body["passages"] >= 5
    assert body["model"] == "all-MiniLM-L6-v2" and body["index"].endswith("seeds")


def _error(response, status, code=None):
    assert response.status_code == status, response.data
    assert response.is_json
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


@pytest.mark.parametrize(
    "params, code",
    [
        ({}, "missing_query"),
        ({"q": ""}, "empty_query"),
        ({"q": "   \t "}, "empty_query"),
        ({"q": "x" * 1001}, "query_too_long"),
        ({"q": WAGNER, "k": "five"}, "invalid_k"),
        ({"q": WAGNER, "k": "0"}, "invalid_k"),
        ({"q": WAGNER, "k": "51"}, "invalid_k"),
        ({"q": WAGNER, "k": "-3"}, "invalid_k"),
        ({"q": WAGNER, "k": "2.5"}, "invalid_k"),
        ({"q": WAGNER, "mode": "fuzzy"}, "invalid_mode"),
    ],
)
def test_bad_get_parameters_are_400_json(client, params, code):
    _error(client.get("/api/search", query_string=params), 400, code)


@pytest.mark.parametrize(
    "body, code",
    [
        ({"q": WAGNER, "k": True}, "invalid_k"),
        ({"q": WAGNER, "k": 2.5}, "invalid_k"),
        ({"q": WAGNER, "k": None, "mode": "sparse"}, "invalid_mode"),
        ({"q": 42}, "invalid_query"),
        ({"q": ["a"]}, "invalid_query"),
        ([WAGNER], "invalid_json"),
        ("just a string", "invalid_json"),
    ],
)
def test_bad_post_bodies_are_400_json(client, body, code):
    _error(client.post("/api/search", json=body), 400, code)


def test_a_body_that_is_not_json_is_400(client):
    _error(client.post("/api/search", data=b"q=hello", content_type="application/x-www-form-urlencoded"),
           400, "invalid_json")
    _error(client.post("/api/search", data=b"{not json", content_type="application/json"), 400, "invalid_json")
    _error(client.post("/api/search", data=b"\xff\xfe\x00", content_type="application/json"), 400, "invalid_json")


def test_a_body_over_the_configured_limit_is_413(client, searcher):
    too_big = b"{" + b" " * (20 * 1024 * 1024) + b"}"
    _error(client.post("/api/search", data=too_big, content_type="application/json"), 413)
    small = create_app({"TESTING": True, "MAX_BODY_BYTES": 1000}, searcher=searcher).test_client()
    _error(small.post("/api/search", json={"q": "Wagner " * 200}), 413)
    assert small.post("/api/search", json={"q": "Wagner"}).status_code == 200


def test_unknown_api_route_is_404_and_wrong_method_405_with_the_methods_allowed(client):
    _error(client.get("/api/nothing-here"), 404, "not_found")
    wrong = client.delete("/api/search")
    _error(wrong, 405, "method_not_allowed")
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    wrong = client.open("/api/health", method="TRACE")
    _error(wrong, 405, "method_not_allowed")
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_k_sent_as_a_whole_number_with_a_decimal_point_is_that_number(client):
    """JSON Schema counts 14.0 as an integer, so the API does too."""
    assert client.post("/api/search", json={"q": "Wagner", "k": 3.0}).get_json()["k"] == 3
    _error(client.post("/api/search", json={"q": "Wagner", "k": 2.5}), 400, "invalid_k")


def test_the_question_is_trimmed_and_unicode_is_fine(client):
    body = client.get("/api/search", query_string={"q": "  Wagner 🇲🇱 Mali ?  "}).get_json()
    assert body["query"] == "Wagner 🇲🇱 Mali ?" and body["results"]


def test_a_large_index_fuses_each_sides_candidates_with_the_same_answers(embedded_searcher, monkeypatch):
    """Above qa.embedded.WHOLE_ARRAYS_UP_TO passages hybrid fuses each side's best
    candidates; where they hold every passage, the ranking is the whole-array one."""
    import qa.embedded

    questions = [WAGNER, "Who killed Prigozhin?", "What will the Africa Corps do in Mali?", "Telegram statement"]
    whole = [embedded_searcher.search(SearchRequest.parse(q, 7)) for q in questions]
    monkeypatch.setattr(qa.embedded, "WHOLE_ARRAYS_UP_TO", 0)
    fused = [embedded_searcher.search(SearchRequest.parse(q, 7)) for q in questions]
    for before, after in zip(whole, fused):
        assert [r.passage_id for r in after.results] == [r.passage_id for r in before.results]
        assert [r.score for r in after.results] == pytest.approx([r.score for r in before.results], abs=1e-5)
    assert "December 2021" in fused[0].results[0].answer.text
