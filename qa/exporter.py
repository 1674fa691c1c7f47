"""Exports of a loaded sentence-transformers model that encode without PyTorch
(``qa.exports`` reads them): a mean-pooled transformer as ONNX, a static model as
its vector table, each with its tokenizer. Nothing is downloaded: an export is
made locally from weights already loaded."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qa.exports import ONNX_FILE, OPSET, TABLE_FILE, TOKENIZER_FILE, ExportRecord, write_atomically

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class NotExportable(ValueError):
    """The model holds more than any export does."""


def export(model: Any, folder: Path) -> ExportRecord:
    """Write an export of ``model`` into ``folder``; the record to save once its vectors
    are checked (its ``cosine`` still 0). ``NotExportable`` where no export holds it."""
    modules: list[Any] = list(model)
    kinds = [type(module).__name__ for module in modules]
    dimension = int(model.get_embedding_dimension())
    folder.mkdir(parents=True, exist_ok=True)
    _remove_old_layout(folder.parent)
    if kinds[0] == "StaticEmbedding" and set(kinds[1:]) <= {"Normalize"}:
        return _export_static(modules[0], dimension, folder)
    pooling = modules[1].get_config_dict().get("pooling_mode") if len(modules) > 1 else None
    if kinds[:2] == ["Transformer", "Pooling"] and pooling == "mean" and set(kinds[2:]) <= {"Normalize"}:
        length = int(model.max_seq_length or modules[0].tokenizer.model_max_length)
        return _export_transformer(modules[0].auto_model, modules[0].tokenizer, length, dimension, folder)
    raise NotExportable(f"it is {' + '.join(kinds)}, not a mean-pooled transformer or a static model alone, "
                        f"which an export holds")


def _remove_old_layout(cache: Path) -> None:
    """Delete exports of the cache's first layout, one ``.onnx`` file each beside the
    folders (90 MB for MiniLM), which nothing reads any more."""
    for old in cache.glob("*.onnx"):
        with contextlib.suppress(OSError):  # not ours to remove: the export goes on beside it
            old.unlink()


def _export_static(module: Any, dimension: int, folder: Path) -> ExportRecord:
    """The token vector table as .npy, and the tokenizer."""
    table = io.BytesIO()
    np.save(table, module.embedding.weight.detach().cpu().numpy().astype(np.float32))
    write_atomically(folder / TABLE_FILE, table.getvalue())
    write_atomically(folder / TOKENIZER_FILE, module.tokenizer.to_str().encode())
    return ExportRecord(kind="static", dimension=dimension)


def _export_transformer(transformer: torch.nn.Module, tokenizer: Any, max_length: int, dimension: int,
                        folder: Path) -> ExportRecord:
    """The transformer with pooling and normalisation as ONNX, and its fast tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise NotExportable(f"its tokenizer ({type(tokenizer).__name__}) is not a fast one, which an export needs")
    write_atomically(folder / TOKENIZER_FILE, backend.to_str().encode())
    _write_onnx(transformer, tokenizer, folder / ONNX_FILE)
    return ExportRecord(kind="onnx", dimension=dimension, max_length=max_length,
                        pad_id=int(tokenizer.pad_token_id), pad_type_id=int(tokenizer.pad_token_type_id),
                        pad_token=str(tokenizer.pad_token))


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


def _write_onnx(transformer: torch.nn.Module, tokenizer: Any, path: Path) -> None:
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
