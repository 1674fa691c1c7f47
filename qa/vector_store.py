"""Inner-product search over normalised vectors with FAISS, exact or approximate by size.

The only module that imports faiss. Position ``i`` of the store is position ``i``
of the segment that holds it (FAISS labels are positions).

- Up to ``EXACT_UP_TO`` vectors: a flat index, exact.
- Above: an inverted-file index (about ``LISTS_PER_ROOT``·√n lists) holding each
  vector in half precision: half the bytes a search reads, scores within 1e-4 of
  exact ones. Its ``nprobe`` (lists searched per question) is the smallest that finds
  ``TARGET_RECALL`` of the exact neighbours of sample questions (down to the 10th
  distinct one), measured on the data itself when it is built. Data without clusters
  to exploit (needing over ``MAX_PROBED_SHARE`` of the lists) stays exact.

Saved indexes are opened with mmap, so the vectors stay in the page cache, shared by
every process serving the same files, instead of each process's own memory.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import faiss
import numpy as np

from qa.memory import release_freed_memory

# FAISS's OpenMP threads wake up against torch's right after a question is encoded:
# on 2 cores, hybrid p50 on SciFact (qa eval) fell from 30 ms to 19 ms without them.
# Concurrency comes from the server's request threads instead. Building uses every core.
faiss.omp_set_num_threads(1)

EXACT_UP_TO = 20_000
# Lists of an IVF index per square root of its size. More lists cost more to train
# (with the square of their number) and to assign each vector to, and leave fewer
# vectors to read in each list probed. At a million passages 2·√n built in 21 s
# against 62 s for 4·√n (a third of a bulk ingest's time), and searched in 0.25 ms p50
# against 0.20 ms, recall@10 0.63 against 0.57 (python -m bench.ivf_lists --per-root 4 3 2):
# a search far under its 3 ms goal, an ingest short of its own.
LISTS_PER_ROOT = 2
TARGET_RECALL = 0.97
# Neighbours scoring within this of the last exact one wanted count as found: half
# precision moves a score by about 3e-5.
TIED_WITHIN = 1e-4
# Stored copies of one vector score within this of each other (float32 rounding).
COPY_WITHIN = 1e-6
CALIBRATION_QUERIES = 200
# Calibration looks this deep for each question's 10 nearest distinct scores: a question
# drawn near a passage stored many times over finds its copies at once (one list), and
# only the neighbours past them tell how many lists a new question needs.
CALIBRATION_DEPTH = 80
NEAREST_ROWS = 1 << 16
TRAINING_PER_LIST = 39  # FAISS's own minimum for k-means
# FAISS's default for an IVF index. At a million passages 5 trained in 3 to 14 s less
# of about 55, at the same nprobe and recall, but searched 12 to 17% slower in both
# runs (python -m bench.ivf_lists --iterations 10 5).
KMEANS_ITERATIONS = 10
# An IVF index that must search more than this share of its lists to reach the target
# is slower than exact search: such data (uniformly spread) is searched exactly.
MAX_PROBED_SHARE = 0.25
IVF_FOURCC = b"Iw"  # how FAISS's files of inverted-file indexes begin (IwFl, IwSq, ...)
# An exact index's rows wanted are read as the run from the first to the last of them
# unless the run holds more than this many times as many rows.
SPAN_READ = 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """The positions a search may return, as FAISS reads them: a bitmap, and how many it allows."""

    bitmap: np.ndarray
    count: int

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> Selection:
        return cls(np.packbits(mask, bitorder="little"), int(np.count_nonzero(mask)))

    @classmethod
    def of_positions(cls, positions: np.ndarray, size: int) -> Selection:
        mask = np.zeros(size, dtype=bool)
        mask[positions] = True
        return cls(np.packbits(mask, bitorder="little"), len(positions))


@dataclass(frozen=True)
class VectorSource:
    """``size`` vectors that ``read`` returns (as one array) whenever asked: what an
    index is built from, read part by part so that no copy of them all is made."""

    size: int
    read: Callable[[], np.ndarray]

    @classmethod
    def of(cls, vectors: np.ndarray) -> VectorSource:
        return cls(len(vectors), lambda: vectors)


class VectorStore:
    """A FAISS index whose labels are segment positions."""

    def __init__(self, index: faiss.Index) -> None:
        self._index = index
        concrete = faiss.downcast_index(index)
        self._ivf: faiss.IndexIVF | None = concrete if isinstance(concrete, faiss.IndexIVF) else None
        # Where a flat index keeps its vectors (mapped or not), for scoring them all at once.
        self._stored = cast(Any, concrete).get_xb() if self._ivf is None else None  # SWIG: not in faiss's stubs
        self._size, self._dimension = int(index.ntotal), int(index.d)

    @classmethod
    def build(cls, vectors: np.ndarray | list[VectorSource], dimension: int | None = None,
              exact: bool = False) -> VectorStore:
        """Exact up to ``EXACT_UP_TO`` vectors (or whenever ``exact``), a calibrated IVF
        index above where it pays.

        ``vectors`` may come as sources read in turn (a merge's segments), each only
        while the index takes it in."""
        if isinstance(vectors, np.ndarray):
            sources, dimension = [VectorSource.of(vectors)], vectors.shape[1]
        elif dimension is None:
            raise ValueError("vectors given as sources need their dimension")
        else:
            sources = vectors
        if not exact and sum(source.size for source in sources) > EXACT_UP_TO:
            ivf = _build_ivf(sources, dimension)
            if ivf.nprobe <= MAX_PROBED_SHARE * ivf.nlist:
                return cls(ivf)
            log.info("IVF would search %d of %d lists for recall %.2f: searching exactly instead",
                     ivf.nprobe, ivf.nlist, TARGET_RECALL)
            del ivf
        index = faiss.IndexFlatIP(dimension)
        for source in sources:
            index.add(_float32(source.read()))
        return cls(index)

    @classmethod
    def load(cls, path: Path, mapped: bool = True) -> VectorStore:
        """Open a saved index with its vectors memory-mapped (or read into memory)."""
        if not mapped:
            return cls(faiss.read_index(str(path)))
        with open(path, "rb") as file:
            ivf = file.read(2) == IVF_FOURCC  # FAISS maps IVF lists and flat codes by different flags
        flags = faiss.IO_FLAG_MMAP if ivf else faiss.IO_FLAG_MMAP_IFC
        return cls(faiss.read_index(str(path), flags | faiss.IO_FLAG_READ_ONLY))

    @classmethod
    def write(cls, sources: list[VectorSource], dimension: int, path: Path) -> None:
        """Save to ``path`` the index ``build`` makes of ``sources``, without holding it:
        an IVF index's lists are written in place as the sources are read, so what is
        in memory at once is one source's vectors, not the index (768 MB of codes at
        a million vectors of 384 dimensions)."""
        if sum(source.size for source in sources) > EXACT_UP_TO:
            ivf = _write_ivf(sources, dimension, path)
            if ivf.nprobe <= MAX_PROBED_SHARE * ivf.nlist:
                return
            log.info("IVF would search %d of %d lists for recall %.2f: searching exactly instead",
                     ivf.nprobe, ivf.nlist, TARGET_RECALL)
            del ivf  # its map of the file, which is written afresh
            path.unlink()
        with FlatFile(path, dimension) as flat:
            for source in sources:
                flat.add(source.read())

    @classmethod
    def read_saved(cls, path: Path, positions: np.ndarray) -> np.ndarray:
        """The vectors at sorted ``positions`` of the index saved at ``path``, as float32,
        nothing of it kept in memory after. An exact index's rows are read from the file
        where they lie close together (a merge reads a million of them three times: read,
        they took a tenth of the time of a map per part, which faults in each page); an
        IVF index's lists are mapped, and only the codes wanted decoded."""
        with open(path, "rb") as file:
            head = file.read(16)
        if head[:2] == IVF_FOURCC or not len(positions):
            return cls.load(path).vectors(positions)
        dimension = int(np.frombuffer(head, "<i4", 1, 4)[0])
        first, last = int(positions[0]), int(positions[-1]) + 1
        if last - first > SPAN_READ * len(positions):  # few left among many deleted: only their pages
            return cls.load(path).vectors(positions)
        rows = np.empty((last - first, dimension), np.float32)
        _read_into(path, rows, len(_flat_header(dimension, 0)) + rows.itemsize * dimension * first)
        return rows if last - first == len(positions) else rows[positions - first]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def __len__(self) -> int:
        return self._size

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def kind(self) -> str:
        """"exact" or "ivf"."""
        return "ivf" if self._ivf is not None else "exact"

    @property
    def nprobe(self) -> int | None:
        return int(self._ivf.nprobe) if self._ivf is not None else None

    @property
    def lists(self) -> int | None:
        return int(self._ivf.nlist) if self._ivf is not None else None

    def vectors(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Every stored vector in position order (or those at sorted ``positions``), as float32."""
        if self._ivf is None:
            stored = faiss.rev_swig_ptr(self._stored, len(self) * self.dimension).reshape(-1, self.dimension)
            return stored.copy() if positions is None else stored[positions]
        wanted = np.arange(len(self)) if positions is None else np.asarray(positions, np.int64)
        slot = np.full(len(self), -1, np.int64)  # where each wanted position goes in the result
        slot[wanted] = np.arange(len(wanted))
        out = np.zeros((len(wanted), self.dimension), np.float32)
        for ids, codes in _lists(self._ivf):
            at = slot[ids]
            kept = at >= 0
            if kept.any():  # only the codes wanted are read and decoded
                out[at[kept]] = _decoded(codes[kept], self.dimension)
        return out

    def search(self, queries: np.ndarray, k: int, allowed: Selection | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, positions) per query row; positions are -1 where fewer exist.

        With ``allowed``, only those positions are searched: FAISS skips the others
        while it scans, so a filter or a deleted passage never takes a place in the top
        ``k``. An IVF index then probes as many more lists as the selection is narrow
        (all of them for a rare filter), so the allowed neighbours it finds are as many
        as without one."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if allowed is None:
            return self._index.search(queries, max(1, min(k, len(self))))
        swig: Any = faiss  # the keyword constructors are not in faiss's stubs
        selector = swig.IDSelectorBitmap(len(self), faiss.swig_ptr(allowed.bitmap))
        if self._ivf is not None:
            nprobe = min(self._ivf.nlist, int(np.ceil(self._ivf.nprobe * len(self) / max(1, allowed.count))))
            parameters = swig.SearchParametersIVF(sel=selector, nprobe=nprobe)
        else:
            parameters = swig.SearchParameters(sel=selector)
        return self._index.search(queries, max(1, min(k, allowed.count)), params=parameters)

    def scores(self, queries: np.ndarray, depth: int, allowed: Selection | None = None) -> np.ndarray:
        """Every position's score for each query row, shape (rows, len(self)).

        Exact for a flat index: one pass over the stored vectors, with no top-k heap.
        An IVF index knows the scores of the ``depth`` positions it finds (among
        ``allowed`` ones, if given); the rest are -inf.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self._dimension:  # FAISS below reads raw memory
            raise ValueError(f"queries of shape {queries.shape} for vectors of dimension {self._dimension}")
        if self._ivf is not None:
            found, positions = self.search(queries, depth, allowed)
            out = np.full((len(queries), len(self)), -np.inf, dtype=np.float32)
            for row, row_found, row_positions in zip(out, found, positions):
                present = row_positions >= 0
                row[row_positions[present]] = row_found[present]
            return out
        out = np.empty((len(queries), self._size), dtype=np.float32)
        if self._size:
            swig: Any = faiss  # fvec_inner_products_ny is not in faiss's stubs
            for row, query in zip(out, queries):
                swig.fvec_inner_products_ny(faiss.swig_ptr(row), faiss.swig_ptr(query), self._stored, self._dimension,
                                            self._size)
        return out


class FlatFile:
    """An exact index written to ``path`` as vectors are added, byte for byte as FAISS
    writes the flat index holding them: what is in memory is only the part being
    added. The header, which counts them, is written last (on leaving the ``with``);
    a file left without it (a crash midway) does not open."""

    def __init__(self, path: Path, dimension: int) -> None:
        self.path, self.dimension, self.size = path, dimension, 0
        self._header_length = len(_flat_header(dimension, 0))
        self._descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def add(self, vectors: np.ndarray) -> None:
        vectors = _float32(vectors).reshape(-1, self.dimension)
        at = self._header_length + 4 * self.dimension * self.size
        if os.pwrite(self._descriptor, vectors.data, at) != vectors.nbytes:
            raise OSError(errno.ENOSPC, "no room for the vectors", str(self.path))
        self.size += len(vectors)

    def read(self) -> np.ndarray:
        """Every vector added so far, read back into memory."""
        return np.fromfile(self.path, np.float32, self.size * self.dimension,
                           offset=self._header_length).reshape(-1, self.dimension)

    def close(self) -> None:
        """Write the header; nothing more can be added."""
        try:
            os.pwrite(self._descriptor, _flat_header(self.dimension, self.size), 0)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Stop writing, the header unwritten (the file is one FAISS refuses)."""
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1

    def __enter__(self) -> FlatFile:
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()


def _read_into(path: Path, out: np.ndarray, offset: int) -> None:
    """Fill ``out`` with the bytes of ``path`` from ``offset``."""
    view = out.data.cast("B")
    descriptor = os.open(path, os.O_RDONLY)
    try:
        done = 0
        while done < len(view):
            read = os.preadv(descriptor, [view[done:]], offset + done)
            if not read:
                raise OSError(errno.EIO, "the file ends before its vectors do", str(path))
            done += read
    finally:
        os.close(descriptor)


def _flat_header(dimension: int, size: int) -> bytes:
    """What FAISS writes of an exact inner-product index of ``size`` vectors before them:
    its header, then how many floats follow."""
    empty = faiss.serialize_index(faiss.IndexFlatIP(dimension)).tobytes()
    if empty[-8:] != bytes(8) or empty[8:16] != bytes(8):
        raise RuntimeError("FAISS wrote an exact index in a form this version does not know")
    count = np.array([size], "<i8").tobytes()
    return empty[:8] + count + empty[16:-8] + np.array([size * dimension], "<u8").tobytes()


@dataclass
class _IvfPlan:
    """An IVF index trained on a sample of its vectors, before any is added: which list
    each vector of each source goes to, and calibration questions with the scores of
    their exact nearest vectors."""

    index: faiss.IndexIVFScalarQuantizer
    offsets: np.ndarray  # where each source's positions begin
    assigned: list[np.ndarray]  # each source's vectors' lists
    queries: np.ndarray
    truth: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(np.concatenate(self.assigned), minlength=self.index.nlist)


def _ivf_plan(sources: list[VectorSource], dimension: int) -> _IvfPlan:
    """Two passes over ``sources``, each read in turn: the first draws the training
    sample and the calibration questions; the second finds the questions' exact
    neighbours and each vector's list."""
    offsets = np.cumsum([0] + [source.size for source in sources])
    n = int(offsets[-1])
    lists = max(1, int(LISTS_PER_ROOT * np.sqrt(n)))
    rng = np.random.default_rng(0)
    training_at = np.sort(rng.choice(n, min(n, TRAINING_PER_LIST * lists), replace=False))
    asked_at = np.sort(rng.choice(n, min(n, CALIBRATION_QUERIES), replace=False))
    training = np.empty((len(training_at), dimension), np.float32)  # filled in place: no second copy
    asked = np.empty((len(asked_at), dimension), np.float32)
    for source, first, last in zip(sources, offsets, offsets[1:]):
        part = source.read()
        for wanted, drawn in ((training_at, training), (asked_at, asked)):
            begin, end = np.searchsorted(wanted, [first, last])
            drawn[begin:end] = part[wanted[begin:end] - first]
        del part
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dimension), dimension, lists,
                                          faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT, False)
    index.cp.niter = KMEANS_ITERATIONS
    with _all_cores():
        index.train(training)
        del training
        release_freed_memory()  # the sample's pages, which malloc would keep through the passes to come
        queries = _sample_questions(asked, rng)
        truth = _Nearest(queries)
        assigned = []
        for source in sources:
            part = _float32(source.read())
            truth.add(part)
            assigned.append(index.quantizer.assign(part, 1).ravel())
            del part
    return _IvfPlan(index, offsets, assigned, queries, truth.scores)


