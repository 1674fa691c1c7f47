"""`qa ingest --ray`: files read and chunked in Ray tasks, passages embedded by a pool of
Ray actors, and written by this process, the one writer, in the same batches as a
plain ingest. Vectors are the ones a plain ingest makes: the same model on the same
kind of device.

Each actor loads the model once. Ray gives an actor as many threads as CPUs it
reserves (one, by default), which would leave PyTorch one thread on a machine with
more: an actor here reserves at most one CPU, and less when the actors would
otherwise take every CPU (read tasks would then never start), and runs PyTorch on its
share of the machine's cores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import ChunkSettings, chunk_document
from qa.database import Revision
from qa.embedding import Embedder
from qa.engines import EngineChoice, open_engine_for_writing
from qa.errors import InvalidInput, UnreadableFile
from qa.index import settings_differ
from qa.ingest import BATCH_PASSAGES, IngestReport, files_to_read, index_meta, write_batches
from qa.readers import read_document

# Documents an actor embeds at a time: enough passages that sorting them by length
# (as sentence-transformers does within one call) saves as much padding as a plain
# ingest's batches of BATCH_PASSAGES.
ACTOR_DOCUMENTS = 256
READ_CPUS = 0.5


@dataclass(frozen=True)
class RayPlan:
    """Where and how wide: ``address`` None starts a local Ray; ``workers`` None is one
    actor per GPU, else one per ``cores_per_worker`` CPUs (at least one)."""

    address: str | None = None
    workers: int | None = None
    cores_per_worker: int = 4


def ingest_on_ray(paths: Iterable[Path], choice: EngineChoice, load_embedder: Callable[[], Embedder], plan: RayPlan,
                  settings: ChunkSettings = ChunkSettings(), replace: bool = False, progress: bool = False,
                  on_skip: Callable[[str], None] | None = None) -> IngestReport:
    """``qa.ingest.ingest`` with reading, chunking and embedding spread over Ray. This
    process loads the model (``load_embedder``: for the index's settings) while Ray starts."""
    import ray

    started = time.perf_counter()
    report = IngestReport(index=choice.describe())
    say = _teller(report, on_skip)
    files = _files([Path(p) for p in paths], say)
    if not files:
        raise InvalidInput(f"no readable documents to ingest ({len(report.skipped)} skipped); the index is unchanged",
                           code="nothing_to_ingest")
    loading = ThreadPoolExecutor(1, thread_name_prefix="model").submit(load_embedder)
    started_ray = not ray.is_initialized()
    _start(ray, plan, progress)
    try:
        embedder = loading.result()
        meta = index_meta(embedder, settings)
        engine = open_engine_for_writing(choice, meta, replace, bulk=True)
        try:
            rebuild = bool(settings_differ(engine.meta(), meta))
            stored = {} if rebuild else engine.checksums([doc_id for _, doc_id in files])
            batches = _revisions(_pipeline(ray, files, stored, embedder, settings, plan), report, say)
            if rebuild:
                state = engine.rebuild(meta, batches)
            else:
                write_batches(engine, batches, report)
                if replace:
                    engine.write(keep_only={doc_id for _, doc_id in files})
                state = engine.refresh()
            engine.compact()
            engine.save()
        finally:
            engine.close()
    finally:
        if started_ray:
            ray.shutdown()
    report.documents, report.passages = state.documents, state.passages
    report.seconds = time.perf_counter() - started
    return report


def _teller(report: IngestReport, on_skip: Callable[[str], None] | None) -> Callable[[str], None]:
    def say(message: str) -> None:
        report.skipped.append(message)
        if on_skip is not None:
            on_skip(message)

    return say


def _files(paths: list[Path], say: Callable[[str], None]) -> list[tuple[str, str]]:
    """(file, id) of each file to read, as a plain ingest finds them, each id once; the rest are told."""
    return [(str(Path(found.path).resolve()), found.doc_id) for found in files_to_read(paths, say)]


def _start(ray: Any, plan: RayPlan, progress: bool) -> None:
    """Join the cluster at ``plan.address``, or start a local one, quietly."""
    from ray.data import DataContext

    if not ray.is_initialized():
        ray.init(address=plan.address, logging_level=logging.WARNING, log_to_driver=False,
                 include_dashboard=False, configure_logging=True)
    context = DataContext.get_current()
    context.enable_progress_bars = progress
    context.enable_operator_progress_bars = progress
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _pipeline(ray: Any, files: list[tuple[str, str]], stored: dict[str, str], embedder: Embedder,
              settings: ChunkSettings, plan: RayPlan) -> Iterator[dict[str, Any]]:
    """One row per file, as it is done: read and chunked, or why not; embedded when changed."""
    import ray.data
    from ray.data import ActorPoolStrategy

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    workers = plan.workers or gpus or max(1, cpus // plan.cores_per_worker)
    device = "cuda" if gpus else "cpu"
    dataset = ray.data.from_items([{"file": f, "doc_id": i, "stored": stored.get(i, "")} for f, i in files])
    # Reads ask for less than a CPU: Ray then keeps them in tasks of their own rather than
    # fusing them into the actors, and they still find room beside them.
    prepared = dataset.map(_read, fn_kwargs={"settings": settings}, num_cpus=READ_CPUS)
    threads = max(1, cpus // workers)
    embedded = prepared.map_batches(
        _Encoder, fn_constructor_kwargs={"model": embedder.name, "device": device, "threads": threads},
        batch_size=ACTOR_DOCUMENTS, batch_format="pandas", compute=ActorPoolStrategy(size=workers),
        num_cpus=min(1.0, (cpus - READ_CPUS) / workers), num_gpus=1 if gpus else 0,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}},  # before PyTorch starts its pool
    )
    yield from embedded.iter_rows()


def _read(row: dict[str, Any], settings: ChunkSettings) -> dict[str, Any]:
    """A Ray task's work on one file: read it, compare it with its stored checksum, chunk it."""
    done = {"doc_id": row["doc_id"], "why": "", "document": None, "passages": None}
    try:
        document = read_document(Path(row["file"]), row["doc_id"])
    except UnreadableFile as error:
        return {**done, "state": "skipped", "why": error.message}
    if row["stored"] == document.checksum:
        return {**done, "state": "unchanged"}
    return {**done, "state": "changed", "document": document, "passages": chunk_document(document, settings)}


class _Encoder:
    """A Ray actor holding the model: embeds the passages of each changed document."""

    def __init__(self, model: str, device: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.embedder = Embedder(model, device)

    def __call__(self, batch: Any) -> Any:
        """``batch`` (a pandas frame of rows from ``_read``) with each row's vectors as bytes."""
        changed = [passages if passages is not None else [] for passages in batch["passages"]]
        vectors = self.embedder.encode([p.text for passages in changed for p in passages])
        ends = np.cumsum([len(passages) for passages in changed])
        batch["vectors"] = [part.tobytes() for part in np.split(vectors, ends[:-1])]
        return batch


def _revisions(rows: Iterable[dict[str, Any]], report: IngestReport, say: Callable[[str], None]
               ) -> Iterator[list[Revision]]:
    """The changed documents as revisions, about ``BATCH_PASSAGES`` passages a batch; the
    others noted in ``report``."""
    batch: list[Revision] = []
    size = 0
    for row in rows:
        if row["state"] == "skipped":
            say(row["why"])
        elif row["state"] == "unchanged":
            report.unchanged += 1
        else:
            vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(row["passages"]), -1)
            batch.append(Revision(row["document"], list(row["passages"]), vectors))
            size += len(row["passages"])
            if size >= BATCH_PASSAGES:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch
