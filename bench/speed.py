"""Speed figures of qa, each beside a baseline measured in the same run.

- ingest: passages/s of ``store_documents`` (chunk, embed, write, derive) against
  the raw model encoding the same passages;
- search in-process: p50/p99 of each mode against encoding the question alone;
- HTTP on loopback against a real ``qa serve``: p50/p99 with one client against
  encoding the questions alone just before and after it, and requests/s with 4
  and 16 concurrent clients;
- the serving process's peak memory, and the time to open the index.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.beir import load_beir
from qa.chunking import ChunkSettings, chunk_document
from qa.embedded import EmbeddedEngine
from qa.embedding import Embedder
from qa.index import Index
from qa.ingest import index_meta, store_documents
from qa.search import MODES, Searcher, SearchRequest

SQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "squad" / "paragraphs"


@dataclass
class Workload:
    """The documents to index and the questions to ask."""

    name: str
    documents: list
    questions: list[str]


def squad_workload(folder: Path, documents: int, questions: int) -> Workload:
    dataset = load_beir(folder, "test")
    return Workload(f"{folder.name} ({documents} documents)", dataset.documents[:documents],
                    list(dataset.queries.values())[:questions])


def percentiles(milliseconds: list[float]) -> dict[str, float]:
    values = np.array(milliseconds)
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def measure_ingest(workload: Workload, embedder: Embedder, root: Path) -> dict:
    """Ingest throughput against the raw encoder on the same passages, timed before and
    after the ingest so that a drift in the machine's speed weighs on both alike."""
    passages = [p.text for d in workload.documents for p in chunk_document(d, ChunkSettings())]
    raw_before = _seconds(lambda: embedder.encode(passages))
    index = Index.open_for_writing(root, index_meta(embedder, ChunkSettings()))

    def ingest() -> None:
        store_documents(EmbeddedEngine(index), embedder, workload.documents)
        index.save()

    ingest_seconds = _seconds(ingest)
    index.close()
    raw = len(passages) / ((raw_before + _seconds(lambda: embedder.encode(passages))) / 2)
    rate = len(passages) / ingest_seconds
    return {"passages": len(passages), "raw_encode_per_s": raw, "ingest_per_s": rate, "ratio": rate / raw}


def _seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure_search(workload: Workload, root: Path, backend: str) -> dict:
    """Each mode's latency, and encoding the question alone, question by question in turn."""
    started = time.perf_counter()
    searcher = Searcher.open(EmbeddedEngine.open(root), backend=backend, cache_size=0)
    opened = time.perf_counter() - started
    searcher.warm_up()
    timings: dict[str, list[float]] = {"encode": [], **{mode: [] for mode in MODES}}
    for question in workload.questions:
        timings["encode"].append(_milliseconds(lambda: searcher.embedder.encode_questions([question])))
        for mode in MODES:
            request = SearchRequest(question, 5, mode)
            timings[mode].append(_milliseconds(lambda: searcher.search(request)))
    figures = {name: percentiles(values) for name, values in timings.items()}
    encode = figures["encode"]["p50_ms"]
    for mode in MODES:
        figures[mode]["ratio_to_encode"] = figures[mode]["p50_ms"] / encode
    searcher.engine.index.close()
    return {"open_index_and_model_s": opened, "backend": searcher.embedder.backend, **figures}


def _milliseconds(call) -> float:
    return _seconds(call) * 1000


def measure_http(workload: Workload, root: Path, embedder: Embedder, seconds: float) -> dict:
    """A real ``qa serve``: one client's latency, then 4 and 16 clients' throughput.

    One client's baseline is encoding the questions alone with ``embedder`` (the
    server's backend), timed in this process just before and just after that client's
    run while the server idles, so that a drift in the machine's speed weighs on both.
    """
    backend = embedder.backend
    port = _free_port()
    # No question cache: repeated questions would measure the cache, not the service.
    environment = {**os.environ, "QA_BACKEND": backend, "QA_QUESTION_CACHE": "0"}
    server = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--index", str(root), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    try:
        _wait_until_ready(port, server)
        paths = [f"/api/search?{urllib.parse.urlencode({'q': q, 'k': 5})}" for q in workload.questions]
        load = _wrk if shutil.which("wrk") else _throughput
        figures = {"load_client": "wrk" if load is _wrk else "python threads"}
        encode_before = _encode_p50(embedder, workload.questions)
        if load is _throughput:  # one client: every question once, in order
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            single = [_milliseconds(lambda: _get(connection, path)) for path in paths]
            figures["one_client"] = {**percentiles(single), "requests_per_s": 1000 / statistics.mean(single)}
        else:
            figures["one_client"] = load(port, paths, 1, seconds)
        figures["one_client"]["encode_p50_ms"] = (encode_before + _encode_p50(embedder, workload.questions)) / 2
        for clients in (4, 16):
            figures[f"{clients}_clients"] = load(port, paths, clients, seconds)
        figures["peak_memory_mb"] = peak_memory_mb(server.pid)
        return figures
    finally:
        server.terminate()
        server.wait(timeout=30)


def _encode_p50(embedder: Embedder, questions: list[str]) -> float:
    return percentiles([_milliseconds(lambda: embedder.encode_questions([q])) for q in questions])["p50_ms"]


def _throughput(port: int, paths: list[str], clients: int, seconds: float) -> dict:
    done, errors, timings = [0], [0], []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = offset
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            started = time.perf_counter()
            try:
                ok = _get(connection, path) == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                done[0] += ok
                errors[0] += not ok
                timings.append((time.perf_counter() - started) * 1000)
            i += clients

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"requests_per_s": done[0] / elapsed, "errors": errors[0], **percentiles(timings)}


