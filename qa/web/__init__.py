"""The Flask application: JSON API under /api and the search page at /."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from qa.errors import QAError
from qa.search import Searcher
from qa.settings import defaults

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024


def create_app(test_config: dict[str, Any] | None = None, searcher: Searcher | None = None) -> Flask:
    """Build the app; the model and index load once here, shared by all threads."""
    app = Flask(__name__)
    app.config.from_mapping(defaults(), MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    app.config.from_prefixed_env("QA")
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    if searcher is None:
        searcher = Searcher.open(Path(app.config["INDEX"]), app.config["MODEL"])
        searcher.warm_up()
    app.extensions["qa.searcher"] = searcher

    from qa.web import api, pages

    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)
    _register_error_handlers(app)
    return app


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(QAError)
    def qa_error(error: QAError):
        return jsonify(error_body(error.code, error.message)), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not request.path.startswith("/api/"):
            return error
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify(error_body(code, error.description or error.name)), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error on %s", request.path)
        return jsonify(error_body("internal_error", "the server failed to answer; see its log")), 500
