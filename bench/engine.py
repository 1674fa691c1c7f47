"""The whole engine at scale, through the public commands: `qa ingest` and `qa serve`.

    python -m bench.engine [--sizes 100000 1000000] [--per-file 1 400] [--json FILE]

For each size it writes that many paragraphs of real text (SQuAD-dev and SciFact,
repeated, each copy marked) into files of ``--per-file`` paragraphs, ingests them
with a stand-in encoder (bench/stand_in.py: fast, meaningless vectors) and serves
the index. It prints, each beside its baseline from the same run:

- ingest passages/s, beside the stand-in encoder's own passages/s on the same
  passages, and the ingest process's peak memory; and the same ingest with no
  encoder at all (everything but the encoder), into an index of its own;
- how long `qa serve` takes to answer /api/health, and of that how long it took to
  open the index (from its "ready" line), with the model's export already cached, as
  at every start after the first; and how long after that its first write is answered
  (the passage model loads in the background once the server is ready);
- HTTP p50/p99 of hybrid, dense and lexical searches (200 SQuAD-dev questions, one
  client, question cache off), beside the same on a 1,000-paragraph index: each
  question asked once in every mode right after the first write (the first round, when
  the index's files are not yet in the page cache), then again (the second);
- single-document PUTs (20, each of a new document, timed until the answer, after
  which searches see it), and the server's resident memory before and after them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np

from bench.speed import SQUAD, _free_port, _wait_until_ready, memory_mb, peak_memory_mb
from bench.stand_in import build_static_model

SCIFACT = SQUAD.parent.parent / "scifact"
QUESTIONS = 200
PUTS = 20
SMALL = 1000
TOKEN = "bench-engine"


def texts() -> list[str]:
    """Every paragraph of the two corpora."""
    found = []
    for corpus in (SQUAD, SCIFACT):
        with open(corpus / "corpus.jsonl", encoding="utf-8") as lines:
            found += [" ".join(json.loads(line)["text"].split()) for line in lines]
    return found


def write_corpus(folder: Path, paragraphs: int, per_file: int) -> list[str]:
    """``paragraphs`` marked paragraphs in files of ``per_file``; returns the paragraphs."""
    source = texts()
    written = [f"{source[i % len(source)]} (Copy {i // len(source)}.)" for i in range(paragraphs)]
    folder.mkdir(parents=True)
    for first in range(0, paragraphs, per_file):
        (folder / f"part-{first // per_file:07}.txt").write_text("\n\n".join(written[first : first + per_file]))
    return written


def encoder_rate(model: Path, paragraphs: list[str]) -> float:
    """The stand-in encoder's own passages/s on (a sample of) the paragraphs."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(str(model), device="cpu")
    sample = paragraphs[:50_000]
    started = time.perf_counter()
    encoder.encode(sample, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    return len(sample) / (time.perf_counter() - started)


def ingest(corpus: Path, root: Path, model: Path) -> dict:
    """`qa ingest` as a user runs it: wall time, passages stored and peak memory."""
    return _timed([sys.executable, "-m", "qa", "ingest", str(corpus), "--index", str(root), "--model", str(model),
                   "--device", "cpu"])


def store_alone(corpus: Path, root: Path) -> dict:
    """The same ingest with no encoder at all (bench/stand_in.py's NoEncoder): what
    everything but the encoder costs."""
    return _timed([sys.executable, "-m", "bench.stand_in", str(corpus), str(root)])


def _timed(command: list[str]) -> dict:
    """Wall time, passages stored (as the command reports them) and peak memory of ``command``."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    passages = int(done.stdout.rsplit(" document(s), ", 1)[1].split()[0])
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return {"seconds": seconds, "passages": passages, "passages_per_s": passages / seconds, "peak_mb": peak_kb / 1024}


# Runs a command and prints, last on stderr, its peak resident memory in KiB: the
# runner's only child is the command, so its children's peak is the command's.
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)")


class Server:
    """`qa serve` on a free loopback port, with the write token, no question cache, and
    ``cache`` as the cache folder its model's export is kept in."""

    def __init__(self, root: Path, log: Path, cache: Path) -> None:
        self.port = _free_port()
        env = {**os.environ, "QA_API_TOKEN": TOKEN, "QA_QUESTION_CACHE": "0", "XDG_CACHE_HOME": str(cache)}
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--index", str(root), "--port",
                                         str(self.port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        _wait_until_ready(self.port, self.process, limit=900)
        self.open_s = time.perf_counter() - started
        opened = re.search(r"index opened in ([0-9.]+) s", log.read_text())
        self.index_open_s = float(opened.group(1)) if opened else float("nan")
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def ask(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def rss_mb(self) -> float:
        return memory_mb(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def search_times(server: Server, questions: list[str]) -> dict:
    """p50 and p99 HTTP milliseconds of each mode, over ``questions`` asked once each."""
    figures = {}
    for mode in ("hybrid", "dense", "lexical"):
        took = []
        for question in questions:
            path = "/api/search?" + urllib.parse.urlencode({"q": question, "mode": mode, "k": 5})
            started = time.perf_counter()
            status, _ = server.ask("GET", path)
            took.append((time.perf_counter() - started) * 1000)
            assert status == 200, status
        figures[mode] = {"p50_ms": float(np.percentile(took, 50)), "p99_ms": float(np.percentile(took, 99))}
    return figures


def first_write_s(server: Server) -> float:
    """Seconds until the first write is answered, asked as soon as the server is ready."""
    started = time.perf_counter()
    status, _ = server.ask("PUT", "/api/documents/bench-first", {"title": "First", "text": "The first write."})
    assert status == 201, status
    return time.perf_counter() - started


def export_once(model: Path, cache: Path) -> None:
    """Make and check the model's export, as the first `qa serve` of it would."""
    from qa.embedding import Embedder

    Embedder(str(model), backend="onnx", onnx_cache=cache / "qa" / "onnx")


def put_times(server: Server) -> dict:
    """PUTs of new single-paragraph documents; each must be found by its marker once answered."""
    before, took = server.rss_mb(), []
    for n in range(PUTS):
        marker = f"zqxmarker{n}"
        started = time.perf_counter()
        status, _ = server.ask("PUT", f"/api/documents/bench-put-{n}",
                               {"title": "Put", "text": f"A new note {marker} about the river that rose overnight."})
        took.append((time.perf_counter() - started) * 1000)
        found = server.ask("GET", "/api/search?" + urllib.parse.urlencode({"q": marker, "mode": "lexical"}))[1]
        assert status == 201 and found["results"][0]["doc_id"] == f"bench-put-{n}", (status, found)
    return {"p50_ms": float(np.percentile(took, 50)), "max_ms": max(took), "rss_before_mb": before,
            "rss_after_mb": server.rss_mb(), "peak_mb": peak_memory_mb(server.process.pid)}


def questions() -> list[str]:
    with open(SQUAD.parent / "dev-v1.1.json", encoding="utf-8") as file:
        data = json.load(file)["data"]
    return [q["question"] for article in data for p in article["paragraphs"] for q in p["qas"]][:QUESTIONS]


def measure(work: Path, model: Path, paragraphs: int, per_file: int) -> dict:
    corpus, root = work / f"corpus-{paragraphs}-{per_file}", work / f"index-{paragraphs}-{per_file}"
    written = write_corpus(corpus, paragraphs, per_file)
    figures: dict = {"paragraphs": paragraphs, "per_file": per_file, "encoder_passages_per_s":
                     encoder_rate(model, written)}
    figures["store_alone"] = store_alone(corpus, work / f"alone-{paragraphs}-{per_file}")
    shutil.rmtree(work / f"alone-{paragraphs}-{per_file}")
    figures["ingest"] = ingest(corpus, root, model)
    server = Server(root, work / f"serve-{paragraphs}-{per_file}.log", work / "cache")
    try:
        figures["open_s"], figures["rss_open_mb"] = server.open_s, server.rss_mb()
        figures["index_open_s"] = server.index_open_s
        figures["first_write_s"] = first_write_s(server)
        figures["search_first"] = search_times(server, questions())
        figures["search"] = search_times(server, questions())
        figures["put"] = put_times(server)
    finally:
        server.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="Paragraphs to index.")
    parser.add_argument("--per-file", type=int, nargs="+", default=[1, 400], help="Paragraphs per file.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-engine-") as folder:
        work = Path(folder)
        model = build_static_model(work / "stand-in")
        export_once(model, work / "cache")
        small = measure(work, model, SMALL, 1)
        rows = [measure(work, model, n, per_file) for n in args.sizes for per_file in args.per_file]
    print(format_table(small, rows))
    if args.json:
        args.json.write_text(json.dumps({"small": small, "sizes": rows}, indent=2) + "\n")


def format_table(small: dict, rows: list[dict]) -> str:
    lines = ["paragraphs  per file  passages  no-encoder p/s, peak MB  ingest p/s  encoder p/s  ratio  "
             "ingest peak MB  open s (index)  first write s  hybrid p50/p99 ms (first round)  dense p50  lexical p50  "
             "PUT p50/max ms  RSS open; before/after PUTs, peak MB"]
    for row in [small, *rows]:
        s, f, p, i, a = row["search"], row["search_first"], row["put"], row["ingest"], row["store_alone"]
        lines.append(
            f"{row['paragraphs']:>10,}  {row['per_file']:>8}  {i['passages']:>8,}  "
            f"{a['passages_per_s']:>14,.0f}, {a['peak_mb']:>6,.0f}  {i['passages_per_s']:>10,.0f}  "
            f"{row['encoder_passages_per_s']:>11,.0f}  {i['passages_per_s'] / row['encoder_passages_per_s']:>5.2f}  "
            f"{i['peak_mb']:>14,.0f}  {row['open_s']:>5.1f} ({row['index_open_s']:.2f})  "
            f"{row['first_write_s']:>13.1f}  "
            f"{s['hybrid']['p50_ms']:>7.1f} / {s['hybrid']['p99_ms']:<7.1f} ({f['hybrid']['p50_ms']:>5.1f} / "
            f"{f['hybrid']['p99_ms']:<6.1f})  {s['dense']['p50_ms']:>9.1f}  "
            f"{s['lexical']['p50_ms']:>11.1f}  {p['p50_ms']:>6.0f} / {p['max_ms']:<6.0f}  "
            f"{row['rss_open_mb']:,.0f}; {p['rss_before_mb']:,.0f} / {p['rss_after_mb']:,.0f}, {p['peak_mb']:,.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
