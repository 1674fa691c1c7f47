"""qa's question encoder beside sentence-transformers' own ONNX backend, one question at a time.

    bench/library_onnx.sh [--questions 200] [--rounds 3]

The library's backend (``SentenceTransformer(model, backend="onnx")``) needs
optimum-onnx, whose only release requires transformers<4.58, below what qa installs;
bench/library_onnx.sh makes a virtual environment of that older stack to run this in,
and points ``--export`` at the export qa's own environment made of the bundled model.
Both encode the same SQuAD-dev questions, taken in turn for each question so that the
machine's noise falls on both alike; the medians are comparable within one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.speed import SQUAD
from qa.beir import load_beir
from qa.embedding import DEFAULT_MODEL, model_location
from qa.exports import ExportRecord, OnnxEncoder


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.library_onnx", description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True, help="The folder of qa's export of the bundled model.")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    library = SentenceTransformer(model_location(DEFAULT_MODEL), backend="onnx", device="cpu")
    record = ExportRecord.load(args.export)
    if record is None:
        raise SystemExit(f"no export in {args.export}")
    qa = OnnxEncoder(args.export, record)
    questions = list(load_beir(SQUAD, "test").queries.values())[: args.questions]
    agreement = np.sum(library.encode(questions, normalize_embeddings=True) * qa.encode(questions), axis=1).min()
    print(f"lowest cosine between the two encoders' vectors: {agreement:.5f}")
    encoders = {"sentence-transformers onnx": lambda q: library.encode([q], normalize_embeddings=True),
                "qa onnx": lambda q: qa.encode([q], alone=True)}
    for round_number in range(1, args.rounds + 1):
        timings: dict[str, list[float]] = {name: [] for name in encoders}
        for question in questions:
            for name, encode in encoders.items():
                started = time.perf_counter()
                encode(question)
                timings[name].append((time.perf_counter() - started) * 1000)
        base = float(np.median(timings["sentence-transformers onnx"]))
        for name, values in timings.items():
            print(f"round {round_number}  {name:27} p50 {np.median(values):5.2f} ms  "
                  f"p99 {np.percentile(values, 99):5.2f} ms  {base / np.median(values):.2f}x the library's speed")


if __name__ == "__main__":
    main()
