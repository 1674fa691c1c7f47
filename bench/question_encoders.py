"""One question at a time, the encoders in turn: PyTorch, ONNX on all cores, ONNX on one.

    python -m bench.question_encoders [--questions 200]

Taking the three in turn for each question spreads the machine's noise over all
three alike; the medians are comparable within one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.speed import SQUAD
from qa.beir import load_beir
from qa.embedding import Embedder


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.question_encoders")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--corpus", type=Path, default=SQUAD)
    args = parser.parse_args()
    questions = list(load_beir(args.corpus, "test").queries.values())[: args.questions]
    embedder = Embedder(backend="onnx", cache_size=0)
    onnx = embedder._onnx  # the encoder itself: its two sessions, without cache or batching
    encoders = {
        "pytorch": lambda q: embedder.encode([q]),
        "onnx, all cores": lambda q: onnx.encode([q], alone=True),
        "onnx, one core": lambda q: onnx.encode([q], alone=False),
    }
    timings: dict[str, list[float]] = {name: [] for name in encoders}
    for question in questions:
        for name, encode in encoders.items():
            started = time.perf_counter()
            encode(question)
            timings[name].append((time.perf_counter() - started) * 1000)
    base = np.median(timings["pytorch"])
    for name, values in timings.items():
        print(f"{name:16} p50 {np.median(values):5.1f} ms  p99 {np.percentile(values, 99):5.1f} ms  "
              f"{base / np.median(values):.2f}x pytorch's speed")


if __name__ == "__main__":
    main()
