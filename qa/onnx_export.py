"""The ONNX export of a loaded sentence-transformers model: its transformer with mean
pooling and normalisation, and its tokenizer, written to a cache folder that
``qa.onnx_backend`` encodes from. Nothing is downloaded: the export runs locally
from weights already loaded."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import torch

from qa.onnx_backend import MODEL_FILE, OPSET, TOKENIZER_FILE, ExportRecord, write_atomically

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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


def export(transformer: torch.nn.Module, tokenizer, max_length: int, dimension: int, folder: Path) -> ExportRecord:
    """Write the pooled model and its fast tokenizer into ``folder``; the record to
    save once its vectors are checked (its ``cosine`` still 0)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer, which the export needs")
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / TOKENIZER_FILE, backend.to_str().encode())
    _export_model(transformer, tokenizer, folder / MODEL_FILE)
    return ExportRecord(dimension=dimension, max_length=max_length, pad_id=int(tokenizer.pad_token_id),
                        pad_type_id=int(tokenizer.pad_token_type_id), pad_token=str(tokenizer.pad_token), cosine=0.0)


def _export_model(transformer: torch.nn.Module, tokenizer, path: Path) -> None:
    """Write the pooled model to ``path`` as ONNX, atomically."""
    sample = tokenizer(["a question"], return_tensors="pt")
    names = [name for name in INPUTS if name in sample]
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
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
