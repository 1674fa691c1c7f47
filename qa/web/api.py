"""JSON endpoints: /api/search (GET and POST) and /api/health."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from qa.errors import InvalidInput
from qa.search import Searcher, SearchRequest

blueprint = Blueprint("api", __name__, url_prefix="/api")


def searcher() -> Searcher:
    return current_app.extensions["qa.searcher"]


@blueprint.get("/search")
def search_get():
    args = request.args
    return jsonify(searcher().search(SearchRequest.parse(args.get("q"), args.get("k"), args.get("mode"))))


@blueprint.post("/search")
def search_post():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object such as {"q": "...", "k": 5}', code="invalid_json")
    return jsonify(searcher().search(SearchRequest.parse(body.get("q"), body.get("k"), body.get("mode"))))


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
