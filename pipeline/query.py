"""Reading the store: catalog queries, whole graphs in any format, and sub-graphs read without
loading the whole graph (row blocks, k-hop neighbourhoods, node-attribute filters).

    >>> s = open_store("nncap-store.zarr")
    >>> s.query("n_nodes > 1000 and kind == 'network'")      # pandas DataFrame
    >>> s.load("power", "pyg")                                # torch_geometric.data.Data
    >>> s.graph("power").khop([0, 1], k=2).graph              # SparseGraph of the neighbourhood
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Iterable, Literal, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphs import formats
from graphs.graph import SparseGraph
from pipeline.errors import NncapError
from pipeline.store import Store

Format = Literal["graph", "scipy", "torch", "pyg", "graph-tool", "networkx"]
FORMATS = ("graph", "scipy", "torch", "pyg", "graph-tool", "networkx")
_ALLOWED_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
                  ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Name, ast.Load,
                  ast.Constant, ast.List, ast.Tuple, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div)


class QueryError(NncapError):
    """A malformed or unanswerable query."""


def open_store(url: str, storage_options: dict[str, Any] | None = None) -> "StoreReader":
    """Open a store read-only for queries."""
    return StoreReader(Store(url, mode="r", storage_options=storage_options))


def filter_frame(df: pd.DataFrame, where: str | None, what: str = "graph") -> pd.DataFrame:
    """Rows of ``df`` matching ``where``: comparisons of column names with literals joined by
    ``and``/``or``/``not`` (e.g. ``n_nodes > 1000 and kind == 'network'``); nothing else is evaluated."""
    if not where:
        return df
    try:
        tree = ast.parse(where, mode="eval")
    except SyntaxError as e:
        raise QueryError(f"cannot parse --where {where!r}: {e.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise QueryError(f"--where supports comparisons joined by and/or/not; "
                             f"{type(node).__name__} is not allowed in {where!r}")
        if isinstance(node, ast.Name) and node.id not in df.columns:
            raise QueryError(f"unknown {what} field {node.id!r} in --where; fields: {', '.join(map(str, df.columns))}")
    if df.empty:
        return df
    try:
        mask = df.eval(where, engine="python")
    except Exception as e:  # pandas type errors, e.g. comparing a string column with a number
        raise QueryError(f"cannot evaluate --where {where!r}: {e}") from None
    if not (isinstance(mask, pd.Series) and mask.dtype == bool):
        raise QueryError(f"--where {where!r} must be a condition (true/false per {what})")
    return df[mask]


class StoreReader:
    """Read-only access to a store's catalog and graphs."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def url(self) -> str:
        return self.store.url

    def query(self, where: str | None = None) -> pd.DataFrame:
        """Catalog rows matching ``where`` (see :func:`filter_frame`); answered from the catalog
        alone, without opening any graph."""
        return filter_frame(self.store.catalog(), where).reset_index(drop=True)

    def ids(self, where: str | None = None) -> list[str]:
        return list(self.query(where)["id"])

    def graph(self, graph_id: str) -> "StoredGraph":
        """A lazy handle: nothing but metadata is read until asked."""
        return StoredGraph(self.store, graph_id)

    def load(self, graph_id: str, format: Format = "graph", device: str = "auto") -> Any:
        """A whole graph as ``graph`` (SparseGraph), ``scipy``, ``torch`` (sparse CSR on ``device``),
        ``pyg``, ``graph-tool`` or ``networkx``."""
        return convert(self.store.read_graph(graph_id), format, device)

    def pyg(self) -> tuple[Any, Any]:
        """PyG's remote-backend pair ``(feature_store, graph_store)`` over this store."""
        from pipeline.pyg_store import ZarrFeatureStore, ZarrGraphStore

        return ZarrFeatureStore(self.store), ZarrGraphStore(self.store)


def convert(graph: SparseGraph, format: Format, device: str = "auto") -> Any:
    if format == "graph":
        return graph
    if format == "scipy":
        return formats.to_scipy(graph)
    if format == "torch":
        return formats.to_torch(graph, device)
    if format == "pyg":
        return formats.to_pyg(graph, "cpu" if device == "auto" else device)
    if format == "graph-tool":
        return formats.to_graph_tool(graph)
    if format == "networkx":
        return formats.to_networkx(graph)
    raise QueryError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")


class Subgraph(NamedTuple):
    """An induced sub-graph and, for each of its nodes, the node id in the stored graph."""

    graph: SparseGraph
    nodes: np.ndarray