def _build_ivf(sources: list[VectorSource], dimension: int) -> faiss.IndexIVFScalarQuantizer:
    """An IVF index of half-precision vectors from ``sources``, in memory, its nprobe
    calibrated. A third pass adds the vectors."""
    plan = _ivf_plan(sources, dimension)
    index = _filled(plan, sources)
    with _all_cores():
        index.nprobe = _calibrated_nprobe(index, plan.queries, plan.truth)
    log.info("built an IVF index of %d vectors in %d lists, searching %d per question", index.ntotal, index.nlist,
             index.nprobe)
    return index


def _filled(plan: _IvfPlan, sources: list[VectorSource]) -> faiss.IndexIVFScalarQuantizer:
    """``plan``'s index with the vectors of ``sources`` added to the lists planned, every
    list allocated once at its final size (lists grown as vectors come hold up to twice
    their codes)."""
    index = plan.index
    with _all_cores():
        _reserve(index, plan.sizes)
        for source, first, lists_of in zip(sources, plan.offsets, plan.assigned):
            part = _float32(source.read())
            ids = np.arange(first, first + len(part), dtype=np.int64)
            index.add_core(len(part), faiss.swig_ptr(part), faiss.swig_ptr(ids), faiss.swig_ptr(lists_of))
            del part
    return index


