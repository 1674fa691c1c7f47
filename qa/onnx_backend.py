"""Questions through ONNX Runtime: the model's transformer with mean pooling and
normalisation, exported once from the loaded PyTorch model and cached on disk.

About 2.5 times as fast as PyTorch for one short question on 2 CPU cores, with
the same vectors (cosine 1.0 on the bundled model; docs/BENCHMARKS.md). Nothing is downloaded: the export runs
locally from weights already loaded.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


class _Pooled(torch.nn.Module):
    """Transformer output averaged over real tokens and scaled to unit length."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


class OnnxEncoder:
    """Encodes texts with an exported copy of a mean-pooled BERT-style model."""

    def __init__(self, transformer: torch.nn.Module, tokenizer, max_length: int, path: Path) -> None:
        if not path.is_file():
            export(transformer, tokenizer, path)
        # A lone call uses every core (8.1 ms against 8.9 ms on one of 2 cores in
        # `python -m bench.question_encoders`); calls running side by side take one core each.
        self._wide = _session(path, threads=0)
        self._narrow = _session(path, threads=1)
        self._inputs = {i.name for i in self._wide.get_inputs()}
        self._tokenizer = tokenizer
        self._max_length = max_length
        self._tokenizing = threading.Lock()  # a fast tokenizer is not safe to share between threads

    def encode(self, texts: list[str], alone: bool = True) -> np.ndarray:
        """Vectors of ``texts``; ``alone`` says no other call is running, so all cores are free."""
        with self._tokenizing:
            tokens = self._tokenizer(texts, padding=True, truncation=True, max_length=self._max_length,
                                     return_tensors="np")
        feed = {name: tokens[name].astype(np.int64) for name in INPUTS if name in self._inputs}
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


def export(transformer: torch.nn.Module, tokenizer, path: Path) -> None:
    """Write the pooled model to ``path`` as ONNX, atomically."""
    sample = tokenizer(["a question"], return_tensors="pt")
    names = [name for name in INPUTS if name in sample]
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing are not for users
            torch.onnx.export(
                _Pooled(transformer).eval(), tuple(sample[n] for n in names), str(temporary),
                input_names=names, output_names=["embedding"], dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def export_path(cache: Path, model_location: str) -> Path:
    """Where the export of the model at ``model_location`` is cached: one file per
    model, weights and exporter version."""
    weights = sorted(Path(model_location).glob("*.safetensors")) + sorted(Path(model_location).glob("*.bin"))
    stamp = [model_location, torch.__version__, OPSET]
    stamp += [(w.name, w.stat().st_size, w.stat().st_mtime_ns) for w in weights]
    return cache / f"{Path(model_location).name}-{hashlib.sha256(repr(stamp).encode()).hexdigest()[:12]}.onnx"
