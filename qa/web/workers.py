"""`qa serve --workers N`: N gunicorn worker processes behind one port, one index on disk.

The master brings the index's derived files up to the store's generation once, so
every worker loads them as they are instead of rebuilding them. Each worker then
loads the model and the index itself: the model's runtimes (PyTorch, ONNX Runtime)
keep thread pools that do not survive a fork, so nothing is loaded before it.
Writes through one worker reach the others through the store's generation.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from qa import settings
from qa.engines import EngineChoice, open_engine
from qa.errors import QAError

# gunicorn refuses longer request lines; a 1,000-character question, percent-encoded, needs more than its 4,094.
MAX_REQUEST_LINE = 8190


class Workers(BaseApplication):
    """gunicorn, configured in code, building one app per worker."""

    def __init__(self, config: dict[str, Any], options: dict[str, Any]) -> None:
        self.app_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        from qa.web import create_app

        return create_app(self.app_config)


def serve(config: dict[str, Any], host: str, port: int, workers: int, threads: int) -> None:
    """Run ``workers`` processes of ``threads`` threads each until stopped."""
    prepare(EngineChoice.of(settings.resolve(config)))
    made = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # workers share counters through files here
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="qa-metrics-")
    try:
        Workers(config, {
            "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
            # A worker takes no more connections than it has threads: the rest wait for an idle worker.
            "worker_connections": threads,
            "timeout": 120, "graceful_timeout": 30, "limit_request_line": MAX_REQUEST_LINE,
            "post_worker_init": _worker_ready, "child_exit": _child_exit, "accesslog": None,
        }).run()
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)


def prepare(choice: EngineChoice) -> None:
    """Bring what the index keeps for a quick start up to date, so workers start by loading it.
    Milvus Lite serves one process: several workers need a Milvus server."""
    if choice.engine == "milvus" and choice.uri.endswith(".db"):
        raise QAError(f"Milvus Lite ({choice.uri}) serves one process; run one worker, or point --milvus-uri "
                      f"at a Milvus server", code="invalid_setting")
    engine = open_engine(choice)
    try:
        engine.save()
    finally:
        engine.close()


def _worker_ready(worker) -> None:
    worker.log.info("worker %s ready: model and index loaded", worker.pid)


def _child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
