"""What each request did: Prometheus metrics at /metrics and one JSON access-log line.

Under several worker processes (``qa serve --workers``) the counters live in files
under ``PROMETHEUS_MULTIPROC_DIR``, which must be set before this module is imported,
and /metrics adds up every worker's.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import datetime, timezone

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

blueprint = Blueprint("observe", __name__)
access_log = logging.getLogger("qa.access")

_SECONDS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("qa_http_requests", "HTTP requests answered, by route and status.", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("qa_http_request_seconds", "Time to answer an HTTP request, by route and status.",
                            ["method", "route", "status"], buckets=_SECONDS)
SEARCH_SECONDS = Histogram("qa_search_seconds", "Time a search took inside the service (took_ms), by mode.",
                           ["mode"], buckets=_SECONDS)


def init_app(app: Flask) -> None:
    """Time every request, count it and log it; register /metrics."""
    if not access_log.handlers:  # one JSON object per line on stderr, whatever the root logger does
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    app.before_request(_start_clock)
    app.after_request(_record)
    app.register_blueprint(blueprint)


def observe_search(mode: str, took_ms: float) -> None:
    SEARCH_SECONDS.labels(mode).observe(took_ms / 1000)


def _start_clock() -> None:
    g.qa_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.get("qa_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    # The request itself: each use of the proxy costs a lookup.
    asked: Request = request._get_current_object()  # type: ignore[attr-defined]
    route = asked.url_rule.rule if asked.url_rule is not None else "unmatched"
    labels = (asked.method, route, str(response.status_code))
    REQUESTS.labels(*labels).inc()
    REQUEST_SECONDS.labels(*labels).observe(seconds)
    if access_log.isEnabledFor(logging.INFO):
        _log(asked, route, response, seconds)
    return response


def _log(asked: Request, route: str, response: Response, seconds: float) -> None:
    line = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "method": asked.method,
        "route": route,
        "path": asked.path,
        "status": response.status_code,
        "ms": round(seconds * 1000, 2),
        "bytes": response.calculate_content_length(),
        "remote": asked.remote_addr,
        "pid": os.getpid(),
    }
    if current_app.config["LOG_QUERIES"]:
        line["q"] = _question()
    access_log.info(json.dumps(line, ensure_ascii=False))


def _question() -> str | None:
    """The question a request asked, if any: from the URL, or from a JSON body."""
    if "q" in request.args:
        return request.args["q"]
    body = request.get_json(silent=True) if request.is_json else None
    question = body.get("q") if isinstance(body, dict) else None
    return question if isinstance(question, str) else None


class IndexSize:
    """Gauges read from the served index when /metrics is scraped."""

    def __init__(self, service) -> None:
        self.service = service

    def collect(self):
        status = self.service.status()
        for name, text, value in (
            ("qa_index_documents", "Documents in the served index.", status.documents),
            ("qa_index_passages", "Passages in the served index.", status.passages),
            ("qa_index_generation", "The store's generation the served snapshot holds.", status.generation),
        ):
            yield GaugeMetricFamily(name, text, value=value)


@blueprint.get("/metrics")
def metrics():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests = CollectorRegistry()
        MultiProcessCollector(requests)
    else:
        requests = REGISTRY
    index = CollectorRegistry()
    index.register(IndexSize(current_app.extensions["qa.service"]))
    return Response(generate_latest(requests) + generate_latest(index), content_type=CONTENT_TYPE_LATEST)
