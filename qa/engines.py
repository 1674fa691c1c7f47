"""Which engine an index lives in, from the settings, and opening it.

``--engine embedded`` (the default) keeps the index in its folder. ``--engine milvus``
keeps it in Milvus at ``--milvus-uri``, passed to pymilvus as it is: a path ending in
``.db`` is Milvus Lite, ``http://host:19530`` a server. Unset, it is ``milvus.db``
inside the index folder. The collections are named after the index folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.engine import Engine
from qa.errors import QAError


@dataclass(frozen=True)
class EngineChoice:
    """Where an index lives: its engine, its folder and, for Milvus, the server."""

    engine: str = "embedded"
    index: Path = Path("index/default")
    milvus_uri: str | None = None
    milvus_token: str | None = None

    @classmethod
    def of(cls, config: dict[str, Any]) -> EngineChoice:
        """From resolved settings (``qa.settings.resolve``), as the app and the CLI hold them."""
        return cls(config["ENGINE"], Path(config["INDEX"]), config["MILVUS_URI"], config["MILVUS_TOKEN"])

    @property
    def name(self) -> str:
        """The index's name: its folder's."""
        return self.index.resolve().name

    @property
    def uri(self) -> str:
        """The Milvus address as pymilvus takes it."""
        return self.milvus_uri or str(self.index / "milvus.db")

    def describe(self) -> str:
        """Where the index is, in words for a log line or a health check."""
        return str(self.index) if self.engine == "embedded" else f"milvus {self.uri}, index {self.name}"


def open_engine(choice: EngineChoice, model: str | None = None) -> Engine:
    """The existing index ``choice`` names, to search and write; ``model``, if given, must
    be the one it was built with."""
    if choice.engine == "milvus":
        return _milvus().MilvusEngine.open(choice, model)
    from qa.embedded import EmbeddedEngine

    return EmbeddedEngine.open(choice.index, model)


def open_engine_for_writing(choice: EngineChoice, meta: dict[str, str], replace: bool = False,
                            bulk: bool = False) -> Engine:
    """The index ``choice`` names, made if missing, to store passages made with ``meta``;
    one built with other settings is refused unless ``replace`` (then rebuilt whole).
    A ``bulk`` load, one that ends with ``compact``, may leave what it writes slower to
    search until then (the embedded engine indexes its vectors once, there)."""
    if choice.engine == "milvus":
        return _milvus().MilvusEngine.open_for_writing(choice, meta, replace)
    from qa.embedded import EmbeddedEngine

    return EmbeddedEngine.open_for_writing(choice.index, meta, replace, bulk)


def _milvus() -> Any:
    """``qa.milvus``, or a clear error when the optional pymilvus is not installed."""
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        raise QAError("the Milvus engine needs pymilvus: pip install 'qa[milvus]'", code="engine_missing") from None
    import qa.milvus

    return qa.milvus
