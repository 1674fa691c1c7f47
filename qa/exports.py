"""Questions encoded from an export of the model, without PyTorch.

An export (``qa.exporter`` makes it once from the loaded PyTorch model) is a folder
in the cache: the model in a form that needs no PyTorch, its tokenizer, and a record
of how its vectors compared with PyTorch's. A checked export is all it takes to
encode questions, so a server that only searches starts without importing PyTorch
or sentence-transformers, most of the time and memory a start took
(`python -m bench.start`).

Two kinds: a mean-pooled transformer runs in ONNX Runtime (about 2.5 times as fast
as PyTorch for one short question on 2 CPU cores, cosine 1.0 on the bundled model;
docs/BENCHMARKS.md); a static model (token vectors averaged, as sentence-transformers'
``StaticEmbedding``) is its vector table in NumPy.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tokenizers import Tokenizer

ONNX_FILE = "model.onnx"
TABLE_FILE = "embeddings.npy"
TOKENIZER_FILE = "tokenizer.json"
RECORD_FILE = "export.json"
OPSET = 17


@dataclass(frozen=True)
class ExportRecord:
    """What an export is and encodes like: its ``kind`` ("onnx" or "static"), the model's
    vector size, how its tokenizer truncates and pads, and the lowest cosine its vectors
    reached against PyTorch's when checked."""

    kind: str
    dimension: int
    cosine: float = 0.0
    max_length: int = 0
    pad_id: int = 0
    pad_type_id: int = 0
    pad_token: str = ""

    def save(self, folder: Path) -> None:
        """Write the record, last and atomically: an export is used only once it has one."""
        write_atomically(folder / RECORD_FILE, json.dumps(asdict(self)).encode())

    @classmethod
    def load(cls, folder: Path) -> ExportRecord | None:
        """The record of the export in ``folder``, or None where there is no whole one."""
        try:
            return cls(**json.loads((folder / RECORD_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


class QuestionEncoder(Protocol):
    """Texts to unit-length float32 vectors, from an export."""

    backend: str

    def encode(self, texts: list[str], alone: bool = True) -> np.ndarray: ...


def open_encoder(folder: Path, record: ExportRecord) -> QuestionEncoder:
    """The encoder of the export in ``folder``."""
    if record.kind == "static":
        return StaticEncoder(folder)
    return OnnxEncoder(folder, record)


class OnnxEncoder:
    """Encodes texts with an exported mean-pooled, normalised transformer."""

    backend = "onnx"

    def __init__(self, folder: Path, record: ExportRecord) -> None:
        # A lone call uses every core (8.1 ms against 8.9 ms on one of 2 cores in
        # `python -m bench.question_encoders`); calls running side by side take one core each.
        self._wide = _session(folder / ONNX_FILE, threads=0)
        self._narrow = _session(folder / ONNX_FILE, threads=1)
        self._inputs = {i.name for i in self._wide.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(record.max_length)
        self._tokenizer.enable_padding(pad_id=record.pad_id, pad_type_id=record.pad_type_id,
                                       pad_token=record.pad_token)
        self._tokenizing = threading.Lock()

    def encode(self, texts: list[str], alone: bool = True) -> np.ndarray:
        """Vectors of ``texts``; ``alone`` says no other call is running, so all cores are free."""
        with self._tokenizing:
            encodings = self._tokenizer.encode_batch(texts)
        columns = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                   "token_type_ids": [e.type_ids for e in encodings]}
        feed = {name: np.array(column, dtype=np.int64) for name, column in columns.items() if name in self._inputs}
        session = self._wide if alone else self._narrow
        return np.ascontiguousarray(session.run(None, feed)[0], dtype=np.float32)


class StaticEncoder:
    """Encodes texts as the normalised mean of their tokens' vectors (no special tokens,
    no truncation), as sentence-transformers' ``StaticEmbedding`` does."""

    backend = "numpy"

    def __init__(self, folder: Path) -> None:
        self._table = np.load(folder / TABLE_FILE)
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._tokenizing = threading.Lock()

    def encode(self, texts: list[str], alone: bool = True) -> np.ndarray:
        """Vectors of ``texts`` (a text without tokens gets the zero vector)."""
        with self._tokenizing:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        vectors = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            if encoding.ids:
                vectors[row] = self._table[encoding.ids].mean(axis=0)
        lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(lengths, 1e-12)


def _session(path: Path, threads: int):
    """An ONNX Runtime session on ``threads`` cores (0: all of them)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # Idle threads sleep instead of spinning, leaving the cores to the rest of a request.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_folder(cache: Path, model_location: str) -> Path:
    """Where the export of the model at ``model_location`` is cached: one folder per
    model files (names, sizes, times) and exporter version."""
    location = Path(model_location)
    files = sorted(f for f in location.rglob("*") if f.is_file()) if location.is_dir() else []
    stamp: list[object] = [model_location, _version("torch"), _version("onnx"), OPSET]
    stamp += [(str(f.relative_to(location)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return cache / f"{location.name}-{hashlib.sha256(repr(stamp).encode()).hexdigest()[:12]}"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
