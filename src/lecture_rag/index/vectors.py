"""Dense vector search: exact cosine for small corpora, HNSW (usearch) for large ones.

Why two paths: an exact matrix product is perfect (recall 1.0) and cheaper
than the query embedding itself up to ~100k segments of 384 dimensions (2.7 ms
p50 on 2 cores). It grows linearly and is memory-bandwidth bound: 26 ms at 1M
on an idle machine, much more under load. Above
``RetrievalSettings.hnsw_threshold`` an HNSW graph answers in 1-4 ms at
recall@10 >= 0.98 (0.999 at 200k, 0.984 at 1M; ``bench/bench_search.py``, real
E5 vectors).

The full matrix is always kept (memory-mapped ``.npy``): it gives the cosine
of any segment (HNSW results are re-scored with it, BM25-only hybrid hits get
their cosine from it) and exact search over a filtered subset. It is stored
as ``float32``, ``float16`` or ``int8`` (``[retrieval] vector_dtype``): int8
rows are scaled one by one to use the whole [-127, 127] range, so the cosine
with a row is that of its direction, ``q . v / |v|``, which no scale changes
(usearch's own i8 multiplies every component by 127, wasting most of the range
on E5's small components). Compact matrices are scanned by NumKong's SIMD
kernels (usearch's own; see :func:`_brute_force` for why not usearch itself)
and the best rows re-scored in float32. Recall@10
against float32 on real E5 vectors: ``bench/bench_scale.py``.

Large builds are streamed (:class:`VectorWriter`): rows are written to the
data file as they come, the graph is fed from the memory map in blocks, so a
build never holds the corpus's vectors twice.

On-disk layout of one saved index (a build folder, see
:mod:`lecture_rag.index.build`): ``manifest.json`` names the data files,
whose names carry a per-save token. A save writes new files, then replaces
the manifest atomically, then deletes the files of older saves, so a reader
never pairs vectors of one save with ids of another. The manifest records
each data file's size and checksums (:mod:`lecture_rag.index.integrity`);
loading checks sizes and sampled checksums, and every score a search returns
is checked to be a cosine (within [-1, 1]): damaged files are refused with
"run 'lecture-rag index --rebuild'", never served as scores like 3e+37.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import math
import os
import struct
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lecture_rag.errors import IndexMismatchError, StoreError
from lecture_rag.index.integrity import MappedFiles, checksums, problem

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
Kind = Literal["exact", "hnsw"]
VectorDtype = Literal["f32", "f16", "i8"]
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "f32": np.dtype(np.float32),
    "f16": np.dtype(np.float16),
    "i8": np.dtype(np.int8),
}
BLOCK_ROWS = 65_536  # rows decoded or fed to the graph at a time (24 MB of float32 at 384 dimensions)
_COMPACT_OVERFETCH = 4  # a compact brute force keeps this many times k rows for the float32 re-score
_MAX_RUNS = 512  # above this many contiguous runs, a filtered exact search gathers rows instead
COSINE_TOLERANCE = 1e-3  # float32 dot products of unit vectors stray from [-1, 1] by ~1e-7; garbage by far more
_RUNTIME_LOADED = False  # the system C++ runtime is loaded globally before usearch (usearch_index_class)


def ids_fingerprint(ids: np.ndarray | list[int]) -> str:
    """Identity of a corpus: corpus ids are never reused, so equal ids mean equal texts."""
    arr = np.ascontiguousarray(np.sort(np.asarray(ids, dtype=np.int64)), dtype="<i8")
    digest = hashlib.sha256(arr.tobytes()).hexdigest()[:32]
    return f"{arr.shape[0]}:{digest}"


@dataclass(frozen=True, slots=True)
class HnswParams:
    """usearch HNSW knobs, chosen with ``bench/bench_search.py`` (recall@10 vs exact on real E5 vectors).

    * ``expansion_add=256``: the graph quality knob. At 200k vectors, 128 gave
      recall 0.951 and 256 gave 0.994 (ef 256). It triples the build time, which
      is still minutes against the days of embedding a corpus that large.
    * ``expansion_search=0`` means "by corpus size" (:func:`auto_expansion_search`):
      recall falls as the corpus grows (ef 512: 0.998 at 200k, 0.923 at 1M; ef 4096:
      0.985 at 1M for 4 ms a query), and the 50 ms budget leaves room to widen.
    * ``dtype="i8"``: the graph stores int8 vectors (a quarter of float32 memory,
      the fastest build); quantisation alone costs recall (0.78 vs 0.99 at 100k),
      so the graph returns ``rescore_factor * k`` candidates that are re-ranked
      with the float32 matrix, which also makes every reported score an exact cosine.
    """

    connectivity: int = 16
    expansion_add: int = 256
    expansion_search: int = 0
    dtype: str = "i8"
    rescore_factor: int = 10


@dataclass(slots=True)
class VectorManifest:
    """The JSON manifest: enough to refuse a wrong embedder before touching data."""

    embedder: str
    dim: int
    count: int
    fingerprint: str
    kind: Kind
    files: dict[str, str]
    hnsw: dict[str, Any] | None = None
    format: int = FORMAT_VERSION
    built_at: str = ""
    checksums: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> size, sha256, sample
    dtype: str = "f32"  # how the matrix is stored (manifests of older builds have none: float32)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VectorManifest:
        man = cls(
            embedder=str(data["embedder"]),
            dim=int(data["dim"]),
            count=int(data["count"]),
            fingerprint=str(data["fingerprint"]),
            kind=data["kind"],
            files=dict(data["files"]),
            hnsw=data.get("hnsw"),
            format=int(data.get("format", FORMAT_VERSION)),
            built_at=str(data.get("built_at", "")),
            checksums=dict(data.get("checksums") or {}),
            dtype=str(data.get("dtype") or "f32"),
        )
        if man.dtype not in NUMPY_DTYPES:
            raise ValueError(f"tipo de vetor desconhecido no manifesto: {man.dtype!r}")
        if man.kind not in ("exact", "hnsw") or "vectors" not in man.files or "ids" not in man.files:
            raise ValueError(f"manifest inválido: kind={man.kind!r}, files={sorted(man.files)}")
        return man


def read_manifest(directory: Path) -> VectorManifest | None:
    """The manifest if one is there (None when never built); corrupt -> StoreError."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    try:
        return VectorManifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _corrupt(directory, exc) from exc


