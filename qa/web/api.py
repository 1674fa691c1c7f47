"""JSON endpoints: /api/search (GET and POST), /api/health and /api/ready."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from qa.errors import IndexUnavailable, InvalidInput, NotReady
from qa.filters import SearchFilter
from qa.search import Searcher, SearchRequest
from qa.web.observe import observe_search

blueprint = Blueprint("api", __name__, url_prefix="/api")


def searcher() -> Searcher:
    return current_app.extensions["qa.searcher"]


def run_search(search: SearchRequest) -> dict:
    """The response body for one search, its time recorded by mode."""
    response = searcher().search(search)
    observe_search(search.mode, response["took_ms"])
    return response


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
    index = searcher().index
    snapshot = index.snapshot()
    return jsonify({
        "status": "ok",
        "documents": snapshot.documents,
        "passages": len(snapshot),
        "model": index.model,
        "index": str(index.root),
        "generation": snapshot.generation,
        "writable": bool(current_app.config["API_TOKEN"]),
    })


@blueprint.get("/ready")
def ready():
    """Ready when the store still answers and still fits the loaded model: the model
    and index load before the server listens."""
    found = searcher()
    try:
        found.index.check()  # the store itself, now, not only the snapshot's last look at it
        snapshot = found.index.snapshot()
    except IndexUnavailable:  # rebuilt with another model: says so itself (503 index_settings)
        raise
    except Exception as error:  # a store that cannot be read: alive, but not ready
        raise NotReady(f"the index cannot be read: {error}") from None
    return jsonify({"ready": True, "model": found.index.model, "backend": found.embedder.backend,
                    "generation": snapshot.generation, "passages": len(snapshot)})
