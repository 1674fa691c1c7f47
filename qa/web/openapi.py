"""The OpenAPI 3.1 description of every route, served at /api/openapi.json.

Written by hand beside the routes; ``tests/test_openapi.py`` fails when a route is
missing here (or described here and missing), and runs schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from qa.filters import MAX_CHARS, MAX_KEYS, MAX_VALUES
from qa.search import DEFAULT_K, MAX_K, MAX_QUERY_CHARS, MODES
from qa.web.documents import MAX_ID_CHARS, MAX_OFFSET, MAX_PAGE

JSON = "application/json"
ERRORS = {
    400: "Bad input: a missing, empty or too long question, a wrong k, mode or filter, a malformed body.",
    401: "A token is required and this request has none, or the wrong one.",
    403: "The server is read-only: it was started without QA_API_TOKEN.",
    404: "No such document.",
    409: "A document with this id exists.",
    413: "The body is larger than QA_MAX_BODY_BYTES.",
    415: "The uploaded file is of a type ingest does not read.",
    503: "The model or the index is not ready.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in statuses}


# What the server strips as space (Python's str.isspace), spelled out so that every regex
# dialect reads "not blank" alike: ECMA-262's \s, which JSON Schema uses, is another set.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_SPACE = f"[^{SPACE}]"
QUERY = {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS, "pattern": NOT_SPACE,
         "description": "The question; surrounding spaces are ignored."}
K = {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": DEFAULT_K,
     "description": "How many passages to return."}
MODE = {"type": "string", "enum": list(MODES), "default": "hybrid",
        "description": "hybrid fuses dense (embedding) and lexical (BM25) retrieval."}
# An id: no control characters, no space at either end.
ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS,
      "pattern": f"^[^{SPACE}\\x00-\\x1f\\x7f](?:[^\\x00-\\x1f\\x7f]*[^{SPACE}\\x00-\\x1f\\x7f])?$"}
DOC_ID = {"name": "doc_id", "in": "path", "required": True,
          "description": "The document's id; it may contain '/', and is percent-encoded in the path.",
          "schema": ID}
NON_BLANK = {"type": "string", "minLength": 1, "pattern": NOT_SPACE}
FILTER_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_CHARS}
SCALAR = {"type": ["string", "number", "boolean", "null"], "maxLength": MAX_CHARS}
READ: list[dict[str, list[str]]] = [{}, {"bearer": []}]  # open unless the server was started with QA_READ_TOKEN
WRITE: list[dict[str, list[str]]] = [{"bearer": []}]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "description": "Stable, for programs."},
                           "message": {"type": "string", "description": "For people."}},
        }},
    },
    "SearchRequest": {
        "type": "object", "required": ["q"],
        "properties": {"q": QUERY, "k": {**K, "type": ["integer", "null"]},
                       "mode": {**MODE, "type": ["string", "null"], "enum": [*MODES, None]},
                       "filter": {"oneOf": [_ref("Filter"), {"type": "null"}]}},
        "description": "k and mode take their defaults when absent or null; no filter when absent, null or {}.",
    },
    "Filter": {
        "type": "object", "additionalProperties": False,
        "description": "Only documents that match every part given (a null part is not given); the k results "
                       "all match. A stored list matches when one of its items does.",
        "properties": {
            "source": {**FILTER_TEXT, "type": ["string", "null"], "description": "The document's source, exactly."},
            "doc_id_prefix": {**FILTER_TEXT, "type": ["string", "null"],
                              "description": "The start of the document's id."},
            "metadata": {
                "type": ["object", "null"], "maxProperties": MAX_KEYS,
                "propertyNames": {"minLength": 1, "maxLength": MAX_CHARS},
                "additionalProperties": {"oneOf": [
                    SCALAR, {"type": "array", "items": SCALAR, "minItems": 1, "maxItems": MAX_VALUES}]},
                "description": "KEY: VALUE, or KEY: [VALUES] for any of them; values compare with their JSON "
                               "type (1 is not \"1\").",
            },
        },
    },
    "Span": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2},
    "Result": {
        "type": "object",
        "required": ["rank", "score", "passage_id", "doc_id", "title", "source", "section", "page", "text", "start",
                     "end", "answer", "matches"],
        "properties": {
            "rank": {"type": "integer", "minimum": 1},
            "score": {"type": "number"},
            "passage_id": {"type": "string", "description": "doc_id#ordinal"},
            "doc_id": {"type": "string"},
            "title": {"type": "string"},
            "source": {"type": "string"},
            "section": {"type": "string", "description": "Title > section > subsection the passage lies under; "
                                                         "empty for a document without headings."},
            "page": {"type": ["integer", "null"], "minimum": 1,
                     "description": "The page the passage begins on, for a PDF; else null."},
            "text": {"type": "string", "description": "The passage."},
            "start": {"type": "integer", "minimum": 0, "description": "Where the passage starts in its document."},
            "end": {"type": "integer", "minimum": 0},
            "answer": {
                "type": "object", "required": ["text", "start", "end"],
                "description": "The sentence of the passage that best answers; start and end are within text.",
                "properties": {"text": {"type": "string"}, "start": {"type": "integer", "minimum": 0},
                               "end": {"type": "integer", "minimum": 0}},
            },
            "matches": {"type": "array", "items": _ref("Span"),
                        "description": "[start, end] of each word of text that matches a word of the question."},
        },
    },
    "SearchResponse": {
        "type": "object", "required": ["query", "k", "mode", "took_ms", "results"],
        "properties": {"query": {"type": "string"}, "k": {"type": "integer"}, "mode": MODE,
                       "filter": _ref("Filter"), "took_ms": {"type": "number"},
                       "results": {"type": "array", "items": _ref("Result")}},
    },
    "Health": {
        "type": "object", "required": ["status", "documents", "passages", "model", "index"],
        "properties": {"status": {"const": "ok"}, "documents": {"type": "integer"},
                       "passages": {"type": "integer"}, "model": {"type": "string"}, "index": {"type": "string"},
                       "generation": {"type": "integer"}, "writable": {"type": "boolean"}},
    },
    "Ready": {
        "type": "object", "required": ["ready"],
        "properties": {"ready": {"const": True}, "model": {"type": "string"}, "backend": {"type": "string"},
                       "generation": {"type": "integer"}, "passages": {"type": "integer"}},
    },
    "DocumentIn": {
        "type": "object", "required": ["title", "text"],
        "properties": {
            "id": {**ID, "description": "Made up when absent (POST); the URL's id wins (PUT)."},
            "title": NON_BLANK,
            "text": NON_BLANK,
            "source": {"type": "string"},
            "metadata": {"type": ["object", "null"], "description": "Any JSON object; null is none."},
        },
    },
    "Upload": {
        "type": "object", "required": ["file"],
        "description": "Each field at most once.",
        "properties": {
            "file": {"type": "string", "minLength": 1, "pattern": f"^[^\\x00]*[^{SPACE}\\x00][^\\x00]*$",
                     "description": "A file of a type `qa ingest` reads: text here (UTF-8 or Windows-1252, "
                                    "not blank, no NUL bytes); a .md, .rst, .html, .docx or .pdf file name, or "
                                    "the part's media type (text/markdown, text/x-rst, text/html, a Word "
                                    "document's, application/pdf), reads it as that format instead, which must "
                                    "then hold text."},
            "id": {**ID, "description": "Default: the file's name."},
            # A multipart field is text whatever it looks like ("294" is a title): no type to keep
            # to, but one field once (a list would be several).
            "title": {"not": {"type": "array"},
                      "description": "Any text. Default: the file's own title, else its name."},
            "source": {"not": {"type": "array"}, "description": "Any text."},
            "metadata": {"type": "object", "description": "A JSON object."},
        },
    },
    "DocumentSummary": {
        "type": "object", "required": ["id", "title", "source", "metadata", "passages"],
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "source": {"type": "string"},
                       "metadata": {"type": "object"}, "passages": {"type": "integer", "minimum": 0},
                       "unchanged": {"type": "boolean",
                                     "description": "The stored copy was identical; nothing was re-embedded."}},
    },
    "DocumentList": {
        "type": "object", "required": ["total", "offset", "limit", "documents"],
        "properties": {"total": {"type": "integer"}, "offset": {"type": "integer"}, "limit": {"type": "integer"},
                       "documents": {"type": "array", "items": _ref("DocumentSummary")}},
    },
    "Document": {
        "type": "object", "required": ["id", "title", "source", "metadata", "text", "passages"],
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "source": {"type": "string"},
            "metadata": {"type": "object"}, "text": {"type": "string"},
            "passages": {"type": "array", "items": {
                "type": "object", "required": ["passage_id", "ordinal", "start", "end", "text"],
                "properties": {"passage_id": {"type": "string"}, "ordinal": {"type": "integer"},
                               "start": {"type": "integer"}, "end": {"type": "integer"},
                               "section": {"type": "string"}, "page": {"type": ["integer", "null"]},
                               "text": {"type": "string"}},
            }},
        },
    },
}

_WRITE_BODY = {"required": True, "content": {
    JSON: {"schema": _ref("DocumentIn")},
    "multipart/form-data": {"schema": _ref("Upload"), "encoding": {"file": {"contentType": "text/plain"},
                                                                   "metadata": {"contentType": JSON}}},
}}
_STORED = {"Location": {"description": "The document's URL.", "schema": {"type": "string"}}}

PATHS: dict[str, Any] = {
    "/api/search": {
        "get": {
            "summary": "Passages that best answer a question, each with its answer sentence.",
            "description": "Filters as in the JSON body's filter: source, doc_id_prefix, and meta.KEY=VALUE for "
                           "metadata (repeat meta.KEY for any of several values; a value also matches the number "
                           "or the true, false or null it spells).",
            "operationId": "searchGet", "security": READ,
            "parameters": [
                {"name": "q", "in": "query", "required": True, "schema": QUERY},
                {"name": "k", "in": "query", "schema": K},
                {"name": "mode", "in": "query", "schema": MODE},
                {"name": "source", "in": "query", "schema": FILTER_TEXT,
                 "description": "Only documents from this source."},
                {"name": "doc_id_prefix", "in": "query", "schema": FILTER_TEXT,
                 "description": "Only documents whose id begins so."},
            ],
            "responses": {"200": _json(_ref("SearchResponse"), "The ranked passages."), **_errors(400, 401)},
        },
        "post": {
            "summary": "The same search, its fields in a JSON body.",
            "operationId": "searchPost", "security": READ,
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("SearchRequest")}}},
            "responses": {"200": _json(_ref("SearchResponse"), "The ranked passages."),
                          **_errors(400, 401, 413)},
        },
    },
    "/api/health": {"get": {
        "summary": "Liveness: the process answers. Never needs a token.", "operationId": "health", "security": [{}],
        "responses": {"200": _json(_ref("Health"), "Alive, with the index's size."),
                      "503": {"$ref": "#/components/responses/E503",
                              "description": "index_settings: the index was rebuilt with another model; restart."}},
    }},
    "/api/ready": {"get": {
        "summary": "Readiness: the model and the index are loaded and the store can be read.",
        "operationId": "ready", "security": [{}],
        "responses": {"200": _json(_ref("Ready"), "Ready to answer."), **_errors(503)},
    }},
    "/api/openapi.json": {"get": {
        "summary": "This description.", "operationId": "openapi", "security": READ,
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1."), **_errors(401)},
    }},
    "/api/documents": {
        "get": {
            "summary": "Stored documents in id order, a page at a time, without their text.",
            "operationId": "listDocuments", "security": READ,
            "parameters": [
                {"name": "offset", "in": "query",
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 20}},
            ],
            "responses": {"200": _json(_ref("DocumentList"), "A page of documents."), **_errors(400, 401)},
        },
        "post": {
            "summary": "Add a document (JSON, or a multipart file upload); it is searchable when this answers.",
            "operationId": "addDocument", "security": WRITE, "requestBody": _WRITE_BODY,
            "responses": {"201": _json(_ref("DocumentSummary"), "Stored.", _STORED),
                          **_errors(400, 401, 403, 409, 413, 415)},
        },
    },
    "/api/documents/{doc_id}": {
        "parameters": [DOC_ID],
        "get": {
            "summary": "A document's text and its passages.", "operationId": "getDocument", "security": READ,
            "responses": {"200": _json(_ref("Document"), "The document."), **_errors(401, 404)},
        },
        "put": {
            "summary": "Add or replace a document whole under this id.",
            "operationId": "putDocument", "security": WRITE, "requestBody": _WRITE_BODY,
            "responses": {"200": _json(_ref("DocumentSummary"), "Replaced.", _STORED),
                          "201": _json(_ref("DocumentSummary"), "Added.", _STORED),
                          **_errors(400, 401, 403, 413, 415)},
        },
        "delete": {
            "summary": "Delete a document; it is gone from searches when this answers.",
            "operationId": "deleteDocument", "security": WRITE,
            "responses": {"200": _json({"type": "object", "required": ["id", "deleted"],
                                        "properties": {"id": {"type": "string"}, "deleted": {"const": True}}},
                                       "Deleted."),
                          **_errors(401, 403, 404)},
        },
    },
    "/metrics": {"get": {
        "summary": "Prometheus metrics: requests and latency by route and status, search latency by mode, "
                   "index size.",
        "operationId": "metrics", "security": READ,
        "responses": {"200": {"description": "Prometheus text format.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}, **_errors(401)},
    }},
    "/": {"get": {
        "summary": "The search page; with q, the results rendered on the server.", "operationId": "searchPage",
        "security": READ,
        "parameters": [{"name": "q", "in": "query", "schema": QUERY},
                       {"name": "k", "in": "query", "schema": K},
                       {"name": "mode", "in": "query", "schema": MODE}],
        "responses": {"200": _html("The page."), "400": _html("The page with a message about the input."),
                      **_errors(401)},
    }},
    "/documents/{doc_id}": {"get": {
        "summary": "A whole document, with the passage of a result marked and scrolled into view.",
        "operationId": "documentPage", "security": READ,
        "parameters": [DOC_ID,
                       {"name": "passage", "in": "query", "schema": {"type": "string"},
                        "description": "The passage's ordinal."},
                       {"name": "q", "in": "query", "schema": {"type": "string"},
                        "description": "The question, whose words are marked."}],
        "responses": {"200": _html("The document."), "404": _html("No such document."), **_errors(401)},
    }},
}


def spec() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "qa", "version": "1",
                 "description": "Retrieval question answering over a folder of documents. Errors are JSON "
                                "{\"error\": {\"code\", \"message\"}} with a 4xx status; bad input never yields "
                                "a 500."},
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"E{status}": _json(_ref("Error"), text) for status, text in ERRORS.items()},
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "QA_API_TOKEN for writes; QA_READ_TOKEN (or QA_API_TOKEN) for reads when set.",
            }},
        },
    }


blueprint = Blueprint("openapi", __name__)


@blueprint.get("/api/openapi.json")
def openapi_json():
    return jsonify(spec())
