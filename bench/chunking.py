"""Chunking's speed against a document's length: SQuAD-dev paragraphs joined into one
document of 1, 10, 100 and 400 paragraphs. Linear chunking holds its passages/s as
the document grows.

    python -m bench.chunking
"""

from __future__ import annotations

import json
import time

from bench.speed import SQUAD
from qa.chunking import chunk_spans

LENGTHS = (1, 10, 100, 400)


def measure(lengths: tuple[int, ...] = LENGTHS, repeat: int = 3) -> list[dict[str, float]]:
    """Passages/s of ``chunk_spans`` on one document of each number of paragraphs (best of ``repeat``)."""
    with open(SQUAD / "corpus.jsonl", encoding="utf-8") as corpus:
        paragraphs = [json.loads(line)["text"] for line, _ in zip(corpus, range(max(lengths)))]
    figures = []
    for count in lengths:
        text = "\n\n".join(paragraphs[:count])
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            spans = chunk_spans(text)
            best = min(best, time.perf_counter() - started)
        figures.append({"paragraphs": count, "characters": len(text), "passages": len(spans),
                        "passages_per_s": len(spans) / best})
    return figures


def main() -> None:
    print("paragraphs  characters  passages  passages/s")
    for row in measure():
        print(f"{row['paragraphs']:>10}  {row['characters']:>10,}  {row['passages']:>8}  {row['passages_per_s']:>10,.0f}")


if __name__ == "__main__":
    main()
