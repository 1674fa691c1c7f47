"""Question vectors: the cache, and the ONNX Runtime path against PyTorch."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import build_tiny_transformer

from qa.embedding import DEFAULT_MODEL, Embedder
from qa.lru import LRUCache

QUESTIONS = ["when did Wagner arrive in Mali?", "Who killed Prigozhin?", "What replaced Wagner in Mali?"]


def test_the_cache_keeps_the_most_recent_questions():
    cache = LRUCache(2)
    cache.put("a", np.ones(2))
    cache.put("b", np.ones(2))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.put("c", np.ones(2))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2
    off = LRUCache(0)
    off.put("a", np.ones(2))
    assert off.get("a") is None


def test_a_question_asked_again_is_not_encoded_again(embedder, monkeypatch):
    monkeypatch.setattr(embedder, "questions", LRUCache(16))
    calls = []
    real = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, progress=False: calls.append(list(texts)) or real(texts))
    first = embedder.encode_questions([QUESTIONS[0], QUESTIONS[1], QUESTIONS[0]])
    again = embedder.encode_questions([QUESTIONS[1], QUESTIONS[0]])
    assert calls == [[QUESTIONS[0], QUESTIONS[1]]]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(again, first[[1, 0]])
    np.testing.assert_allclose(first, real(QUESTIONS[:2] + QUESTIONS[:1]), atol=1e-6)


def test_onnx_questions_match_pytorch_and_the_export_is_reused(embedder, tmp_path):
    onnx = Embedder(backend="onnx", cache_size=0, onnx_cache=tmp_path)
    assert onnx.backend == "onnx"
    (exported,) = tmp_path.glob("*/model.onnx")
    cosines = np.sum(onnx.encode_questions(QUESTIONS) * embedder.encode(QUESTIONS), axis=1)
    assert cosines.min() > 0.9999
    stamp = exported.stat().st_mtime_ns
    again = Embedder(backend="onnx", onnx_cache=tmp_path)
    assert again.backend == "onnx" and again.dimension == 384
    assert exported.stat().st_mtime_ns == stamp
    np.testing.assert_allclose(again.encode(QUESTIONS), embedder.encode(QUESTIONS), atol=1e-6)


@pytest.mark.parametrize("kind", ["bundled", "static"])
def test_with_a_checked_export_questions_are_encoded_without_loading_pytorch(kind, embedder, static_model, tmp_path):
    """What makes a search-only server start in a second: neither PyTorch nor
    sentence-transformers is imported until a passage is encoded."""
    model = DEFAULT_MODEL if kind == "bundled" else str(static_model)
    first = Embedder(model, backend="onnx", onnx_cache=tmp_path)
    assert first.backend == ("onnx" if kind == "bundled" else "numpy")
    script = (f"import sys, numpy; from pathlib import Path; from qa.embedding import Embedder; "
              f"e = Embedder({model!r}, backend='onnx', onnx_cache=Path({str(tmp_path)!r})); "
              f"numpy.save(sys.stdout.buffer, e.encode_questions({QUESTIONS!r})); "
              f"print(sorted({{'torch', 'sentence_transformers'}} & set(sys.modules)), file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120, check=True)
    assert run.stderr.decode().strip().splitlines()[-1] == "[]"
    vectors = np.load(io.BytesIO(run.stdout))
    assert np.sum(vectors * first.encode(QUESTIONS), axis=1).min() > 0.9999


def test_a_static_model_encodes_questions_from_its_table_as_pytorch_does(static_model, tmp_path):
    Embedder(str(static_model), backend="onnx", onnx_cache=tmp_path)
    table = Embedder(str(static_model), backend="onnx", cache_size=0, onnx_cache=tmp_path)
    assert table.backend == "numpy" and table.dimension == 32
    texts = [*QUESTIONS, "", "word " * 1000]  # no tokens: the zero vector; no truncation either
    np.testing.assert_allclose(table.encode_questions(texts), table.encode(texts), atol=1e-5)


def test_an_export_made_removes_those_the_cache_kept_in_its_first_layout(tmp_path):
    path = build_tiny_transformer(tmp_path, after=("Normalize",))
    (tmp_path / "onnx").mkdir()
    old = tmp_path / "onnx" / "model-0123456789ab.onnx"  # one file per export, beside today's folders
    old.write_bytes(b"an export nothing reads any more")
    assert Embedder(str(path), backend="onnx", onnx_cache=tmp_path / "onnx").backend == "onnx"
    assert not old.exists() and len(list((tmp_path / "onnx").glob("*/model.onnx"))) == 1


def test_a_damaged_export_is_made_again(tmp_path):
    path = build_tiny_transformer(tmp_path, after=("Normalize",))
    Embedder(str(path), backend="onnx", onnx_cache=tmp_path / "onnx")
    (exported,) = (tmp_path / "onnx").glob("*/model.onnx")
    exported.write_bytes(b"not a model")
    again = Embedder(str(path), backend="onnx", cache_size=0, onnx_cache=tmp_path / "onnx")
    assert again.backend == "onnx" and exported.stat().st_size > 1000
    np.testing.assert_allclose(again.encode_questions(QUESTIONS), again.encode(QUESTIONS), atol=1e-5)


def test_without_a_usable_cache_questions_fall_back_to_pytorch(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    fallback = Embedder(backend="onnx", onnx_cache=blocked / "onnx")
    assert fallback.backend == "torch"
    assert fallback.encode_questions(QUESTIONS[:1]).shape == (1, 384)


def test_a_model_with_more_than_the_export_holds_goes_through_pytorch(tmp_path, caplog):
    """A Dense layer after pooling is not in the ONNX export: such a model must not use it."""
    path = build_tiny_transformer(tmp_path, after=("Dense",))
    dense = Embedder(str(path), backend="onnx", onnx_cache=tmp_path / "onnx")
    assert dense.backend == "torch"
    assert "Transformer + Pooling + Dense" in caplog.text and "PyTorch" in caplog.text
    np.testing.assert_allclose(dense.encode_questions(QUESTIONS), dense.encode(QUESTIONS), atol=1e-6)


def test_a_small_mean_pooled_model_goes_through_onnx_with_the_same_vectors(tmp_path):
    path = build_tiny_transformer(tmp_path, after=("Normalize",))
    small = Embedder(str(path), backend="onnx", cache_size=0, onnx_cache=tmp_path / "onnx")
    assert small.backend == "onnx"
    cosines = np.sum(small.encode_questions(QUESTIONS) * small.encode(QUESTIONS), axis=1)
    assert cosines.min() > 0.9999


def test_an_export_that_gives_other_vectors_is_not_used(tmp_path, monkeypatch, caplog):
    from qa.exports import OnnxEncoder

    real = OnnxEncoder.encode
    monkeypatch.setattr(OnnxEncoder, "encode", lambda self, texts, alone=True: real(self, texts, alone)[:, ::-1])
    path = build_tiny_transformer(tmp_path, after=("Normalize",))
    assert Embedder(str(path), backend="onnx", onnx_cache=tmp_path / "onnx").backend == "torch"
    assert "gives other vectors" in caplog.text


def test_passages_go_to_the_gpu_when_pytorch_sees_one_and_a_bad_device_is_refused():
    import torch

    from qa.embedding import checked_device
    from qa.errors import QAError

    assert checked_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert checked_device("cpu") == "cpu"
    with pytest.raises(QAError, match="such as cpu, cuda"):
        checked_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(QAError, match="sees no CUDA GPU"):
            checked_device("cuda")
