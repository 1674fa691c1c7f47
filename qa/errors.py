"""Errors the product reports to people: each has a stable code and a message."""

from __future__ import annotations


class QAError(Exception):
    """An error with a machine-readable code, shown to the user as is."""

    code = "error"
    status = 400

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(QAError):
    """A question, parameter or request body that cannot be answered."""

    code = "invalid_input"
    status = 400


class IndexUnavailable(QAError):
    """No index at the configured path, or one this version cannot load."""

    code = "index_unavailable"
    status = 503


class UnreadableFile(QAError):
    """A file that ingest cannot turn into text."""

    code = "unreadable_file"
    status = 400


class UnsupportedFile(UnreadableFile):
    """A file of a type ingest does not read: binary data, an unknown format or encoding."""

    code = "unsupported_file"
    status = 415


class Unauthorized(QAError):
    """A request without the token its endpoint needs."""

    code = "unauthorized"
    status = 401


class ReadOnly(QAError):
    """A write sent to a server started without a write token."""

    code = "read_only"
    status = 403


class NotFound(QAError):
    code = "not_found"
    status = 404


class Conflict(QAError):
    code = "conflict"
    status = 409


class DocumentExists(Conflict):
    """A create of a document whose id is stored."""

    code = "document_exists"

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"document {doc_id!r} exists; replace it (PUT) instead of adding it")


class NotReady(QAError):
    code = "not_ready"
    status = 503
