"""Every setting, declared once with its default and help text.

Each is read from the environment as ``QA_<NAME>`` and can be given to the CLI
as an option of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return f"QA_{self.name}"


BACKENDS = ("onnx", "torch")

SETTINGS = (
    Setting("INDEX", "index/default", "Index directory to build and to serve."),
    Setting("MODEL", None, "Embedding model: a sentence-transformers name or path. "
            "Ingest defaults to the bundled all-MiniLM-L6-v2; search uses the index's own model."),
    Setting("BACKEND", "onnx", "How questions are encoded: onnx (ONNX Runtime, exported once from the model "
            "and cached) or torch. Passages are always encoded with PyTorch."),
    Setting("QUESTION_CACHE", 1024, "How many question vectors are kept for questions asked again; 0 for none."),
    Setting("HOST", "127.0.0.1", "Address `qa serve` listens on."),
    Setting("PORT", 8000, "Port `qa serve` listens on."),
    Setting("THREADS", 8, "Threads per worker process of `qa serve`."),
    Setting("WORKERS", 1, "Worker processes of `qa serve`; above 1, gunicorn runs them, each loading the index "
            "from disk."),
    Setting("LOG_QUERIES", False, "Put each request's question in its access-log line (off: questions are "
            "never logged)."),
    Setting("API_TOKEN", None, "Bearer token the document API's writes require; without one the server is read-only."),
    Setting("READ_TOKEN", None, "Bearer token searches, the page and document reads require; unset, reads are open."),
    Setting("MAX_BODY_BYTES", 20 * 1024 * 1024, "Largest request body `qa serve` accepts (413 above it)."),
)


def defaults() -> dict[str, Any]:
    return {setting.name: setting.default for setting in SETTINGS}