def _write_ivf(sources: list[VectorSource], dimension: int, path: Path) -> faiss.IndexIVF:
    """The IVF index ``_build_ivf`` makes, written to ``path`` as FAISS writes it, its
    lists filled in place part by part as a third pass reads the sources: the build
    holds one part's vectors, never every list. Calibrated on the written file, opened
    memory-mapped (returned so), whose header then gets the nprobe found."""
    plan = _ivf_plan(sources, dimension)
    index, sizes = plan.index, plan.sizes
    index.ntotal = int(plan.offsets[-1])
    header, code_size = _ivf_header(index), int(index.code_size)
    lists_header = (_IVF_LISTS + np.array([index.nlist, code_size], "<u8").tobytes() + b"full"
                    + np.array([len(sizes), *sizes], "<u8").tobytes())
    # Each list's codes, then its ids, list after list: where each list's begin.
    codes_at = len(header) + len(lists_header) + np.concatenate([[0], np.cumsum(sizes * (code_size + 8))[:-1]])
    ids_at = codes_at + sizes * code_size
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(descriptor, header + lists_header)
        filled = np.zeros(len(sizes), np.int64)
        for source, first, lists_of in zip(sources, plan.offsets, plan.assigned):
            _write_part(descriptor, index, _float32(source.read()), first, lists_of, (codes_at, ids_at, filled))
        written = cast(faiss.IndexIVF, faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY))
        with _all_cores():
            written.nprobe = index.nprobe = _calibrated_nprobe(written, plan.queries, plan.truth)
        os.pwrite(descriptor, _ivf_header(index, len(header)), 0)
    finally:
        os.close(descriptor)
    log.info("wrote an IVF index of %d vectors in %d lists, searching %d per question", index.ntotal, index.nlist,
             index.nprobe)
    return written


