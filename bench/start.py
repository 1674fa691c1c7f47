"""How soon `qa serve` answers, and what it holds then: read-only, writable, and with
questions through PyTorch as the baseline.

    python -m bench.start [--rounds 3]

Ingests seeds/ with the bundled model into a temporary index, makes the model's
export once (as the first start does), then starts `qa serve` ``--rounds`` times in
each of three ways, with that export cached as at every start after the first:

- read-only (no QA_API_TOKEN): questions through the export, no PyTorch loaded;
- writable: the same, then the passage model loading in the background;
- baseline, QA_BACKEND=torch: PyTorch and sentence-transformers load before it is ready.

For each it prints the median seconds until /api/health answers and the server's
resident memory then; for the writable one, also the seconds until a write asked at
once is answered, and its memory after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.speed import _free_port, _wait_until_ready, memory_mb

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
TOKEN = "bench-start"
WAYS = {"read-only": {}, "writable": {"QA_API_TOKEN": TOKEN}, "torch (baseline)": {"QA_BACKEND": "torch"}}


def start_once(root: Path, cache: Path, extra: dict[str, str]) -> dict:
    """One start: seconds until ready and memory then; with the write token, the first
    write's (of a new text, so that its passage must be encoded)."""
    port = _free_port()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), **extra}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--index", str(root), "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_ready(port, process)
        figures = {"ready_s": time.perf_counter() - started, "rss_mb": memory_mb(process.pid)}
        if "QA_API_TOKEN" in extra:
            asked = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            body = json.dumps({"title": "t", "text": f"A write at {time.time()}."})
            connection.request("PUT", "/api/documents/bench-start", body,
                               {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            assert connection.getresponse().status in (200, 201)
            figures["first_write_s"] = time.perf_counter() - asked
            figures["rss_after_write_mb"] = memory_mb(process.pid)
        return figures
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.start", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Starts of each kind; medians are printed.")
    args = parser.parse_args()
    from qa.embedding import Embedder
    from qa.engines import EngineChoice
    from qa.ingest import ingest

    with tempfile.TemporaryDirectory(prefix="qa-start-") as folder:
        root, cache = Path(folder) / "index", Path(folder) / "cache"
        embedder = Embedder(backend="onnx", onnx_cache=cache / "qa" / "onnx")  # the first start's export
        ingest([SEEDS], EngineChoice(index=root), embedder)
        print("start               ready s  RSS MB  first write s  RSS after write MB")
        for way, extra in WAYS.items():
            runs = [start_once(root, cache, extra) for _ in range(args.rounds)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            write = (f"{median['first_write_s']:>13.1f}  {median['rss_after_write_mb']:>18,.0f}"
                     if "first_write_s" in median else "")
            print(f"{way:<18}  {median['ready_s']:>7.2f}  {median['rss_mb']:>6,.0f}  {write}")


if __name__ == "__main__":
    main()
