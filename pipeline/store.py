"""The nncap graph store: Zarr v3 groups of graphs under any fsspec URL, published atomically
through an append-only catalog. The format is specified in docs/store-format.md; this is the only
module that touches Zarr or the store's files.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import fsspec
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr
import zarr.storage
from fsspec.implementations.local import LocalFileSystem

from graphs.graph import GraphHasher, InvalidGraphError, SparseGraph, check_csr
from pipeline.errors import NncapError, one_line

SCHEMA_VERSION = 1
FORMAT_NAME = "nncap-store"
GRAPHS = "graphs"
CATALOG = "catalog"
ENTRIES = f"{CATALOG}/entries"
SNAPSHOTS = f"{CATALOG}/snapshots"
RESULTS = "results"
DEFAULT_CHUNK = 1 << 20
KINDS = ("network", "linegraph")
GRAPH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
# Catalog columns every record has, in display order.
CORE_FIELDS = ("id", "kind", "directed", "weighted", "n_nodes", "n_edges", "nnz", "self_loops",
               "source", "content_hash", "schema_version", "created")


class StoreError(NncapError):
    """A problem with the store or a request to it."""


def check_graph_id(graph_id: str) -> str:
    """Graph ids are path-safe names: letters, digits and ``. _ + -``, not starting with a dot,
    no ``..``, at most 200 characters."""
    if not isinstance(graph_id, str) or not GRAPH_ID.match(graph_id) or ".." in graph_id:
        raise StoreError(f"invalid graph id {graph_id!r}: use letters, digits and . _ + - "
                         "(no path separators, no '..', not starting with '.')")
    return graph_id


@dataclass(frozen=True)
class ArraySpec:
    """Chunking decision for one array: ``chunk`` elements along axis 0."""

    chunk: int = DEFAULT_CHUNK

    def chunks(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (max(1, min(shape[0], self.chunk)),) + tuple(max(1, s) for s in shape[1:])


# Parsed catalog snapshots of this process, least recently used first (see Store._snapshot).
_SNAPSHOT_CACHE: OrderedDict[tuple[str, str], dict[str, bytes]] = OrderedDict()
SNAPSHOT_CACHE_SIZE = 4


def _reading(method: Any) -> Any:
    """Read paths of :class:`Store`: a damaged store raises errors of any type from zarr, the codecs
    or JSON; they become one StoreError naming what was read (StoreError passes unchanged)."""

    @functools.wraps(method)
    def read(self: Store, what: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, what, *args, **kwargs)
        except StoreError:
            raise
        except Exception as e:
            name = getattr(what, "path", what)
            raise StoreError(f"{name!r} in {self.url} is unreadable ({type(e).__name__}: {one_line(e, 200)}); "
                             "the store may be damaged: run nncap check") from None
    return read


class Store:
    """A graph store at ``url`` (a local path or any fsspec URL such as ``s3://bucket/x.zarr``).

    ``mode='a'`` creates the store if needed; ``mode='r'`` requires it to exist and never writes.
    Graphs are written with :meth:`write_graph` and become visible to :meth:`catalog` and
    :meth:`read_graph` only when their catalog entry is published, after all their data.
    """

    def __init__(self, url: str, mode: str = "a", *, chunk: int = DEFAULT_CHUNK,
                 storage_options: dict[str, Any] | None = None):
        if mode not in ("a", "r"):
            raise StoreError(f"mode must be 'a' or 'r', not {mode!r}")
        self.url = str(url)
        self.mode = mode
        self.spec = ArraySpec(chunk)
        self.storage_options = dict(storage_options or {})
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
            self.root = self.root.rstrip("/")
            if isinstance(self.fs, LocalFileSystem):
                self._zstore = zarr.storage.LocalStore(self.root, read_only=(mode == "r"))
            else:
                self._zstore = zarr.storage.FsspecStore.from_url(
                    self.url, storage_options=self.storage_options or None, read_only=(mode == "r"))
            self._open_root()
        except StoreError:
            raise
        except ImportError as e:  # fsspec names the package a protocol needs (s3fs: pip install nncap[s3])
            raise StoreError(f"cannot open {self.url}: {e}") from None
        except Exception as e:  # the backend's own errors: missing bucket, credentials, refused connection
            raise StoreError(f"cannot open store {self.url}: {type(e).__name__}: {e}") from None

    # -- layout ------------------------------------------------------------------------------
    def _open_root(self) -> None:
        self.fs.invalidate_cache(self.root)
        if not self.fs.exists(self._path("zarr.json")):
            if self.mode == "r":
                raise StoreError(f"no nncap store at {self.url}")
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in _ls(self.fs, self.root)]
            if all(n.startswith(".") or n == GRAPHS for n in names):  # empty, or another creator's first step
                # The root metadata appears atomically, so a killed creation never leaves a torn
                # store; concurrent creators write the same document and the last rename wins.
                root = {"zarr_format": 3, "node_type": "group", "attributes": {
                    "encoding-type": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "created": _now()}}
                _put_atomic(self.fs, self._path(GRAPHS, "zarr.json"), json.dumps(root | {"attributes": {}}).encode())
                _put_atomic(self.fs, self._path("zarr.json"), json.dumps(root).encode())
            elif not self.fs.exists(self._path("zarr.json")):  # (another process may have just created it)
                raise StoreError(f"{self.url} exists and is not an nncap store; choose an empty or new location")
        try:
            attrs = dict(zarr.open_group(store=self._zstore, mode="r", zarr_format=3).attrs)
        except Exception as e:  # unreadable root metadata
            raise StoreError(f"{self.url} is not a readable nncap store ({e})") from None
        if attrs.get("encoding-type") != FORMAT_NAME:
            raise StoreError(f"{self.url} is a Zarr group but not an nncap store")
        version = attrs.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(f"store {self.url} has schema version {version}; this nncap reads version "
                             f"{SCHEMA_VERSION}")

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _group(self, path: str, mode: str = "r") -> zarr.Group:
        return zarr.open_group(store=self._zstore, path=path, mode=mode, zarr_format=3)

    def _require_writable(self) -> None:
        if self.mode == "r":
            raise StoreError(f"store {self.url} is open read-only")

    # -- catalog -----------------------------------------------------------------------------
    def _write_entry(self, record: dict[str, Any]) -> None:
        name = f"{record['published']:020d}-{record['id']}-{uuid.uuid4().hex[:8]}.json"
        _put_atomic(self.fs, self._path(ENTRIES, name), json.dumps(record, sort_keys=True).encode())

    def _records(self, graph_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Latest record per graph id (tombstones included), from snapshots and entries; with
        ``graph_id``, only that id's record (entries of other ids are not read)."""
        for _ in range(20):
            entries = _ls_json(self.fs, self._path(ENTRIES))
            if graph_id is not None:
                entries = [p for p in entries if _entry_id(p) == graph_id]
            snapshots = _ls_json(self.fs, self._path(SNAPSHOTS))
            try:
                snapshot_records = [self._snapshot(p) for p in snapshots]
                blobs = self.fs.cat(entries, on_error="raise") if entries else {}
            except FileNotFoundError:
                continue  # a compaction removed files between listing and reading: list again
            latest: dict[str, dict[str, Any]] = {}
            for recs in snapshot_records:
                if graph_id is None:
                    for blob in recs.values():
                        _keep_latest(latest, json.loads(blob))
                elif graph_id in recs:
                    _keep_latest(latest, json.loads(recs[graph_id]))
            for path in entries:
                _keep_latest(latest, _parse_record(path, blobs[path]))
            return latest
        raise StoreError(f"catalog of {self.url} kept changing while being read; try again")

    def _snapshot(self, path: str) -> dict[str, bytes]:
        """The records of one snapshot as ``{id: record JSON}``. Snapshots are immutable (unique
        names), so each is parsed once per process, not once per task: a stage's tasks each look up
        one record, and parsing a 10,000-record snapshot every time would make a stage O(n²)."""
        key = (type(self.fs).__name__, path)
        cached = _SNAPSHOT_CACHE.get(key)
        if cached is None:
            try:
                records = json.loads(self.fs.cat_file(path))["records"]
            except (ValueError, KeyError, TypeError):
                records = None
            if not isinstance(records, list):
                raise StoreError(f"catalog snapshot {path} is damaged (run nncap check)")
            cached = {r["id"]: json.dumps(r).encode() for r in (_checked_record(path, r) for r in records)}
            _SNAPSHOT_CACHE[key] = cached
            while len(_SNAPSHOT_CACHE) > SNAPSHOT_CACHE_SIZE:
                _SNAPSHOT_CACHE.popitem(last=False)
        else:
            _SNAPSHOT_CACHE.move_to_end(key)
        return cached

    def records(self) -> list[dict[str, Any]]:
        """Catalog records of every published graph, sorted by id."""
        return [r for _, r in sorted(self._records().items()) if not r.get("deleted")]

    def catalog(self) -> pd.DataFrame:
        """One row per published graph: the core fields, then ``meta`` keys as extra columns."""
        rows = []
        for r in self.records():
            row = {k: r.get(k) for k in CORE_FIELDS}
            row.update({k: v for k, v in (r.get("meta") or {}).items() if k not in row})
            rows.append(row)
        df = pd.DataFrame(rows, columns=None if rows else list(CORE_FIELDS))
        return df.reset_index(drop=True)

    def record(self, graph_id: str) -> dict[str, Any]:
        rec = self._records(check_graph_id(graph_id)).get(graph_id)
        if rec is None or rec.get("deleted"):
            raise StoreError(f"no graph {graph_id!r} in {self.url}")
        return rec

    def __contains__(self, graph_id: str) -> bool:
        rec = self._records(graph_id).get(graph_id)
        return rec is not None and not rec.get("deleted")

    def pending_entries(self) -> int:
        """Catalog entries not yet folded into a snapshot (each costs one read per catalog query)."""
        return len(_ls_json(self.fs, self._path(ENTRIES)))

    def compact(self) -> int:
        """Fold all catalog entries into one snapshot (readers stay correct throughout); returns
        the number of entries folded."""
        self._require_writable()
        entries = _ls_json(self.fs, self._path(ENTRIES))
        snapshots = _ls_json(self.fs, self._path(SNAPSHOTS))
        if not entries and len(snapshots) <= 1:
            return 0
        latest = self._records()
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
        _put_atomic(self.fs, self._path(SNAPSHOTS, name),
                    json.dumps({"records": [latest[k] for k in sorted(latest)]}, sort_keys=True).encode())
        # Only files read into this snapshot are removed; newer entries stay.
        folded = set(entries) | set(snapshots)
        for path in sorted(folded):
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass  # another compaction folded and removed it first
        return len(entries)

    # -- writing -----------------------------------------------------------------------------
    def write_graph(self, graph_id: str, graph: SparseGraph, *, kind: str = "network", source: str = "",
                    provenance: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
        """Write and publish one graph; returns its catalog record.

        Idempotent: if ``graph_id`` is already published with the same content hash, nothing is
        written. A different graph under an existing id needs ``overwrite=True``. A partial group
        left by a crashed write is replaced.
        """
        self._require_writable()
        check_graph_id(graph_id)
        if kind not in KINDS:
            raise StoreError(f"kind must be one of {KINDS}, not {kind!r}")
        graph.validate()
        content_hash = graph.content_hash()
        existing = self._records(graph_id).get(graph_id)
        if existing is not None and not existing.get("deleted"):
            if existing["content_hash"] == content_hash:
                return existing
            if not overwrite:
                raise StoreError(f"graph {graph_id!r} already exists with different content "
                                 "(pass overwrite to replace it)")
            self._write_entry({"id": graph_id, "deleted": True, "published": time.time_ns()})
        P = graph.P
        csr = (P.indptr.astype(np.int64), [(P.indices, P.data)], P.indices.dtype, P.data.dtype)
        return self._write_group(graph_id, kind, graph.directed, graph.weighted, P.shape, graph.n_edges,
                                 graph.n_self_loops, csr, {"nodes": graph.node_props, "edges": graph.edge_props},
                                 content_hash, source, provenance, meta)

    def write_csr_stream(self, graph_id: str, *, shape: tuple[int, int], indptr: np.ndarray,
                         blocks: Iterable[tuple[np.ndarray, np.ndarray]], directed: bool = True,
                         weighted: bool = True, kind: str = "linegraph", source: str = "",
                         node_props: dict[str, np.ndarray] | None = None,
                         provenance: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                         index_dtype: Any = np.int64, data_dtype: Any = np.float64,
                         self_loops: int | None = None, overwrite: bool = False) -> dict[str, Any]:
        """Write and publish a graph whose CSR arrives as consecutive ``(indices, data)`` blocks in
        row order (``indptr`` known up front): memory stays bounded by a few blocks. The content hash
        is computed on the way (in a second thread, overlapping the writes), so the record is
        identical to :meth:`write_graph`'s for the same P. ``self_loops``, when the caller knows it,
        saves counting them. An existing id needs ``overwrite=True``."""
        self._require_writable()
        check_graph_id(graph_id)
        existing = self._records(graph_id).get(graph_id)
        if existing is not None and not existing.get("deleted"):
            if not overwrite:
                raise StoreError(f"graph {graph_id!r} already exists (pass overwrite to replace it)")
            self._write_entry({"id": graph_id, "deleted": True, "published": time.time_ns()})
        indptr = np.asarray(indptr, dtype=np.int64)
        if len(indptr) != shape[0] + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise StoreError(f"graph {graph_id!r}: indptr must have n_rows + 1 non-decreasing entries from 0")
        n_edges = int(indptr[-1])
        return self._write_group(graph_id, kind, directed, weighted, shape, n_edges if directed else n_edges // 2,
                                 self_loops, (indptr, blocks, np.dtype(index_dtype), np.dtype(data_dtype)),
                                 {"nodes": dict(node_props or {}), "edges": {}}, None, source, provenance, meta)

    def _write_group(self, graph_id: str, kind: str, directed: bool, weighted: bool, shape: tuple[int, int],
                     n_edges: int, self_loops: int | None,
                     csr: tuple[np.ndarray, Iterable[tuple[np.ndarray, np.ndarray]], np.dtype, np.dtype],
                     props: dict[str, dict[str, np.ndarray]], content_hash: str | None, source: str,
                     provenance: dict[str, Any] | None, meta: dict[str, Any] | None) -> dict[str, Any]:
        """Write a graph group (CSR streamed block by block), then its attrs, then the catalog entry.
        The content hash is computed on the way unless given; ``self_loops`` likewise."""
        if kind not in KINDS:
            raise StoreError(f"kind must be one of {KINDS}, not {kind!r}")
        meta = _jsonable(meta or {})
        _check_meta(meta)
        base = f"{GRAPHS}/{graph_id}"
        self._remove_group(base)
        group = zarr.open_group(store=self._zstore, path=base, mode="w", zarr_format=3)
        indptr, blocks, index_dtype, data_dtype = csr
        nnz = int(indptr[-1])
        hasher = GraphHasher(shape, directed, weighted) if content_hash is None else None
        group_csr = group.create_group("P", attributes={
            "encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": list(shape)})
        self._write_array(group_csr, "indptr", indptr)
        if hasher:
            hasher.update("indptr", indptr)
        arrays = {name: group_csr.create_array(name, shape=(nnz,), dtype=dt, chunks=self.spec.chunks((nnz,)),
                                               attributes={"encoding-type": "array", "encoding-version": "0.2.0"})
                  for name, dt in (("indices", index_dtype), ("data", data_dtype))}
        pos, loops = 0, 0
        with ThreadPoolExecutor(1) as hashing:  # one worker: blocks are hashed in order
            pending: Future[None] | None = None
            for indices, data in blocks:
                indices = np.asarray(indices, dtype=index_dtype)
                data = np.asarray(data, dtype=data_dtype)
                if len(indices) != len(data):
                    raise StoreError(f"graph {graph_id!r}: a CSR block has {len(indices)} indices but "
                                     f"{len(data)} values")
                stop = pos + len(indices)
                if stop > nnz:
                    raise StoreError(f"graph {graph_id!r}: CSR blocks hold more entries than indptr says ({nnz})")
                if hasher:
                    if pending is not None:
                        pending.result()
                    pending = hashing.submit(_hash_block, hasher, indices, data)
                if len(indices):
                    arrays["indices"][pos:stop] = indices
                    arrays["data"][pos:stop] = data
                    if self_loops is None:
                        rows = np.searchsorted(indptr, np.arange(pos, stop), side="right") - 1
                        loops += int(np.count_nonzero(rows == indices))
                pos = stop
            if pending is not None:
                pending.result()
        if pos != nnz:
            raise StoreError(f"graph {graph_id!r}: CSR blocks hold {pos} entries, indptr says {nnz}")
        for name, values in props.items():
            sub = group.create_group(name, attributes={"encoding-type": "dict", "encoding-version": "0.1.0"})
            for key in sorted(values):
                self._write_array(sub, key, values[key])
                if hasher:
                    hasher.update(f"{name}/{key}", values[key])
        digest = hasher.hexdigest() if hasher else content_hash
        attrs = {
            "encoding-type": "nncap-graph", "encoding-version": "0.1.0",
            "id": graph_id, "kind": kind, "directed": bool(directed), "weighted": bool(weighted),
            "n_nodes": int(shape[0]), "n_edges": int(n_edges), "nnz": nnz,
            "self_loops": int(loops if self_loops is None else self_loops), "source": source,
            "provenance": _jsonable(provenance or {}), "meta": meta, "content_hash": digest,
            "schema_version": SCHEMA_VERSION, "created": _now(),
        }
        group.update_attributes(attrs)  # one write, last: complete attrs mean complete arrays
        record = {k: attrs[k] for k in CORE_FIELDS}
        record.update(meta=attrs["meta"], provenance=attrs["provenance"], published=time.time_ns())
        self._write_entry(record)
        return record

    def _write_array(self, group: zarr.Group, name: str, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype.kind in "OUS":
            values = values.astype(str)
            enc = {"encoding-type": "string-array", "encoding-version": "0.2.0"}
            dtype: Any = str
        else:
            enc = {"encoding-type": "array", "encoding-version": "0.2.0"}
            dtype = values.dtype
        arr = group.create_array(name, shape=values.shape, dtype=dtype, chunks=self.spec.chunks(values.shape),
                                 attributes=enc)
        if values.size:
            arr[...] = values

    def _remove_group(self, base: str) -> None:
        path = self._path(base)
        self.fs.invalidate_cache(path)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def delete(self, graph_id: str) -> None:
        """Unpublish a graph (a tombstone entry) and remove its data."""
        self._require_writable()
        self.record(graph_id)
        self._write_entry({"id": graph_id, "deleted": True, "published": time.time_ns()})
        self._remove_group(f"{GRAPHS}/{graph_id}")

    def remove_unpublished(self, name: str) -> None:
        """Remove a graph group that has no catalog record (a partial or abandoned write)."""
        self._require_writable()
        if name in {k for k, r in self._records().items() if not r.get("deleted")}:
            raise StoreError(f"graph {name!r} is published; use delete to remove it")
        self._remove_group(f"{GRAPHS}/{check_graph_id(name)}")

    def stale_temporaries(self, min_age_s: float = 600.0) -> list[str]:
        """Temporary catalog files (``.<hex>.tmp``) older than ``min_age_s``: left by a writer killed
        between writing and renaming an entry. Readers ignore them; younger ones may be in use."""
        now = time.time()
        out = []
        for where in (ENTRIES, SNAPSHOTS):
            for e in _ls(self.fs, self._path(where), detail=True):
                name = e["name"].rsplit("/", 1)[-1]
                mtime = e.get("mtime", now)  # local files; object stores write entries in one PUT, no temporaries
                if name.startswith(".") and name.endswith(".tmp") and now - float(mtime) >= min_age_s:
                    out.append(e["name"])
        return sorted(out)

    def remove_stale_temporaries(self, min_age_s: float = 600.0) -> list[str]:
        """Delete :meth:`stale_temporaries`; returns their paths."""
        self._require_writable()
        paths = self.stale_temporaries(min_age_s)
        for path in paths:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass
        return paths

    def unpublished(self) -> list[str]:
        """Graph groups present on storage without a catalog record: partial or abandoned writes."""
        published = {k for k, r in self._records().items() if not r.get("deleted")}
        return [n for n in _subdirs(self.fs, self._path(GRAPHS)) if n not in published]

    # -- result tables -----------------------------------------------------------------------
    def write_table(self, name: str, frame: pd.DataFrame, attrs: dict[str, Any] | None = None) -> None:
        """Store a results table as ``results/<name>``: an anndata-style dataframe group (one array
        per column, ``column-order`` and the ``complete`` flag written last). Replaces a table of the
        same name."""
        self._require_writable()
        if not GRAPH_ID.match(name) or ".." in name:
            raise StoreError(f"invalid table name {name!r}")
        columns = _table_columns(frame)
        base = f"{RESULTS}/{name}"
        self._remove_group(base)
        group = zarr.open_group(store=self._zstore, path=base, mode="w", zarr_format=3)
        for col, values in columns.items():
            self._write_array(group, col, values)
        group.update_attributes({"encoding-type": "dataframe", "encoding-version": "0.2.0", "_index": "_index",
                                 "column-order": list(columns), "meta": _jsonable(attrs or {}),
                                 "created": _now(), "complete": True})

    def tables(self) -> list[str]:
        """Names of the complete results tables."""
        return [n for n in _subdirs(self.fs, self._path(RESULTS)) if self._table_attrs(n).get("complete")]

    def _table_attrs(self, name: str) -> dict[str, Any]:
        try:
            return dict(self._group(f"{RESULTS}/{name}").attrs)
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return {}

    @_reading
    def read_table(self, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        """A results table and its metadata."""
        attrs = self._table_attrs(name)
        if not attrs.get("complete"):
            raise StoreError(f"no results table {name!r} in {self.url}")
        group = self._group(f"{RESULTS}/{name}")
        frame = pd.DataFrame({c: _as_numpy(group[c][...]) for c in attrs["column-order"]})
        return frame, attrs.get("meta", {})

    # -- reading -----------------------------------------------------------------------------
    @_reading
    def group(self, graph_id: str) -> zarr.Group:
        """The Zarr group of a published graph (read-only)."""
        rec = self.record(graph_id)
        group = self._group(f"{GRAPHS}/{graph_id}")
        if group.attrs.get("content_hash") != rec["content_hash"]:
            raise StoreError(f"graph {graph_id!r}: its data and catalog record disagree (being rewritten right "
                             "now, or damaged: try again, then run nncap check)")
        return group

    @_reading
    def read_graph(self, graph_id: str) -> SparseGraph:
        """Load a whole published graph into memory."""
        group = self.group(graph_id)
        if group.attrs.get("meta", {}).get("storage") == "implicit":
            raise StoreError(f"graph {graph_id!r} is an implicit line graph: P is not materialised; "
                             "use pipeline.export.load_operator (matrix-free) or re-export with --mode explicit")
        P = self.read_csr(group)
        graph = SparseGraph(P=P, directed=bool(group.attrs["directed"]), weighted=bool(group.attrs["weighted"]),
                            node_props=self._read_dict(group, "nodes"), edge_props=self._read_dict(group, "edges"))
        return graph

    @staticmethod
    def csr_arrays(group: zarr.Group) -> tuple[zarr.Array, zarr.Array, zarr.Array, tuple[int, int]]:
        """The lazily-read (indptr, indices, data, shape) of a graph group's CSR ``P``, after checking
        that their shapes agree with each other and with the group's attributes (so that damaged
        metadata is caught before any large read)."""
        csr = group["P"]
        if csr.attrs.get("encoding-type") != "csr_matrix":
            raise StoreError(f"{csr.path} is not a csr_matrix group")
        shape = tuple(int(s) for s in csr.attrs["shape"])
        n, nnz = int(group.attrs["n_nodes"]), int(group.attrs["nnz"])
        indptr, indices, data = csr["indptr"], csr["indices"], csr["data"]
        expected = {"indptr": (n + 1,), "indices": (nnz,), "data": (nnz,)}
        for name, arr in (("indptr", indptr), ("indices", indices), ("data", data)):
            if not isinstance(arr, zarr.Array) or arr.shape != expected[name] or arr.chunks[0] > max(1, arr.shape[0]):
                raise StoreError(f"corrupt CSR in {group.path}: {name} has shape "
                                 f"{getattr(arr, 'shape', None)}, expected {expected[name]}")
        if shape != (n, n):
            raise StoreError(f"corrupt CSR in {group.path}: shape {shape}, expected {(n, n)}")
        return indptr, indices, data, shape  # type: ignore[return-value]

    @_reading
    def read_csr(self, group: zarr.Group) -> sp.csr_array:
        indptr, indices, data, shape = self.csr_arrays(group)
        ip, ix = indptr[:], indices[:]
        try:
            check_csr(ip, ix, shape)
        except InvalidGraphError as e:
            raise StoreError(f"corrupt CSR in {group.path}: {e}") from None
        P = sp.csr_array((data[:], ix, ip), shape=shape)
        P.has_sorted_indices = True
        return P

    @staticmethod
    def _read_dict(group: zarr.Group, name: str) -> dict[str, np.ndarray]:
        """Node (``nodes``) or edge (``edges``) property arrays, their lengths checked first."""
        if name not in group:
            return {}
        length = int(group.attrs["n_nodes" if name == "nodes" else "nnz"])
        out = {}
        for key, arr in sorted(group[name].arrays()):
            if not arr.shape or arr.shape[0] != length or arr.chunks[0] > max(1, arr.shape[0]):
                raise StoreError(f"{group.path}/{name}/{key} has shape {arr.shape}, expected length {length}")
            out[key] = _as_numpy(arr[...])
        return out

    @_reading
    def verify(self, graph_id: str) -> None:
        """Recompute a published graph's content hash from storage; raise StoreError on mismatch."""
        group = self.group(graph_id)
        indptr, indices, data, shape = self.csr_arrays(group)
        h = GraphHasher(shape, bool(group.attrs["directed"]), bool(group.attrs["weighted"]))
        for name, arr in (("indptr", indptr), ("indices", indices), ("data", data)):
            for block in iter_blocks(arr):
                h.update(name, block)
        for sub in ("nodes", "edges"):
            if sub in group:
                for key, arr in sorted(group[sub].arrays()):
                    for block in iter_blocks(arr):
                        h.update(f"{sub}/{key}", block)
        if h.hexdigest() != group.attrs["content_hash"]:
            raise StoreError(f"graph {graph_id!r}: stored data does not match its content hash")


def _checked_record(path: str, record: Any) -> dict[str, Any]:
    if (not isinstance(record, dict) or not isinstance(record.get("id"), str)
            or not isinstance(record.get("published"), int)):
        raise StoreError(f"catalog file {path} holds a damaged record (run nncap check)")
    return record


def _parse_record(path: str, blob: bytes) -> dict[str, Any]:
    """One catalog entry file; damage is a StoreError naming the file."""
    try:
        record = json.loads(blob)
    except ValueError:
        raise StoreError(f"catalog entry {path} is damaged: not JSON (run nncap check)") from None
    return _checked_record(path, record)


def _hash_block(hasher: GraphHasher, indices: np.ndarray, data: np.ndarray) -> None:
    hasher.update("indices", indices)
    hasher.update("data", data)


def _table_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for col in frame.columns:
        if not isinstance(col, str) or not col or "/" in col or col.startswith((".", "_")):
            raise StoreError(f"table column {col!r} is not a valid array name")
        values = frame[col].to_numpy()
        if values.dtype.kind == "O":
            values = values.astype(str)
        out[col] = values
    return out


def iter_blocks(arr: zarr.Array) -> Iterator[np.ndarray]:
    """Read a zarr array chunk-row by chunk-row (memory bounded by one chunk row); an empty array
    yields one empty block."""
    if not arr.shape[0]:
        yield _as_numpy(arr[0:0])
        return
    step = arr.chunks[0]
    for start in range(0, arr.shape[0], step):
        yield _as_numpy(arr[start:start + step])


def _as_numpy(values: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "O":
        return values.astype(str)
    return values


def _keep_latest(latest: dict[str, dict[str, Any]], rec: dict[str, Any]) -> None:
    cur = latest.get(rec["id"])
    if cur is None or rec["published"] >= cur["published"]:
        latest[rec["id"]] = rec


def _entry_id(path: str) -> str:
    """The graph id in an entry file name ``<20-digit ns>-<id>-<8 hex>.json``."""
    return path.rsplit("/", 1)[-1][21:-14]


def _ls(fs: fsspec.AbstractFileSystem, path: str, detail: bool = False) -> list[Any]:
    """A fresh listing of ``path`` (empty if it does not exist). Object-store filesystems cache
    listings per process; other processes' writes must be seen, so the cache is dropped first."""
    fs.invalidate_cache(path)
    try:
        return fs.ls(path, detail=detail)
    except FileNotFoundError:
        return []


def _subdirs(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Names of the folders directly under ``path``, sorted."""
    return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in _ls(fs, path, detail=True)
                  if e["type"] == "directory")


def _ls_json(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    names = _ls(fs, path)
    return sorted(p for p in names if p.endswith(".json") and not p.rsplit("/", 1)[-1].startswith("."))


def _put_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write a whole small file so readers see all of it or nothing: rename on local disks, a
    single PUT on object stores."""
    parent = path.rsplit("/", 1)[0]
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{uuid.uuid4().hex}.tmp"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)
    else:
        fs.pipe_file(path, data)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    """Plain JSON types only (numpy scalars become Python numbers)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


def _check_meta(meta: dict[str, Any]) -> None:
    for key, value in meta.items():
        if key in CORE_FIELDS:
            raise StoreError(f"meta key {key!r} clashes with a catalog field")
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise StoreError(f"meta value for {key!r} must be a scalar (str, number, bool), not {type(value).__name__}")

