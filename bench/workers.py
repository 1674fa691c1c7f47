"""Memory per worker of `qa serve --workers N`, and requests/s beside it.

    python -m bench.workers [--index DIR] [--workers 1 2 4] [--documents 1000] [--seconds 10]

Without --index it indexes the first 1,000 SQuAD-dev paragraphs first, as
`python -m bench` does. Each worker's memory is read from /proc after every
question has been asked once by 4 concurrent clients: RSS, PSS (shared pages
split between the processes sharing them) and USS (pages only it holds).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.speed import SQUAD, _free_port, _get, _wait_until_ready, squad_workload
from qa.chunking import ChunkSettings
from qa.embedded import EmbeddedEngine
from qa.embedding import Embedder
from qa.index import Index
from qa.ingest import index_meta, store_documents


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of one process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def serving_processes(server: subprocess.Popen, workers: int) -> list[int]:
    """The processes that answer: the server itself, or gunicorn's workers."""
    if workers == 1:
        return [server.pid]
    found = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def ask_all(port: int, questions: list[str], clients: int) -> float:
    """Ask every question once with ``clients`` concurrent clients; requests/s."""
    paths = [f"/api/search?{urllib.parse.urlencode({'q': q, 'k': 5})}" for q in questions]

    def ask(path: str) -> int:
        return _get(http.client.HTTPConnection("127.0.0.1", port, timeout=60), path)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(ask, paths))
    if set(statuses) != {200}:
        raise RuntimeError(f"answers other than 200: {sorted(set(statuses))}")
    return len(paths) / (time.perf_counter() - started)


def measure(root: Path, workers: int, questions: list[str], log: Path) -> dict:
    port = _free_port()
    environment = {**os.environ, "QA_QUESTION_CACHE": "0"}
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "qa", "serve", "--index", str(root), "--port", str(port),
             "--workers", str(workers)], stdout=output, stderr=subprocess.STDOUT, env=environment)
    try:
        _wait_until_ready(port, server)
        deadline = time.monotonic() + 180
        while workers > 1 and log.read_text().count(" ready: model and index loaded") < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not all load")
            time.sleep(0.2)
        per_second = ask_all(port, questions, clients=4)
        processes = [memory_mb(pid) for pid in serving_processes(server, workers)]
        total = {kind: sum(p[kind] for p in processes) for kind in ("rss", "pss", "uss")}
        return {"workers": workers, "requests_per_s": per_second, "per_worker": processes, "total": total}
    finally:
        server.terminate()
        server.wait(timeout=60)


def build_index(root: Path, documents: int) -> None:
    workload = squad_workload(SQUAD, documents, 0)
    embedder = Embedder(cache_size=0)
    index = Index.open_for_writing(root, index_meta(embedder, ChunkSettings()))
    store_documents(EmbeddedEngine(index), embedder, workload.documents)
    index.save()
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="An index to serve. [default: build one of SQuAD-dev]")
    parser.add_argument("--documents", type=int, default=1000, help="Paragraphs to index without --index.")
    parser.add_argument("--questions", type=int, default=200, help="Questions asked of each setup.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-workers-"))
    root = args.index or work / "index"
    if args.index is None:
        build_index(root, args.documents)
    questions = squad_workload(SQUAD, 0, args.questions).questions
    results = [measure(root, n, questions, work / f"serve-{n}.log") for n in args.workers]
    print(f"{'workers':>7} {'server':>8} {'req/s':>7} {'RSS/worker':>11} {'PSS/worker':>11} {'USS/worker':>11} "
          f"{'PSS total':>10}")
    for result in results:
        n, processes = result["workers"], result["per_worker"]
        mean = {kind: sum(p[kind] for p in processes) / len(processes) for kind in ("rss", "pss", "uss")}
        print(f"{n:>7} {'waitress' if n == 1 else 'gunicorn':>8} {result['requests_per_s']:>7.1f} "
              f"{mean['rss']:>8.0f} MiB {mean['pss']:>8.0f} MiB {mean['uss']:>8.0f} MiB "
              f"{result['total']['pss']:>6.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
