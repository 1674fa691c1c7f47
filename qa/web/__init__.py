"""The Flask application: JSON API under /api and the search page at /."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from qa import settings
from qa.engines import EngineChoice
from qa.errors import QAError
from qa.search import Searcher
from qa.service import Service
from qa.web.auth import require_read

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None, searcher: Searcher | None = None) -> Flask:
    """Build the app; the model and index load once here, shared by all threads
    (``searcher``: one already open, as tests pass). Routes ask ``api.service()``.

    Settings come from ``test_config`` where it names them, else from the ``QA_*``
    variables, else their defaults (``qa.settings``)."""
    app = Flask(__name__)
    app.config.from_mapping(test_config or {})  # Flask's own keys (TESTING, ...)
    app.config.from_mapping(settings.resolve(test_config or {}))  # qa's, each through its one parser
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    if not app.config["API_TOKEN"]:
        log.warning("QA_API_TOKEN is not set: the document API is read-only")
    app.json = _JSON(app)
    if searcher is None:
        service = Service.open(EngineChoice.of(app.config), app.config["MODEL"], app.config["BACKEND"],
                               app.config["QUESTION_CACHE"])
        service.save_every(0)  # derived files brought up to date now save time at the next start
        service.warm_up()
        if app.config["API_TOKEN"]:  # a read-only server never encodes a passage
            service.prepare_writes()
    else:
        service = Service(searcher)
    app.extensions["qa.service"] = service

    from qa.web import api, documents, observe, openapi, pages

    observe.init_app(app)  # first, so its clock starts before the token check can refuse
    app.register_blueprint(api.blueprint)
    app.register_blueprint(documents.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.before_request(_require_read)
    _register_error_handlers(app)
    return app


class _JSON(DefaultJSONProvider):
    """Keys in the order the code writes them, and text as it is (not \\u-escaped)."""

    sort_keys = False
    ensure_ascii = False


def _require_read() -> None:
    """Every route but liveness, readiness and static files needs the read token, when one is set."""
    if request.endpoint not in {"api.health", "api.ready", "static"}:
        require_read()


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(QAError)
    def qa_error(error: QAError):
        response = jsonify(error_body(error.code, error.message))
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="qa"'
        return response, error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not request.path.startswith("/api/"):
            return error
        code = (error.name or "error").lower().replace(" ", "_")
        response = jsonify(error_body(code, error.description or error.name))
        for name, value in error.get_headers():  # Allow, on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s", request.path)
        return jsonify(error_body("internal_error", "the server failed to answer; see its log")), 500
