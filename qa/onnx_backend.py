"""Questions through ONNX Runtime and the ``tokenizers`` library, without PyTorch.

An export (``qa.onnx_export`` makes it once from the loaded PyTorch model) is a
folder in the cache: the pooled transformer as ONNX, its tokenizer, and a record
of how it was checked against PyTorch. A verified export is all it takes to encode
questions, so a server that only searches starts without importing PyTorch or
sentence-transformers (about 10 s of a 2-core machine's start, and 500 MB).

About 2.5 times as fast as PyTorch for one short question on 2 CPU cores, with
the same vectors (cosine 1.0 on the bundled model; docs/BENCHMARKS.md).
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

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
RECORD_FILE = "export.json"
OPSET = 17


@dataclass(frozen=True)
class ExportRecord:
    """What an export encodes like: the model's vector size, how its tokenizer truncates
    and pads, and the lowest cosine its vectors reached against PyTorch's when checked."""

    dimension: int
    max_length: int
    pad_id: int
    pad_type_id: int
    pad_token: str
    cosine: float

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


class OnnxEncoder:
    """Encodes texts with the exported, mean-pooled and normalised model in ``folder``."""

    def __init__(self, folder: Path, record: ExportRecord) -> None:
        # A lone call uses every core (8.1 ms against 8.9 ms on one of 2 cores in
        # `python -m bench.question_encoders`); calls running side by side take one core each.
        self._wide = _session(folder / MODEL_FILE, threads=0)
        self._narrow = _session(folder / MODEL_FILE, threads=1)
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


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    """A session on ``threads`` cores (0: all of them)."""
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