_IVF_LISTS = b"ilar"  # how FAISS's file of an index's inverted lists (ArrayInvertedLists) begins


def _ivf_header(index: faiss.IndexIVF, length: int | None = None) -> bytes:
    """What FAISS writes of ``index`` (lists left empty) before its inverted lists;
    ``length`` checks it is as long as before (only the nprobe in it changed)."""
    written = faiss.serialize_index(index).tobytes()
    at = written.rfind(_IVF_LISTS)
    empty = _IVF_LISTS + np.array([index.nlist, index.code_size], "<u8").tobytes() + b"sprs" + bytes(8)
    if written[at:] != empty or length not in (None, at):
        raise RuntimeError("FAISS wrote an IVF index in a form this version does not know")
    return written[:at]


def _write_part(descriptor: int, index: faiss.IndexIVFScalarQuantizer, part: np.ndarray, first: int,
                lists_of: np.ndarray, places: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Encode one part's vectors and write each list's share of them after what is
    already in it (``places``: each list's codes and ids offsets, and vectors filled)."""
    if not len(part):  # a merged segment's source with no live passage left
        return
    codes_at, ids_at, filled = places
    codes = index.sq.compute_codes(part)
    order = np.argsort(lists_of, kind="stable")  # positions ascending within each list, as add_core leaves them
    codes, ids, lists_of = codes[order], (first + order).astype("<i8"), lists_of[order]
    starts = np.flatnonzero(np.concatenate([[True], lists_of[1:] != lists_of[:-1]]))
    for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)]):
        number = int(lists_of[start])
        os.pwrite(descriptor, codes[start:end].data, int(codes_at[number] + filled[number] * codes.shape[1]))
        os.pwrite(descriptor, ids[start:end].data, int(ids_at[number] + filled[number] * 8))
        filled[number] += end - start


