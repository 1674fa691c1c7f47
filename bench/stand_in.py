"""A stand-in encoder: a sentence-transformers StaticEmbedding model made on the spot
(random token vectors, the bundled model's tokenizer). It loads and encodes about a
hundred times faster than MiniLM, so a large corpus goes through the real ``qa
ingest`` and ``qa serve`` in minutes; its vectors mean nothing, only their cost."""

from __future__ import annotations

from pathlib import Path


def build_static_model(folder: Path, dimension: int = 384) -> Path:
    """Save a StaticEmbedding model of ``dimension`` to ``folder``; returns ``folder``."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from qa.embedding import DEFAULT_MODEL, model_location

    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:  # before sentence-transformers 5
        from sentence_transformers.models import StaticEmbedding

    tokenizer = AutoTokenizer.from_pretrained(model_location(DEFAULT_MODEL))
    SentenceTransformer(modules=[StaticEmbedding(tokenizer.backend_tokenizer, embedding_dim=dimension)]).save(
        str(folder))
    return folder


class NoEncoder:
    """Vectors that cost nothing, so that an ingest through it measures everything but
    the encoder: each is one of 4,096 random centres plus one of 4,099 small random
    offsets, taken in turn, so vectors are distinct (for some 16 million passages) and
    clustered as embeddings are, and an IVF index calibrates on them as on real ones."""

    name = "no-encoder"
    backend = "none"

    def __init__(self, dimension: int = 384, centres: int = 4096, offsets: int = 4099) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        self._centres = rng.standard_normal((centres, dimension)).astype(np.float32) / np.sqrt(dimension)
        self._offsets = 0.5 * rng.standard_normal((offsets, dimension)).astype(np.float32) / np.sqrt(dimension)
        self._handed = 0
        self.dimension = dimension

    def encode(self, texts: list[str], progress: bool = False):
        import numpy as np

        turn = np.arange(self._handed, self._handed + len(texts))
        self._handed += len(texts)
        vectors = self._centres[turn % len(self._centres)] + self._offsets[turn % len(self._offsets)]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


if __name__ == "__main__":  # python -m bench.stand_in CORPUS INDEX: ingest with no encoder at all
    import sys

    from qa.engines import EngineChoice
    from qa.ingest import ingest

    report = ingest([Path(sys.argv[1])], EngineChoice(index=Path(sys.argv[2])), NoEncoder())  # type: ignore[arg-type]
    print(f"{report.documents} document(s), {report.passages} passages")