class VectorIndex:
    """The embedded dense index (see module docstring)."""

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        manifest: VectorManifest,
        hnsw: Any | None = None,
        *,
        exact_subset_max: int = 50_000,
    ) -> None:
        self._ids = ids
        self._vectors = vectors
        self.manifest = manifest
        self._hnsw = hnsw
        self.exact_subset_max = exact_subset_max
        self.directory: Path | None = None  # where it was loaded from (for messages)
        self.mapped: MappedFiles | None = None  # the files under the memory maps (see MappedFiles)

    # -- identity -------------------------------------------------------------
    @property
    def embedder_name(self) -> str:
        return self.manifest.embedder

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    @property
    def kind(self) -> Kind:
        return self.manifest.kind

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    # -- build ----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        embedder_name: str,
        hnsw_threshold: int,
        params: HnswParams | None = None,
        threads: int = 0,
        dtype: VectorDtype = "f32",
    ) -> VectorIndex:
        """Index (ids, vectors) held in memory; HNSW when count > threshold (large builds: :class:`VectorWriter`)."""
        id_arr, mat = _prepare(ids, vectors)
        stored = encode(mat, dtype)
        kind: Kind = "hnsw" if id_arr.shape[0] > hnsw_threshold and id_arr.shape[0] > 0 else "exact"
        params = params or HnswParams()
        graph = _build_hnsw(stored, params, threads) if kind == "hnsw" else None
        manifest = _new_manifest(embedder_name, int(mat.shape[1]), id_arr, kind, params, dtype)
        return cls(id_arr, stored, manifest, graph, exact_subset_max=max(hnsw_threshold, 1))

    @property
    def compact(self) -> bool:
        """Rows stored as float16 or int8 (scanned by usearch, re-scored in float32)."""
        return self._vectors.dtype != np.float32

    # -- search ---------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        self._check_files()
        q = _query_vector(query, self.dim)
        if k <= 0 or len(self) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        rows = None if allowed is None else self.rows_of(np.asarray(allowed, dtype=np.int64))
        if rows is not None and rows.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if self._hnsw is None or (rows is not None and rows.size <= self.exact_subset_max):
            return self._exact(q, k, rows)
        return self._approximate(q, k, rows)

    @property
    def graph(self) -> Any | None:
        """The usearch graph (None for exact indexes): for tuning ``expansion_search`` and benches."""
        return self._hnsw

    def search_exact(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force search whatever the kind: the reference HNSW results are measured against."""
        self._check_files()
        rows = None if allowed is None else self.rows_of(np.asarray(allowed, dtype=np.int64))
        return self._exact(_query_vector(query, self.dim), k, rows)

    def _exact(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Brute force: one matrix-vector product, then argpartition (no full sort)."""
        if self.compact:
            return self._exact_compact(q, k, rows)
        with _damaged_values_checked_later():
            scores = self._vectors @ q if rows is None else self._subset_scores(q, rows)
        top = _top_k(scores, k)
        positions = top if rows is None else rows[top]
        return self._ids[positions], self._checked(scores[top])

    def _exact_compact(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """A SIMD brute force over the compact rows (or a gathered subset), re-scored in float32.

        numpy has no float16/int8 kernels (decoding 100k rows costs 10x the
        float32 product); NumKong scans them as fast as numpy scans float32.
        """
        matrix = self._vectors if rows is None else self._vectors[rows]
        fetch = min(matrix.shape[0], k * _COMPACT_OVERFETCH)
        found = _brute_force(matrix, q, fetch)
        return self._rescore(q, found if rows is None else rows[found], k)

    def _subset_scores(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosines of sorted ``rows``, reading contiguous runs as views of the memory map.

        A course or video filter selects whole videos, whose segments got
        consecutive corpus ids at ingest: a few runs, scored without copying
        them. Scattered rows fall back to one gather.
        """
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        if breaks.size >= _MAX_RUNS:
            return np.asarray(self._vectors[rows] @ q)
        bounds = zip(np.r_[0, breaks], np.r_[breaks, rows.size], strict=True)
        return np.concatenate([self._vectors[rows[a] : rows[b - 1] + 1] @ q for a, b in bounds])

    def _approximate(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """HNSW; with a filter, over-fetch by the inverse selectivity and keep allowed rows."""
        graph = self._hnsw
        assert graph is not None
        n = len(self)
        factor = max(1, int((self.manifest.hnsw or {}).get("rescore_factor", 1)))
        fetch = min(n, k * factor * (1 if rows is None else 2 * math.ceil(n / rows.size)))
        want = min(k * factor, n if rows is None else rows.size)
        keep = None if rows is None else np.zeros(n, dtype=bool)
        if keep is not None and rows is not None:
            keep[rows] = True
        while True:
            found = np.asarray(graph.search(q, fetch).keys, dtype=np.int64)
            if keep is not None:
                found = found[keep[found]]
            if found.size >= want or fetch >= n:
                break
            fetch = min(n, fetch * 4)
            if fetch > 8 * self.exact_subset_max and rows is not None:
                return self._exact(q, k, rows)
        return self._rescore(q, found, k)

    def _rescore(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact float32 cosines for the graph's candidates: the scores users see are true cosines."""
        if rows.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        rows = np.sort(rows)  # sequential reads from the memory map
        with _damaged_values_checked_later():
            scores = decode(self._vectors[rows]) @ q
        top = _top_k(scores, k)
        return self._ids[rows[top]], self._checked(scores[top])

    def cosines(self, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Exact cosines of ``ids`` with ``query`` (0 for unknown ids), checked like search scores."""
        self._check_files()
        with _damaged_values_checked_later():
            scores = self.vectors_for(np.asarray(ids, dtype=np.int64)) @ _query_vector(query, self.dim)
        return self._checked(scores)

    def _checked(self, scores: np.ndarray) -> np.ndarray:
        """Scores a user sees are cosines: anything outside [-1, 1] means damaged vectors, not a result."""
        scores = np.asarray(scores, dtype=np.float32)
        bad = scores[~(np.abs(scores) <= 1.0 + COSINE_TOLERANCE)]  # NaN fails the comparison too
        if bad.size:
            where = self.directory if self.directory is not None else "(em memória)"
            raise _corrupt(where, f"similaridade {float(bad[0]):.3g} fora de [-1, 1]: vetores danificados")
        return np.clip(scores, -1.0, 1.0)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of the known ``ids`` (unknown ids are dropped)."""
        self._check_files()
        if ids.size == 0 or len(self) == 0:
            return np.empty(0, np.int64)
        pos = np.searchsorted(self._ids, ids)
        pos = np.minimum(pos, len(self) - 1)
        return np.unique(pos[self._ids[pos] == ids])

    def vectors_for(self, ids: np.ndarray) -> np.ndarray:
        self._check_files()
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((ids.shape[0], self.dim), dtype=np.float32)
        if ids.size == 0 or len(self) == 0:
            return out
        pos = np.minimum(np.searchsorted(self._ids, ids), len(self) - 1)
        ok = self._ids[pos] == ids
        with _damaged_values_checked_later():
            out[ok] = decode(self._vectors[pos[ok]])
        return out

    # -- persistence ----------------------------------------------------------
    def save(self, directory: Path) -> None:
        """New files first, manifest swap second, stale files last (see module docstring)."""
        directory = Path(directory)
        if self.directory is not None and self.directory.resolve() == directory.resolve():
            return  # streamed there by a VectorWriter: the files and the manifest are already written
        directory.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:10]
        files = {"vectors": f"vectors-{token}.npy", "ids": f"ids-{token}.npy"}
        _atomic_npy(directory / files["vectors"], self._vectors)
        _atomic_npy(directory / files["ids"], self._ids)
        if self._hnsw is not None:
            files["hnsw"] = _save_graph(self._hnsw, directory, token)
        _write_manifest(directory, self.manifest, files, token)

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        embedder_name: str | None = None,
        dim: int | None = None,
        exact_subset_max: int = 50_000,
    ) -> VectorIndex:
        """Memory-map a saved index; refuse a different embedder before reading vectors."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest is None:
            raise StoreError(
                f"Índice vetorial não encontrado em {directory}. Rode 'lecture-rag index' "
                "(ou 'lecture-rag index --rebuild' se o índice foi apagado)."
            )
        if embedder_name is not None and dim is not None:
            check_manifest_embedder(manifest.embedder, manifest.dim, embedder_name, dim)
        damage = problem(directory, manifest.checksums, full=False)
        if damage is not None:
            raise _corrupt(directory, damage)
        try:
            ids = np.load(directory / manifest.files["ids"], mmap_mode="r", allow_pickle=False)
            vectors = np.load(directory / manifest.files["vectors"], mmap_mode="r", allow_pickle=False)
            graph = (
                _load_hnsw(directory / manifest.files["hnsw"], manifest.hnsw or {}) if manifest.kind == "hnsw" else None
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise _corrupt(directory, exc) from exc
        _check_shapes(directory, manifest, ids, vectors, graph)
        if ids_fingerprint(np.asarray(ids)) != manifest.fingerprint:
            raise _corrupt(directory, "os ids não batem com a impressão digital do manifesto")
        index = cls(ids, vectors, manifest, graph, exact_subset_max=exact_subset_max)
        index.directory = directory
        index.mapped = MappedFiles([directory / name for name in manifest.files.values()])
        return index

    def _check_files(self) -> None:
        """Refuse to read a memory map whose file was truncated since load (a read would kill the process)."""
        damage = self.mapped.problem() if self.mapped is not None else None
        if damage is not None:
            raise _corrupt(self.directory or "(em memória)", damage)

    @staticmethod
    def verify(directory: Path) -> str | None:
        """What is wrong with a saved index, checking every byte (None when it is whole and has checksums)."""
        try:
            manifest = read_manifest(directory)
        except StoreError as exc:
            return str(exc)
        if manifest is None:
            return "manifesto ausente"
        if set(manifest.checksums) != set(manifest.files.values()):
            return "o manifesto não tem somas de verificação (índice de uma versão anterior)"
        return problem(Path(directory), manifest.checksums, full=True)


def check_manifest_embedder(built_with: str, built_dim: int, name: str, dim: int) -> None:
    """Vectors of two models are not comparable: refuse, and say how to fix it."""
    if built_with != name or built_dim != dim:
        raise IndexMismatchError(
            f"O índice foi construído com o modelo '{built_with}' (dimensão {built_dim}), "
            f"mas a busca usa '{name}' (dimensão {dim}). Rode 'lecture-rag index --rebuild' para "
            f"reindexar com o modelo atual, ou configure de novo o modelo '{built_with}'."
        )


# -- helpers ------------------------------------------------------------------
def _prepare(ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids ascending (for searchsorted), float32 C-contiguous rows, unit norm."""
    id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    mat = np.asarray(vectors, dtype=np.float32)
    if mat.ndim != 2 or mat.shape[0] != id_arr.shape[0]:
        raise ValueError(f"vectors {mat.shape} do not match {id_arr.shape[0]} ids")
    order = np.argsort(id_arr, kind="stable")
    if id_arr.size and np.any(np.diff(id_arr[order]) == 0):
        raise ValueError("duplicate corpus ids")
    if not np.all(order[1:] > order[:-1]):
        id_arr, mat = id_arr[order], mat[order]
    mat = np.ascontiguousarray(mat)
    norms = np.linalg.norm(mat, axis=1)
    if mat.size and np.any(np.abs(norms[norms > 0] - 1.0) > 1e-3):
        mat = (mat / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
    return np.ascontiguousarray(id_arr), mat


def usearch_index_class() -> Any:
    """usearch's ``Index``, imported after the system's C++ runtime is loaded globally.

    Why: usearch's module carries its own static C++ runtime, whose
    process-wide ("unique") symbols then win over those of every C++ library
    loaded after it: llama.cpp fails to load a GGUF model ("error loading model
    vocabulary: std::bad_cast") and Ray aborts at ``ray.init``
    ("std::regex_error"). Loading ``libstdc++.so.6`` first, with its symbols
    global, makes the system runtime's the ones every later library binds to,
    as when Ray or llama.cpp happens to be imported before usearch. Where no
    system runtime is found (not Linux), the import is left as it is.
    """
    global _RUNTIME_LOADED
    if not _RUNTIME_LOADED:
        name = ctypes.util.find_library("stdc++")
        if name:
            with contextlib.suppress(OSError):
                ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        _RUNTIME_LOADED = True
    from usearch.index import Index

    return Index


def _build_hnsw(mat: np.ndarray, params: HnswParams, threads: int) -> Any:
    """The graph over the stored rows, fed a block at a time (a memory-mapped matrix is never copied whole).

    int8 rows go in as they are stored (scaled per row: a better graph than
    usearch's own x127 quantisation); float16 rows are decoded block by block.
    """
    Index = usearch_index_class()
    graph = Index(
        ndim=mat.shape[1],
        metric="cos",
        dtype=params.dtype,
        connectivity=params.connectivity,
        expansion_add=params.expansion_add,
        expansion_search=params.expansion_search or auto_expansion_search(mat.shape[0]),
    )
    for lo in range(0, mat.shape[0], BLOCK_ROWS):
        block = np.asarray(mat[lo : lo + BLOCK_ROWS])
        rows = block if block.dtype in (np.float32, np.int8) else decode(block)
        graph.add(np.arange(lo, lo + rows.shape[0], dtype=np.uint64), rows, threads=threads)
    return graph


def encode(mat: np.ndarray, dtype: VectorDtype) -> np.ndarray:
    """Unit float32 rows as stored: unchanged, float16, or int8 scaled per row to +-127."""
    if dtype == "f32":
        return np.ascontiguousarray(mat, dtype=np.float32)
    if dtype == "f16":
        return np.ascontiguousarray(mat, dtype=np.float16)
    if dtype != "i8":
        raise ValueError(f"unknown vector dtype {dtype!r}")
    peak = np.abs(mat).max(axis=1, keepdims=True) if mat.size else np.ones((mat.shape[0], 1), np.float32)
    return np.ascontiguousarray(np.rint(mat * (127.0 / np.where(peak > 0, peak, 1.0))), dtype=np.int8)


def decode(rows: np.ndarray) -> np.ndarray:
    """Stored rows as unit float32 rows (float32 rows are returned as they are: exact cosines as before)."""
    if rows.dtype == np.float32:
        return np.asarray(rows)
    out = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def _brute_force(matrix: np.ndarray, q: np.ndarray, count: int) -> np.ndarray:
    """Rows of the ``count`` best cosines in a float16/int8 matrix (NumKong's SIMD scan, query cast alike).

    Why NumKong and not usearch's own ``search(..., exact=True)`` (same kernels,
    same author): NumKong's scan is twice as fast here, and an exact search
    keeps usearch and its own C++ runtime out of the process altogether (see
    ``usearch_index_class``). NumKong's angular distance is ``1 - cosine`` for
    both dtypes (int8 rows scaled per row keep their direction).
    """
    import numkong

    if count <= 0 or matrix.shape[0] == 0:
        return np.empty(0, np.int64)
    query = encode(q.reshape(1, -1), "i8" if matrix.dtype == np.int8 else "f16")
    distances = np.asarray(numkong.cdist(np.ascontiguousarray(matrix), query, metric="angular")).reshape(-1)
    return _top_k(-distances, min(count, distances.shape[0]))


def _new_manifest(
    embedder_name: str, dim: int, ids: np.ndarray, kind: Kind, params: HnswParams, dtype: VectorDtype
) -> VectorManifest:
    return VectorManifest(
        embedder=embedder_name,
        dim=dim,
        count=int(ids.shape[0]),
        fingerprint=ids_fingerprint(ids),
        kind=kind,
        files={},
        hnsw=asdict(params) if kind == "hnsw" else None,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dtype=dtype,
    )


def _save_graph(graph: Any, directory: Path, token: str) -> str:
    name = f"hnsw-{token}.usearch"
    tmp = directory / f".{name}.tmp"
    graph.save(str(tmp))
    os.replace(tmp, directory / name)
    return name


def _write_manifest(directory: Path, manifest: VectorManifest, files: dict[str, str], token: str) -> None:
    """Checksums, then the manifest swapped in atomically, then older saves' files removed."""
    manifest.files = files
    manifest.checksums = checksums(directory, sorted(files.values()))
    tmp_manifest = directory / f".{MANIFEST}.{token}.tmp"
    tmp_manifest.write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
    os.replace(tmp_manifest, directory / MANIFEST)
    _remove_stale(directory, set(files.values()))


class VectorWriter:
    """A vector index written as its rows come: appended to the data file, never held whole in memory.

    Why: a 1M-window build held the windows' and the passages' float32
    matrices (6.4 GB) plus copies made while normalising and sorting. Here
    each batch is normalised, encoded and appended to ``vectors-TOKEN.npy``
    (a fixed-size header is written first and filled in by :meth:`finish`);
    ids must come ascending (the store's order, and that of passage ids).
    :meth:`finish` writes the ids, feeds the graph from the memory-mapped
    file and writes the manifest last, so a killed build leaves no manifest.
    """

    def __init__(self, directory: Path, dim: int, dtype: VectorDtype = "f32") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = int(dim)
        self.dtype: VectorDtype = dtype
        self.token = uuid.uuid4().hex[:10]
        self.files = {"vectors": f"vectors-{self.token}.npy", "ids": f"ids-{self.token}.npy"}
        self._ids = np.empty(0, np.int64)
        self._id_blocks: list[np.ndarray] = []
        self._count = 0
        self._last = -(2**63)
        self._handle = open(self.directory / self.files["vectors"], "wb")  # noqa: SIM115 (closed by finish)
        self._handle.write(_npy_header(NUMPY_DTYPES[dtype], (0, self.dim)))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Append rows (ids ascending, above every id added before)."""
        id_arr, mat = _prepare(ids, vectors)
        if id_arr.size == 0:
            return
        if mat.shape[1] != self.dim:
            raise ValueError(f"vectors of dimension {mat.shape[1]}, the index has {self.dim}")
        if int(id_arr[0]) <= self._last:
            raise ValueError("VectorWriter needs ids in ascending order")
        self._handle.write(encode(mat, self.dtype).tobytes())
        self._id_blocks.append(id_arr)
        self._count += int(id_arr.size)
        self._last = int(id_arr[-1])

    def __len__(self) -> int:
        return self._count

    def finish(
        self, *, embedder_name: str, hnsw_threshold: int, params: HnswParams | None = None, threads: int = 0
    ) -> VectorIndex:
        """Complete the files, build the graph when count > threshold, write the manifest; the index, loaded."""
        self._handle.seek(0)
        self._handle.write(_npy_header(NUMPY_DTYPES[self.dtype], (self._count, self.dim)))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        ids = np.concatenate(self._id_blocks) if self._id_blocks else np.empty(0, np.int64)
        self._id_blocks = []
        _atomic_npy(self.directory / self.files["ids"], ids)
        kind: Kind = "hnsw" if self._count > hnsw_threshold and self._count > 0 else "exact"
        params = params or HnswParams()
        manifest = _new_manifest(embedder_name, self.dim, ids, kind, params, self.dtype)
        if kind == "hnsw":
            matrix = np.load(self.directory / self.files["vectors"], mmap_mode="r", allow_pickle=False)
            graph = _build_hnsw(matrix, params, threads)
            self.files["hnsw"] = _save_graph(graph, self.directory, self.token)
            del graph, matrix
        _write_manifest(self.directory, manifest, dict(self.files), self.token)
        return VectorIndex.load(self.directory, exact_subset_max=max(hnsw_threshold, 1))

    def abort(self) -> None:
        """Close and delete what was written (a failed build)."""
        self._handle.close()
        for name in self.files.values():
            (self.directory / name).unlink(missing_ok=True)


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, int]) -> bytes:
    """A .npy (1.0) header padded to a fixed 128 bytes, so it can be rewritten once the row count is known."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    body = text.ljust(_NPY_HEADER - 11) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


_NPY_HEADER = 128


def auto_expansion_search(count: int) -> int:
    """HNSW search breadth for ``count`` vectors: 512 up to 128k, growing linearly to 4096 at 1M.

    Measured recall@10 vs exact (bench_search.py): 0.998 at 200k with 512;
    0.985 at 1M with 4096 (4 ms per query, p95 6 ms).
    """
    return int(min(4096, max(512, count // 250)))


def _load_hnsw(path: Path, params: dict[str, Any]) -> Any:
    """Memory-map the graph; the search breadth comes from the manifest, not the file."""
    Index = usearch_index_class()
    if not path.exists():
        raise OSError(f"arquivo ausente: {path.name}")
    graph = Index.restore(str(path), view=True)
    if graph is None:
        raise ValueError(f"{path.name} não é um índice usearch")
    graph.expansion_search = int(params.get("expansion_search") or auto_expansion_search(len(graph)))
    return graph


def _check_shapes(
    directory: Path, manifest: VectorManifest, ids: np.ndarray, vectors: np.ndarray, graph: Any | None
) -> None:
    n, d, dtype = manifest.count, manifest.dim, NUMPY_DTYPES[manifest.dtype]
    if ids.shape != (n,) or vectors.shape != (n, d) or vectors.dtype != dtype:
        raise _corrupt(directory, f"esperado {n}×{d} {dtype}, achado {vectors.shape} {vectors.dtype}")
    if graph is not None and (len(graph) != n or graph.ndim != d):
        raise _corrupt(directory, f"o grafo HNSW tem {len(graph)} vetores, o manifesto {n}")


def _query_vector(query: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape[0] != dim:
        raise IndexMismatchError(
            f"O vetor da pergunta tem dimensão {q.shape[0]}, o índice {dim}. "
            "Rode 'lecture-rag index --rebuild' com o modelo atual."
        )
    return q


def _damaged_values_checked_later() -> Any:
    """No numpy warnings for NaN/inf from damaged vectors: :meth:`VectorIndex._checked` reports them as an error."""
    return np.errstate(invalid="ignore", over="ignore")


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first (ties: lower index first)."""
    n = scores.shape[0]
    if n == 0:
        return np.empty(0, np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    return part[np.lexsort((part, -scores[part]))]


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove_stale(directory: Path, keep: set[str]) -> None:
    """Delete data files of older builds (open memory maps keep working on Linux)."""
    for path in directory.iterdir():
        stale = (
            path.is_file()
            and path.name not in keep
            and (path.name.startswith(("vectors-", "ids-", "hnsw-")) or path.name.endswith(".tmp"))
        )
        if stale:
            path.unlink(missing_ok=True)


def _corrupt(directory: Path | str, why: object) -> StoreError:
    return StoreError(
        f"O índice vetorial em {directory} está corrompido ou incompleto ({why}). "
        "Rode 'lecture-rag index --rebuild' para refazê-lo."
    )