_WRK_SCRIPT = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def _wrk(port: int, paths: list[str], clients: int, seconds: float) -> dict:
    """``clients`` keep-alive connections asking the questions in turn, driven by wrk (C,
    so the load itself takes little of the CPU the server needs)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    try:
        output = subprocess.run(
            ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", script.name,
             f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    errors = sum(int(n) for n in re.findall(r"(?:responses|connect|read|write|timeout):? (\d+)", output))
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "errors": errors,
        "p50_ms": _wrk_milliseconds(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1)),
        "p99_ms": _wrk_milliseconds(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1)),
    }


def _wrk_milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def _get(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def _wait_until_ready(port: int, server: subprocess.Popen, limit: float = 180) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"qa serve exited with {server.returncode}")
        try:
            if _get(http.client.HTTPConnection("127.0.0.1", port, timeout=5), "/api/health") == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("qa serve did not become ready")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A process's memory figure from /proc (VmRSS, resident now, by default), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory_mb(pid: int | str = "self") -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    return memory_mb(pid, "VmHWM")


def measure_txtai(workload: Workload, python: str, work: Path) -> dict:
    """txtai (bench/txtai_side.py, run by ``python`` from its own environment) on the same
    passages and questions."""
    passages = [p.text for d in workload.documents for p in chunk_document(d, ChunkSettings())]
    given, result = work / "txtai-input.json", work / "txtai-figures.json"
    given.write_text(json.dumps({"passages": passages, "questions": workload.questions}))
    script = Path(__file__).with_name("txtai_side.py")
    subprocess.run([python, str(script), str(given), str(result)], check=True)
    return json.loads(result.read_text())


def run(workload: Workload, backend: str, seconds: float, txtai_python: str | None = None) -> dict:
    """Every figure for ``workload``, measured in this one run."""
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        embedder = Embedder(backend=backend, cache_size=0)
        root = work / "index"
        figures = {"workload": workload.name, "questions": len(workload.questions), "cpus": os.cpu_count()}
        figures["ingest"] = measure_ingest(workload, embedder, root)
        figures["search"] = measure_search(workload, root, backend)
        figures["http"] = measure_http(workload, root, embedder, seconds)
        del embedder
        if txtai_python:
            figures["txtai"] = measure_txtai(workload, txtai_python, work)
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


def format_table(figures: dict) -> str:
    ingest, search, served = figures["ingest"], figures["search"], figures["http"]
    encode = search["encode"]["p50_ms"]
    rows = [
        ("ingest", f"{ingest['ingest_per_s']:.1f} passages/s",
         f"raw encode {ingest['raw_encode_per_s']:.1f}/s", f"{ingest['ratio']:.2f}x"),
        (f"question encode ({search['backend']})", f"p50 {encode:.1f} ms", "", ""),
    ]
    for mode in MODES:
        m = search[mode]
        rows.append((f"search {mode}", f"p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms",
                     f"encode p50 {encode:.1f} ms", f"{m['ratio_to_encode']:.2f}x"))
    one = served["one_client"]
    around = one["encode_p50_ms"]
    rows.append(("HTTP, 1 client", f"p50 {one['p50_ms']:.1f} ms, p99 {one['p99_ms']:.1f} ms",
                 f"encode p50 {around:.1f} ms, around it", f"+{one['p50_ms'] - around:.1f} ms"))
    rows.append(("", "", f"encode p50 {encode:.1f} ms, in-process", f"+{one['p50_ms'] - encode:.1f} ms"))
    for clients in (4, 16):
        c = served[f"{clients}_clients"]
        rows.append((f"HTTP, {clients} clients", f"{c['requests_per_s']:.1f} req/s, {c['errors']} errors",
                     f"1 client {one['requests_per_s']:.1f} req/s",
                     f"{c['requests_per_s'] / one['requests_per_s']:.2f}x"))
    if "txtai" in figures:
        rows += _txtai_rows(figures["txtai"], ingest, search)
    rows.append(("serving process", f"peak {served['peak_memory_mb']:.0f} MiB", "", ""))
    rows.append(("open index + model", f"{search['open_index_and_model_s']:.2f} s", "", ""))
    header = ("figure", "measured", "baseline (same run)", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [f"{figures['workload']}, {figures['questions']} questions, {figures['cpus']} CPUs, "
             f"HTTP load from {served['load_client']}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def _txtai_rows(txtai: dict, ingest: dict, search: dict) -> list[tuple[str, str, str, str]]:
    """txtai's figures, each ratio qa's against txtai's (above 1: qa is faster)."""
    rows = [(f"txtai {txtai['txtai']} ingest", f"{txtai['dense_ingest_per_s']:.1f} passages/s",
             f"raw encode {txtai['raw_per_s']:.1f}/s", f"{txtai['ingest_ratio']:.2f}x")]
    for mode in ("dense", "hybrid"):
        theirs = txtai[mode]["p50_ms"]
        rows.append((f"txtai {mode}", f"p50 {theirs:.1f} ms, p99 {txtai[mode]['p99_ms']:.1f} ms",
                     f"qa {mode} p50 {search[mode]['p50_ms']:.1f} ms",
                     f"qa {theirs / search[mode]['p50_ms']:.2f}x faster"))
    return rows


def write_json(figures: dict, path: Path) -> None:
    path.write_text(json.dumps(figures, indent=2) + "\n")
