"""The search page and the document view, rendered on the server.

``static/search.js`` makes the same page answer without a reload; it builds the
same markup from ``/api/search`` that ``search.html`` builds here.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from qa.errors import InvalidInput
from qa.filters import SearchFilter
from qa.search import MODES, SearchRequest
from qa.tokens import term_spans, terms
from qa.web.api import run_search, service

blueprint = Blueprint("pages", __name__)
# The page offers a source selector when the index holds from 2 to this many sources.
SOURCES_OFFERED = 50

Piece = tuple[str, bool]  # a run of text, and whether it is one of the question's words


def pieces(text: str, start: int, end: int, matches: list[list[int]] | list[tuple[int, int]]) -> list[Piece]:
    """``text[start:end]`` cut into runs, each marked as a question word or not."""
    out: list[Piece] = []
    at = start
    for match_start, match_end in matches:
        match_start, match_end = max(match_start, at), min(match_end, end)
        if match_start >= match_end:
            continue
        if match_start > at:
            out.append((text[at:match_start], False))
        out.append((text[match_start:match_end], True))
        at = match_end
    if at < end:
        out.append((text[at:end], False))
    return out


def _display(result: dict[str, Any]) -> dict[str, Any]:
    """A result with its passage split around the answer sentence, question words marked."""
    text, answer, matches = result["text"], result["answer"], result["matches"]
    ordinal = result["passage_id"].rpartition("#")[2]
    return {
        **result,
        "ordinal": ordinal,
        "before": pieces(text, 0, answer["start"], matches),
        "answer_pieces": pieces(text, answer["start"], answer["end"], matches),
        "after": pieces(text, answer["end"], len(text), matches),
    }


def _page_filter() -> SearchFilter | None:
    """The filter of the page's URL; an empty field (the selector's "all sources") filters nothing."""
    given = {name: [v for v in values if v] for name, values in request.args.to_dict(flat=False).items()}
    return SearchFilter.from_query({name: values for name, values in given.items() if values})


@blueprint.get("/")
def search_page():
    query = request.args.get("q")
    sources = service().sources(SOURCES_OFFERED + 1)
    context: dict[str, Any] = {
        "query": query or "", "mode": request.args.get("mode") or "hybrid", "modes": MODES,
        "sources": sources if 1 < len(sources) <= SOURCES_OFFERED else [], "source": request.args.get("source", ""),
    }
    status = 200
    try:
        search_filter = _page_filter()
        if query is not None:
            search = SearchRequest.parse(query, request.args.get("k"), request.args.get("mode"), search_filter)
            response = run_search(search)
            context["response"] = response
            context["results"] = [_display(r) for r in response["results"]]
        else:
            SearchRequest.parse("-", request.args.get("k"), request.args.get("mode"))  # a bad k or mode says so
            held = service().status()
            context["size"] = {"documents": held.documents, "passages": held.passages}
    except InvalidInput as error:
        context["error"] = error.message
        status = 400
    return render_template("search.html", **context), status


@blueprint.get("/documents/<path:doc_id>")
def document_page(doc_id: str):
    """A whole document, the passage a result came from marked and scrolled to."""
    found = service().document(doc_id)
    if found is None:
        return render_template("missing.html", doc_id=doc_id), 404
    document, passages = found
    chosen = next((p for p in passages if str(p.ordinal) == request.args.get("passage")), None)
    query = request.args.get("q", "")[:1000]
    matches = term_spans(document.text, set(terms(query)))
    start, end = (chosen.start, chosen.end) if chosen else (0, 0)
    return render_template(
        "document.html", document=document, query=query, chosen=chosen, passages=len(passages),
        before=pieces(document.text, 0, start, matches),
        chosen_pieces=pieces(document.text, start, end, matches),
        after=pieces(document.text, end, len(document.text), matches),
    )
