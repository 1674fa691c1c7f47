"""What rewriting the largest segment of an index costs, as a merge after deletions does.

    python -m bench.merge INDEX [--deleted 0.3]

Opens the largest segment the newest snapshot of the embedded index at INDEX names
(as `qa ingest` built it, e.g. through bench/stand_in.py), marks a random share of
its passages deleted (30% by default: the share at which a segment is rewritten,
``DELETED_SHARE``), and merges it into a segment of the rest in a scratch folder, as
a server does in the background. Prints the time and the process's resident memory
before and after, and its peak; the index itself is not changed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.speed import memory_mb, peak_memory_mb
from qa.index import DERIVED, SEGMENTS, SNAPSHOT
from qa.lexical import LexicalSettings
from qa.segments import Segment, SegmentView, merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--deleted", type=float, default=0.3)
    args = parser.parse_args()
    snapshot = max((args.index / DERIVED).glob("gen-*"), key=lambda path: path.stat().st_mtime)
    description = json.loads((snapshot / SNAPSHOT).read_text())
    settings = LexicalSettings(**description["lexical"])
    folder = args.index / DERIVED / SEGMENTS
    segment = max((Segment.load(folder, name, settings) for name in description["segments"]), key=len)
    deleted = np.random.default_rng(0).random(len(segment)) < args.deleted
    print(f"segment {segment.name}: {len(segment):,} passages, {segment.vectors.kind}; "
          f"{int(deleted.sum()):,} deleted; RSS {memory_mb():,.0f} MB")
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        result = merged([SegmentView(segment, deleted)], settings, Path(scratch))
        seconds = time.perf_counter() - started
        print(f"merged into {len(result):,} passages, {result.vectors.kind}, in {seconds:.1f} s; "
              f"RSS {memory_mb():,.0f} MB after, peak {peak_memory_mb():,.0f} MB")


if __name__ == "__main__":
    main()