@dataclass
class StoredGraph:
    """A published graph on storage; its methods read only the chunks they need."""

    store: Store
    graph_id: str

    def __post_init__(self) -> None:
        self._group = self.store.group(self.graph_id)
        self.indptr_array, self.indices_array, self.data_array, self.shape = Store.csr_arrays(self._group)
        self._indptr: np.ndarray | None = None

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    @property
    def n_nodes(self) -> int:
        return int(self.shape[0])

    @property
    def directed(self) -> bool:
        return bool(self._group.attrs["directed"])

    def node_property_names(self) -> list[str]:
        return sorted(k for k, _ in self._group["nodes"].arrays()) if "nodes" in self._group else []

    def edge_property_names(self) -> list[str]:
        return sorted(k for k, _ in self._group["edges"].arrays()) if "edges" in self._group else []

    def node_properties(self, names: Iterable[str] | None = None, nodes: np.ndarray | None = None) -> pd.DataFrame:
        """Node properties (all, or ``names``) for all nodes or the given node ids; 2-D properties
        become columns ``name[0]``, ``name[1]``, …"""
        names = list(names) if names is not None else self.node_property_names()
        cols: dict[str, Any] = {}
        for name in names:
            if name not in self.node_property_names():
                raise QueryError(f"graph {self.graph_id!r} has no node property {name!r}; "
                                 f"have: {', '.join(self.node_property_names()) or 'none'}")
            arr = self._group["nodes"][name]
            values = np.asarray(arr[...] if nodes is None else arr.oindex[np.asarray(nodes, np.int64)])
            values = values.astype(str) if values.dtype.kind == "O" else values
            if values.ndim == 2:
                cols.update({f"{name}[{k}]": values[:, k] for k in range(values.shape[1])})
            else:
                cols[name] = values
        index = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes, np.int64)
        return pd.DataFrame(cols, index=pd.Index(index, name="node"))

    def load(self, format: Format = "graph", device: str = "auto") -> Any:
        return convert(self.store.read_graph(self.graph_id), format, device)

    # -- partial reads -------------------------------------------------------------------------
    def indptr(self) -> np.ndarray:
        """The row pointer (n+1 int64: 8 bytes per node, never the edges); cached."""
        if self._indptr is None:
            self._indptr = np.asarray(self.indptr_array[:], dtype=np.int64)
        return self._indptr

    def rows(self, start: int, stop: int) -> sp.csr_array:
        """Rows ``start:stop`` of P (the in-edges of those receivers), shape ``(stop-start, n)``."""
        n = self.n_nodes
        if not 0 <= start <= stop <= n:
            raise QueryError(f"row block {start}:{stop} outside [0, {n}]")
        ptr = np.asarray(self.indptr_array[start:stop + 1], dtype=np.int64)
        a, b = int(ptr[0]), int(ptr[-1])
        return sp.csr_array((self.data_array[a:b], self.indices_array[a:b], ptr - a), shape=(stop - start, n))

    def _row_entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, positions into indices/data) of every entry of the given sorted rows."""
        ptr = self.indptr()
        starts, stops = ptr[rows], ptr[rows + 1]
        lens = stops - starts
        pos = _ranges(starts, lens)
        return np.repeat(rows, lens), pos, lens

    def in_neighbours(self, nodes: np.ndarray) -> np.ndarray:
        """Sources of edges into ``nodes`` (columns of their rows), reading only those rows."""
        _, pos, _ = self._row_entries(np.unique(np.asarray(nodes, np.int64)))
        return np.unique(gather(self.indices_array, pos).astype(np.int64))

    def out_neighbours(self, nodes: np.ndarray) -> np.ndarray:
        """Targets of edges out of ``nodes``. For directed graphs this streams the column index
        array chunk by chunk (O(edges) reading, O(chunk) memory); undirected graphs read rows only."""
        nodes = np.unique(np.asarray(nodes, np.int64))
        if not self.directed:
            return self.in_neighbours(nodes)
        ptr = self.indptr()
        found = []
        step = self.indices_array.chunks[0]
        for a in range(0, int(ptr[-1]), step):
            block = np.asarray(self.indices_array[a:a + step], dtype=np.int64)
            hit = np.flatnonzero(np.isin(block, nodes, assume_unique=False))
            if len(hit):
                found.append(np.searchsorted(ptr, a + hit, side="right") - 1)
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def khop(self, nodes: Iterable[int], k: int = 1, direction: Literal["in", "out", "both"] = "both") -> Subgraph:
        """The sub-graph induced by everything within ``k`` hops of ``nodes``. ``in`` follows edges
        backwards to their sources (reads only the visited rows), ``out`` forwards, ``both`` either."""
        seeds = self._check_nodes(nodes)
        if direction not in ("in", "out", "both"):
            raise QueryError(f"direction must be in, out or both, not {direction!r}")
        if k < 0:
            raise QueryError("k must be >= 0")
        visited = seeds
        frontier = seeds
        for _ in range(k):
            if not len(frontier):
                break
            nxt = []
            if direction in ("in", "both"):
                nxt.append(self.in_neighbours(frontier))
            if direction in ("out", "both") and (self.directed or direction == "out"):
                nxt.append(self.out_neighbours(frontier))
            reached = np.unique(np.concatenate(nxt))
            frontier = np.setdiff1d(reached, visited, assume_unique=True)
            visited = np.union1d(visited, frontier)
        return self.induced(visited)

    def filter_nodes(self, where: str) -> Subgraph:
        """The sub-graph induced by nodes whose properties satisfy ``where`` (same grammar as the
        catalog query, over node property names; ``node`` is the node id)."""
        names = [n for n in self.node_property_names() if n in where]
        frame = self.node_properties(names).reset_index()
        selected = filter_frame(frame, where, what="node")
        return self.induced(selected["node"].to_numpy(np.int64))

    def induced(self, nodes: Iterable[int]) -> Subgraph:
        """The sub-graph on ``nodes`` (sorted, deduplicated), with their node and edge properties."""
        nodes = self._check_nodes(nodes)
        row, pos, _ = self._row_entries(nodes)
        cols = gather(self.indices_array, pos).astype(np.int64)
        keep = np.isin(cols, nodes)
        pos, row, cols = pos[keep], row[keep], cols[keep]
        new_row, new_col = np.searchsorted(nodes, row), np.searchsorted(nodes, cols)
        m = len(nodes)
        indptr = np.zeros(m + 1, np.int64)
        np.cumsum(np.bincount(new_row, minlength=m), out=indptr[1:])
        P = sp.csr_array((gather(self.data_array, pos), new_col.astype(np.int32), indptr), shape=(m, m))
        P.has_sorted_indices = True
        node_props = {k: gather(self._group["nodes"][k], nodes) for k in self.node_property_names()}
        edge_props = {k: gather(self._group["edges"][k], pos) for k in self.edge_property_names()}
        g = SparseGraph(P=P, directed=self.directed, weighted=bool(self._group.attrs["weighted"]),
                        node_props=node_props, edge_props=edge_props)
        return Subgraph(g.validate(), nodes)

    def _check_nodes(self, nodes: Iterable[int]) -> np.ndarray:
        arr = np.unique(np.asarray(list(nodes) if not isinstance(nodes, np.ndarray) else nodes, dtype=np.int64))
        if len(arr) and (arr[0] < 0 or arr[-1] >= self.n_nodes):
            raise QueryError(f"node ids must lie in [0, {self.n_nodes}) for graph {self.graph_id!r}")
        return arr


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each pair, vectorised."""
    total = int(lens.sum())
    if not total:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return offsets + np.arange(total, dtype=np.int64)


def gather(arr: Any, positions: np.ndarray) -> np.ndarray:
    """``arr[positions]`` for a 1-D zarr array, reading each needed chunk once (runs of adjacent
    chunks in one request) instead of one request per position."""
    positions = np.asarray(positions, np.int64)
    if not len(positions):
        empty = np.asarray(arr[0:0])
        return empty.astype(str) if empty.dtype.kind == "O" else empty
    C = arr.chunks[0]
    chunk_ids = np.unique(positions // C)
    run_start = np.concatenate([[True], np.diff(chunk_ids) > 1])
    firsts = chunk_ids[run_start]
    lasts = chunk_ids[np.concatenate([np.flatnonzero(run_start)[1:] - 1, [len(chunk_ids) - 1]])]
    blocks, base = [], []
    offset = 0
    for f, l in zip(firsts, lasts):
        block = np.asarray(arr[f * C:(l + 1) * C])
        blocks.append(block)
        base.append(offset - f * C)
        offset += len(block)
    buf = np.concatenate(blocks)
    run = np.searchsorted(firsts * C, positions, side="right") - 1
    out = buf[np.asarray(base)[run] + positions]
    return out.astype(str) if out.dtype.kind == "O" else out

