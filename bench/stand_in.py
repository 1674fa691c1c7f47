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
    """Vectors that cost nothing: random unit rows drawn once and handed out again, so
    that an ingest through it measures everything but the encoder."""

    name = "no-encoder"
    backend = "none"

    def __init__(self, dimension: int = 384, rows: int = 4096) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        block = rng.standard_normal((rows, dimension)).astype(np.float32)
        self._block = block / np.linalg.norm(block, axis=1, keepdims=True)
        self.dimension = dimension

    def encode(self, texts: list[str], progress: bool = False):
        import numpy as np

        repeats = -(-len(texts) // len(self._block)) or 1
        return np.tile(self._block, (repeats, 1))[: len(texts)] if repeats > 1 else self._block[: len(texts)]


if __name__ == "__main__":  # python -m bench.stand_in CORPUS INDEX: ingest with no encoder at all
    import sys

    from qa.engines import EngineChoice
    from qa.ingest import ingest

    report = ingest([Path(sys.argv[1])], EngineChoice(index=Path(sys.argv[2])), NoEncoder())  # type: ignore[arg-type]
    print(f"{report.documents} document(s), {report.passages} passages")
