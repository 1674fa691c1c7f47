"""Bearer tokens: writes need QA_API_TOKEN; reads need QA_READ_TOKEN when one is set."""

from __future__ import annotations

import hmac

from flask import current_app, request

from qa.errors import ReadOnly, Unauthorized


def require_write() -> None:
    """Allow the request only with the write token; refuse all writes when none is set."""
    token = current_app.config["API_TOKEN"]
    if not token:
        raise ReadOnly("this server is read-only: start it with QA_API_TOKEN set to accept writes")
    if not _presented(token):
        raise Unauthorized("this endpoint needs the header Authorization: Bearer <QA_API_TOKEN>")


def require_read() -> None:
    """Allow the request when reads are open, or with the read (or write) token."""
    token = current_app.config["READ_TOKEN"]
    if token and not (_presented(token) or _presented(current_app.config["API_TOKEN"])):
        raise Unauthorized("this server needs the header Authorization: Bearer <QA_READ_TOKEN>")


def _presented(token: str | None) -> bool:
    """Whether the request carries ``token``, compared in constant time."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
