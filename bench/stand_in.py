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
