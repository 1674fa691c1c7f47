"""JSON endpoints: /api/search (GET and POST), /api/health and /api/ready."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from qa.errors import IndexUnavailable, InvalidInput, NotReady
from qa.filters import SearchFilter
from qa.search import SearchRequest, SearchResponse, SearchResult
from qa.service import Service
from qa.web.observe import observe_search

blueprint = Blueprint("api", __name__, url_prefix="/api")


def service() -> Service:
    """The served index: everything a route asks of it goes through this."""
    return current_app.extensions["qa.service"]


def run_search(search: SearchRequest) -> dict[str, Any]:
    """The response body for one search, its time recorded by mode."""
    response = service().search(search)
    observe_search(search.mode, response.took_ms)
    return response_json(response)


def response_json(response: SearchResponse) -> dict[str, Any]:
    """A search response as the API's JSON body (``qa ask --json`` prints the same)."""
    return {
        "query": response.query, "k": response.k, "mode": response.mode,
        **({"filter": response.filter.as_json()} if response.filter else {}),
        "took_ms": response.took_ms, "results": [result_json(r) for r in response.results],
    }


def result_json(result: SearchResult) -> dict[str, Any]:
    return {
        "rank": result.rank, "score": result.score, "passage_id": result.passage_id, "doc_id": result.doc_id,
        "title": result.title, "source": result.source, "section": result.section, "page": result.page,
        "text": result.text, "start": result.start, "end": result.end,
        "answer": {"text": result.answer.text, "start": result.answer.start, "end": result.answer.end},
        "matches": result.matches,
    }


@blueprint.get("/search")
def search_get():
    args = request.args
    search_filter = SearchFilter.from_query(args.to_dict(flat=False))
    return jsonify(run_search(SearchRequest.parse(args.get("q"), args.get("k"), args.get("mode"), search_filter)))


@blueprint.post("/search")
def search_post():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object such as {"q": "...", "k": 5}', code="invalid_json")
    search_filter = SearchFilter.from_json(body.get("filter"))
    return jsonify(run_search(SearchRequest.parse(body.get("q"), body.get("k"), body.get("mode"), search_filter)))


@blueprint.get("/health")
def health():
    status = service().status()
    return jsonify({
        "status": "ok",
        "documents": status.documents,
        "passages": status.passages,
        "model": status.model,
        "index": status.index,
        "generation": status.generation,
        "writable": bool(current_app.config["API_TOKEN"]),
    })


@blueprint.get("/ready")
def ready():
    """Ready when the store still answers and still fits the loaded model: the index and
    the question encoder load before the server listens (a writable server's passage
    model after, its first write waiting for it)."""
    served = service()
    try:
        served.check()  # the store itself, now, not only the snapshot's last look at it
        status = served.status()
    except IndexUnavailable:  # rebuilt with another model: says so itself (503 index_settings)
        raise
    except Exception as error:  # a store that cannot be read: alive, but not ready
        raise NotReady(f"the index cannot be read: {error}") from None
    return jsonify({"ready": True, "model": status.model, "backend": status.backend,
                    "generation": status.generation, "passages": status.passages})