def _reserve(index: faiss.IndexIVF, sizes: np.ndarray) -> None:
    """Allocate each inverted list for exactly ``sizes[list]`` vectors, left empty:
    adding that many then allocates nothing more."""
    invlists: Any = index.invlists  # never None on an IVF index
    for number, size in enumerate(sizes.tolist()):
        if size:
            invlists.resize(number, size)
            invlists.resize(number, 0)  # a std::vector keeps its capacity as it shrinks


def _sample_questions(sample: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stored vectors each moved about 45 degrees in a random direction (cosine 0.7 to
    it), about as far as a question lies from the passage answering it. In single
    precision, as the vectors are: their scores against each part of the index are a
    matrix product, about three times as long in double precision."""
    noise = rng.standard_normal(sample.shape, dtype=np.float32) / np.float32(np.sqrt(sample.shape[1]))
    queries = sample + noise
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


class _Nearest:
    """The scores of the exact ``CALIBRATION_DEPTH`` nearest stored vectors of each
    query, best first, gathered part by part: a matrix product ``NEAREST_ROWS`` rows at
    a time (faiss.knn, which loops instead for so few queries, took ten times as long)."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries
        self.scores = np.full((len(queries), 0), -np.inf, np.float32)

    def add(self, part: np.ndarray) -> None:
        for first in range(0, len(part), NEAREST_ROWS):
            scores = self.queries @ part[first : first + NEAREST_ROWS].T
            if scores.shape[1] > CALIBRATION_DEPTH:
                scores = np.partition(scores, -CALIBRATION_DEPTH, axis=1)[:, -CALIBRATION_DEPTH:]
            self.scores = -np.sort(-np.hstack([self.scores, scores]), axis=1)[:, :CALIBRATION_DEPTH]


def _calibrated_nprobe(index: faiss.IndexIVF, queries: np.ndarray, truth: np.ndarray) -> int:
    """The smallest nprobe whose recall reaches ``TARGET_RECALL``, found by doubling and
    then halving the gap between the last too few and the first enough (recall grows
    with nprobe): doubling alone overshot by up to twice the lists a search reads.
    Recall is the share of each query's exact neighbours down to its 10th distinct vector
    (``truth``: its best scores, best first) that the search finds, counting found
    scores within ``TIED_WITHIN`` of the last of them. Scores, not ids: any copy of a
    passage is as near as another. Copies counted at their 10th distinct vector: a
    question near a passage stored many times finds its copies in one list, and only the
    neighbours past them tell how many lists a new question needs."""
    def enough(nprobe: int) -> bool:
        return _recall(index, nprobe, queries, truth) >= TARGET_RECALL

    too_few, nprobe = 0, 1
    while nprobe < index.nlist and not enough(nprobe):
        too_few, nprobe = nprobe, 2 * nprobe
    nprobe = min(nprobe, index.nlist)  # every list: exact, enough by definition
    while nprobe - too_few > 1:
        middle = (too_few + nprobe) // 2
        too_few, nprobe = (too_few, middle) if enough(middle) else (middle, nprobe)
    index.nprobe = nprobe
    return nprobe


def _recall(index: faiss.IndexIVF, nprobe: int, queries: np.ndarray, truth: np.ndarray) -> float:
    """The recall ``_calibrated_nprobe`` asks for, of ``index`` searching ``nprobe`` lists
    (left set so)."""
    last, wanted = _down_to_tenth_distinct(truth)
    index.nprobe = nprobe
    found, _ = index.search(queries, truth.shape[1])
    hits = np.minimum((found >= last[:, None] - TIED_WITHIN).sum(axis=1), wanted)
    return float(np.mean(hits / wanted))


def _down_to_tenth_distinct(scores: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Each row's score of its ``k``-th distinct vector (rows best first; a score within
    ``COPY_WITHIN`` of the one before is a copy; the row's last where it holds fewer),
    and how many of the row's scores reach it, copies included."""
    distinct = np.ones(scores.shape, bool)
    distinct[:, 1:] = scores[:, :-1] - scores[:, 1:] > COPY_WITHIN
    wanted = ((distinct.cumsum(axis=1) <= k) & np.isfinite(scores)).sum(axis=1)
    return scores[np.arange(len(scores)), wanted - 1], wanted


def _float32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _decoded(codes: np.ndarray, dimension: int) -> np.ndarray:
    """Rows of an inverted list's codes as float32 vectors: half-precision codes (as
    built here), or single (IVF-Flat, as indexes were built before)."""
    kind = np.float16 if codes.shape[1] == 2 * dimension else np.float32
    return codes.view(kind).reshape(-1, dimension).astype(np.float32)


def _lists(index: faiss.IndexIVF):
    """(ids, codes) of each non-empty inverted list: views of the index's own memory
    (or of its file, mapped), codes a row per vector; valid while ``index`` is."""
    invlists: Any = index.invlists  # never None on an IVF index
    for number in range(index.nlist):
        size = invlists.list_size(number)
        if size:
            ids = faiss.rev_swig_ptr(invlists.get_ids(number), size)
            codes = faiss.rev_swig_ptr(invlists.get_codes(number), size * invlists.code_size)
            yield ids, codes.reshape(size, invlists.code_size)


class _all_cores:
    """Let FAISS use every core for the duration of a build."""

    def __enter__(self) -> None:
        faiss.omp_set_num_threads(os.cpu_count() or 1)

    def __exit__(self, *exc) -> None:
        faiss.omp_set_num_threads(1)
