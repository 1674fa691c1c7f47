"""The search page: a plain form that the server renders, JavaScript optional."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from qa.errors import InvalidInput
from qa.search import MODES, SearchRequest
from qa.web.api import searcher

blueprint = Blueprint("pages", __name__)


def _with_highlight(result: dict[str, Any]) -> dict[str, Any]:
    """Split the passage around its answer sentence for the template to mark."""
    text, answer = result["text"], result["answer"]
    return {**result, "before": text[: answer["start"]], "after": text[answer["end"] :]}


@blueprint.get("/")
def search_page():
    query = request.args.get("q")
    context: dict[str, Any] = {"query": query or "", "mode": request.args.get("mode") or "hybrid", "modes": MODES}
    status = 200
    if query is not None:
        try:
            response = searcher().search(
                SearchRequest.parse(query, request.args.get("k"), request.args.get("mode"))
            )
            context["response"] = response
            context["results"] = [_with_highlight(r) for r in response["results"]]
        except InvalidInput as error:
            context["error"] = error.message
            status = 400
    return render_template("search.html", **context), status
