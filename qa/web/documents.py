"""The document API: list, read, add, replace and delete documents while serving.

A document comes as JSON (``{"id"?, "title", "text", "source"?, "metadata"?}``) or as
a multipart upload of one file (field ``file``; ``id``, ``title``, ``source`` and
``metadata`` as optional form fields) in any format ``qa ingest`` reads. An upload's
file name is only a label: nothing is ever opened by that name.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from flask import Blueprint, jsonify, request, url_for

from qa.documents import Document, Passage
from qa.engine import DocumentSummary
from qa.errors import InvalidInput, NotFound
from qa.readers import SUFFIX_OF_TYPE, SUPPORTED_SUFFIXES, parse_document
from qa.web.api import service
from qa.web.auth import require_write

blueprint = Blueprint("documents", __name__, url_prefix="/api/documents")

MAX_ID_CHARS = 512
MAX_PAGE = 100
MAX_OFFSET = 10**9
UPLOAD_FIELDS = ("file", "id", "title", "source", "metadata")
SAVE_EVERY_SECONDS = 30.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@blueprint.get("")
def list_documents():
    offset = _whole_number("offset", 0, 0, MAX_OFFSET)
    limit = _whole_number("limit", 20, 1, MAX_PAGE)
    total, documents = service().documents(offset, limit)
    return jsonify({"total": total, "offset": offset, "limit": limit,
                    "documents": [summary_json(d) for d in documents]})


@blueprint.get("/<path:doc_id>")
def get_document(doc_id: str):
    document, passages = _stored(doc_id)
    return jsonify({
        **_summary(document, len(passages)),
        "text": document.text,
        "passages": [
            {"passage_id": p.passage_id, "ordinal": p.ordinal, "start": p.start, "end": p.end, "section": p.section,
             "page": p.page, "text": p.text}
            for p in passages
        ],
    })


@blueprint.post("")
def create_document():
    """Add a document; 409 if its id is stored, decided in the transaction that writes it."""
    require_write()
    return _store(_document_from_request(None), create=True)


@blueprint.put("/<path:doc_id>")
def replace_document(doc_id: str):
    require_write()
    return _store(_document_from_request(_checked_id(doc_id)))


@blueprint.delete("/<path:doc_id>")
def delete_document(doc_id: str):
    require_write()
    if not service().delete(doc_id):
        raise NotFound(f"no document with id {doc_id!r}", code="document_not_found")
    service().save_every(SAVE_EVERY_SECONDS)
    return jsonify({"id": doc_id, "deleted": True})


def _store(document: Document, create: bool = False):
    """Store ``document``: 201 when it is new, 200 when it replaced (or equalled) a stored one."""
    stored = service().store(document, create=create)
    service().save_every(SAVE_EVERY_SECONDS)
    response = jsonify({**_summary(document, stored.passages), "unchanged": stored.unchanged})
    response.status_code = 201 if stored.created else 200
    response.headers["Location"] = f"{url_for('documents.list_documents')}/{quote(document.doc_id, safe='')}"
    return response


def _stored(doc_id: str) -> tuple[Document, list[Passage]]:
    """The stored document and its passages; 404 when there is none (or no longer one)."""
    found = service().document(doc_id)
    if found is None:
        raise NotFound(f"no document with id {doc_id!r}", code="document_not_found")
    return found


def summary_json(summary: DocumentSummary) -> dict[str, Any]:
    """A document as the API lists it (the JSON of ``DocumentSummary``)."""
    return {"id": summary.doc_id, "title": summary.title, "source": summary.source,
            "metadata": summary.metadata, "passages": summary.passages}


def _summary(document: Document, passages: int) -> dict[str, Any]:
    return summary_json(DocumentSummary(document.doc_id, document.title, document.source, document.metadata, passages))


def _document_from_request(doc_id: str | None) -> Document:
    """The document a POST or PUT body describes; ``doc_id`` (from the URL) wins over the body's."""
    if request.mimetype == "multipart/form-data":
        return _document_from_upload(doc_id)
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidInput('the body must be a JSON object such as {"title": "...", "text": "..."} '
                           "or a multipart upload with a file field", code="invalid_json")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text is required: a non-empty string", code="invalid_document")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("title is required: a non-empty string", code="invalid_document")
    given = _given_id(body)
    return Document(
        doc_id=doc_id or given or uuid.uuid4().hex,
        title=title.strip(),
        source=_optional_string(body, "source"),
        text=text,
        metadata=_metadata(body.get("metadata")),
    )


def _document_from_upload(doc_id: str | None) -> Document:
    form = request.form
    for field in UPLOAD_FIELDS:
        if len(form.getlist(field)) + len(request.files.getlist(field)) > 1:
            raise InvalidInput(f"the multipart field {field!r} is given more than once", code="invalid_document")
    data, name = _uploaded_file()
    given = _given_id(form)
    document = parse_document(data, name, doc_id or given or _checked_id(name))
    sent = form.get("metadata")
    try:
        metadata = json.loads(sent) if sent else {}
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", code="invalid_document")
    return replace(
        document,
        title=(form.get("title") or "").strip() or document.title,
        source=(form.get("source") or "").strip() or document.source,
        metadata=metadata,
    )


def _uploaded_file() -> tuple[bytes, str]:
    """The upload's bytes and the name that says its format: the file's own name, with
    the suffix its part's media type gives where the name has none ingest reads. A
    field sent without a file name is text, named by a made-up id."""
    upload = request.files.get("file")
    if upload is not None:
        data, name, media = upload.read(), upload.filename or "", upload.mimetype
    elif "file" in request.form:
        data, name, media = request.form["file"].encode(), uuid.uuid4().hex, "text/plain"
    else:
        raise InvalidInput("the multipart body needs a file field named 'file'", code="missing_file")
    name = PurePosixPath(name.replace("\\", "/")).name
    if PurePosixPath(name).suffix.lower() not in SUPPORTED_SUFFIXES and media in SUFFIX_OF_TYPE:
        name = f"{name or uuid.uuid4().hex}{SUFFIX_OF_TYPE[media]}"
    if not name or name in {".", ".."}:
        raise InvalidInput("the uploaded file needs a name with its type, such as notes.md", code="missing_file")
    return data, name


def _given_id(fields: Mapping[str, Any]) -> str | None:
    """The id a body gives, checked even where the URL's wins; None when it gives none."""
    return _checked_id(fields["id"]) if "id" in fields else None


def _checked_id(doc_id: Any) -> str:
    if not isinstance(doc_id, str) or not doc_id.strip() or doc_id != doc_id.strip():
        raise InvalidInput("a document id is a non-empty string without surrounding spaces", code="invalid_id")
    if len(doc_id) > MAX_ID_CHARS or _CONTROL.search(doc_id):
        raise InvalidInput(f"a document id has at most {MAX_ID_CHARS} characters and no control characters",
                           code="invalid_id")
    return doc_id


def _optional_string(body: dict, name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", code="invalid_document")
    return value.strip()


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be a JSON object", code="invalid_document")
    return value


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.strip().isascii() and raw.strip().isdigit()) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}", code=f"invalid_{name}")
    return int(raw)

