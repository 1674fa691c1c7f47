"""Every setting, declared once with its default, its kind and its help text.

Each is read from the environment as ``QA_<NAME>`` and can be given to the CLI as
an option of the same name. The CLI, the environment and the app all turn a
setting's text into its value through ``Setting.value``: one parser per setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qa.errors import QAError

BACKENDS = ("onnx", "torch")
ENGINES = ("embedded", "milvus")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Setting:
    """One setting. ``kind`` is "text", "flag", "whole" (a whole number of at least
    ``least``) or "choice" (one of ``choices``)."""

    name: str
    default: Any
    help: str
    kind: str = "text"
    least: int = 0
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return f"QA_{self.name}"

    def value(self, raw: Any) -> Any:
        """``raw`` (text from the environment or a command line, or a value set in code)
        as this setting's value; a clear ``QAError`` when it is not one."""
        if isinstance(raw, str):
            raw = self._parse(raw)
        if self.kind == "text" and (raw is None or isinstance(raw, str)):
            return raw
        if self.kind == "flag" and isinstance(raw, bool):
            return raw
        if self.kind == "whole" and isinstance(raw, int) and not isinstance(raw, bool) and raw >= self.least:
            return raw
        if self.kind == "choice" and raw in self.choices:
            return raw
        raise self._invalid(raw)

    def from_environment(self, environ: Mapping[str, str] = os.environ) -> Any:
        """The value its ``QA_*`` variable gives, or its default where that is unset."""
        return self.value(environ[self.env]) if self.env in environ else self.default

    def _parse(self, text: str) -> Any:
        if self.kind == "text":
            return text if text else self.default  # set but empty counts as unset
        if self.kind == "flag":
            word = text.strip().lower()
            if word in TRUE or word in FALSE:
                return word in TRUE
            raise self._invalid(text)
        if self.kind == "whole":
            stripped = text.strip()
            if not (stripped.isascii() and stripped.isdigit()):
                raise self._invalid(text)
            return int(stripped)
        return text.strip()

    def _invalid(self, raw: Any) -> QAError:
        wanted = {
            "text": "text",
            "flag": f"a yes or no ({', '.join(TRUE[:3])} or {', '.join(FALSE[:3])})",
            "whole": f"a whole number of at least {self.least}",
            "choice": f"one of {', '.join(self.choices)}",
        }[self.kind]
        return QAError(f"{self.env} must be {wanted}, not {raw!r}", code="invalid_setting")


SETTINGS = (
    Setting("INDEX", "index/default", "Index directory to build and to serve; its name names the Milvus collections."),
    Setting("ENGINE", "embedded", "Where the index lives: embedded (SQLite, FAISS and BM25 in the index directory) "
            "or milvus (a Milvus server, or Milvus Lite in one file; pip install 'qa[milvus]').", "choice",
            choices=ENGINES),
    Setting("MILVUS_URI", None, "Milvus address, as pymilvus takes it: a path ending in .db is Milvus Lite, "
            "http://host:19530 a server; default: milvus.db in the index directory."),
    Setting("MILVUS_TOKEN", None, "Token for a Milvus server that requires one (user:password or an API key)."),
    Setting("RAY_ADDRESS", None, "Ray cluster `qa ingest --ray` runs on when --ray names none; unset, a local Ray "
            "is started (pip install 'qa[ray]')."),
    Setting("MODEL", None, "Embedding model: a sentence-transformers name or path. "
            "Ingest defaults to the bundled all-MiniLM-L6-v2; search uses the index's own model."),
    Setting("BACKEND", "onnx", "How questions are encoded: onnx (ONNX Runtime, exported once from the model "
            "and cached) or torch. Passages are always encoded with PyTorch.", "choice", choices=BACKENDS),
    Setting("DEVICE", None, "PyTorch device passages are embedded on (cpu, cuda, cuda:1, mps); "
            "default: cuda when PyTorch sees a GPU, else cpu."),
    Setting("QUESTION_CACHE", 1024, "How many question vectors are kept for questions asked again; 0 for none.",
            "whole"),
    Setting("HOST", "127.0.0.1", "Address `qa serve` listens on."),
    Setting("PORT", 8000, "Port `qa serve` listens on.", "whole", least=1),
    Setting("THREADS", 8, "Threads per worker process of `qa serve`.", "whole", least=1),
    Setting("WORKERS", 1, "Worker processes of `qa serve`; above 1, gunicorn runs them, each loading the index "
            "from disk.", "whole", least=1),
    Setting("LOG_QUERIES", False, "Put each request's question in its access-log line (off: questions are "
            "never logged).", "flag"),
    Setting("API_TOKEN", None, "Bearer token the document API's writes require; without one the server is read-only."),
    Setting("READ_TOKEN", None, "Bearer token searches, the page and document reads require; unset, reads are open."),
    Setting("MAX_BODY_BYTES", 20 * 1024 * 1024, "Largest request body `qa serve` accepts (413 above it).", "whole",
            least=1),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The value of every setting: its ``QA_*`` variable where set, else its default."""
    return {setting.name: setting.from_environment(environ) for setting in SETTINGS}


def resolve(given: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Every setting: from ``given`` where it names one, else the environment, else the default."""
    values = from_environment(environ)
    values.update({name: BY_NAME[name].value(raw) for name, raw in given.items() if name in BY_NAME})
    return values
