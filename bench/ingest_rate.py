"""Ingest beside its encoder in one process, on one-paragraph files: a quick ratio,
and the time to open the index it made.

    python -m bench.ingest_rate [--paragraphs 20000]

Writes the paragraphs (bench/engine.py's marked SQuAD-dev and SciFact text) as
files, encodes their passages with the stand-in encoder (bench/stand_in.py), then
ingests the files with the same encoder object into a fresh index, and prints both
rates and their ratio: what ingest costs beside the encoder, in a minute rather
than bench/engine.py's hour. Then it opens the index three times (the store and
its saved search indexes, no model) and prints the median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.engine import write_corpus
from bench.stand_in import build_static_model
from qa.chunking import chunk_document
from qa.documents import Document
from qa.embedding import Embedder
from qa.engines import EngineChoice
from qa.index import Index
from qa.ingest import ingest


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_rate", description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=20_000, help="Files of one paragraph. [default: 20000]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        write_corpus(base / "corpus", args.paragraphs, 1)
        embedder = Embedder(str(build_static_model(base / "model")), "cpu")
        files = sorted((base / "corpus").iterdir())
        passages = [p.text for f in files for p in chunk_document(Document(f.name, "", "", f.read_text()))]
        embedder.encode(passages[:2000])  # warm
        started = time.perf_counter()
        embedder.encode(passages)
        encoder = len(passages) / (time.perf_counter() - started)
        started = time.perf_counter()
        report = ingest([base / "corpus"], EngineChoice(index=base / "index"), embedder)
        rate = report.passages / (time.perf_counter() - started)
        opened = []
        for _ in range(3):
            started = time.perf_counter()
            Index.open(base / "index").close()
            opened.append(time.perf_counter() - started)
    print(f"{report.passages:,} passages: encoder alone {encoder:,.0f} passages/s, ingest {rate:,.0f} passages/s, "
          f"{rate / encoder:.2f}x; open {1000 * statistics.median(opened):.0f} ms")


if __name__ == "__main__":
    main()
