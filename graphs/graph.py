"""The in-memory graph: a canonical sparse adjacency P plus node and edge property arrays.

Convention everywhere: ``P[i, j]`` is the effect of node j on node i (row = receiver).
An edge ``j -> i`` ("j drives i") is stored at ``P[i, j]``. Undirected graphs are stored as a
symmetric P (each edge at ``[i, j]`` and ``[j, i]``; a self-loop once, on the diagonal).
Canonical means CSR with sorted column indices and no duplicate entries; explicit zero weights are
kept (a zero-weight edge is still an edge).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np
import scipy.sparse as sp

DuplicatePolicy = Literal["sum", "max", "min", "first", "error"]
SelfLoopPolicy = Literal["keep", "drop", "error"]
NonFinitePolicy = Literal["error", "drop"]
DUPLICATE_POLICIES = ("sum", "max", "min", "first", "error")
SELF_LOOP_POLICIES = ("keep", "drop", "error")
NONFINITE_POLICIES = ("error", "drop")


class InvalidGraphError(ValueError):
    """Input that cannot become a valid graph; the message names the problem in one line."""


@dataclass
class SparseGraph:
    """A graph as canonical CSR ``P`` (row = receiver) with aligned property arrays.

    ``node_props[name]`` has length ``n_nodes`` along axis 0; ``edge_props[name]`` has length
    ``P.nnz`` and follows the order of ``P.data`` (row-major CSR order).
    """

    P: sp.csr_array
    directed: bool
    weighted: bool
    node_props: dict[str, np.ndarray] = field(default_factory=dict)
    edge_props: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return int(self.P.shape[0])

    @property
    def nnz(self) -> int:
        """Stored entries of P (an undirected edge between two nodes counts twice)."""
        return int(self.P.nnz)

    @property
    def n_self_loops(self) -> int:
        return int(_diagonal_mask(self.P).sum())

    @property
    def n_edges(self) -> int:
        """Edges of the graph: nnz for directed graphs, unordered pairs for undirected ones."""
        if self.directed:
            return self.nnz
        return (self.nnz + self.n_self_loops) // 2

    def validate(self) -> "SparseGraph":
        """Check the CSR invariants, property shapes and (undirected) symmetry; return self."""
        check_csr(self.P.indptr, self.P.indices, self.P.shape, nnz=self.P.nnz)
        if self.P.shape[0] != self.P.shape[1]:
            raise InvalidGraphError(f"P must be square, got shape {self.P.shape}")
        if self.P.dtype.kind not in "fiu":
            raise InvalidGraphError(f"P must have numeric weights, got dtype {self.P.dtype}")
        if not np.all(np.isfinite(self.P.data)):
            raise InvalidGraphError("P has NaN or infinite weights")
        if not self.weighted and np.any(self.P.data != 1):
            raise InvalidGraphError("an unweighted graph must have all weights 1")
        for name, values in self.node_props.items():
            _check_prop_name(name)
            if len(values) != self.n_nodes:
                raise InvalidGraphError(
                    f"node property {name!r} has {len(values)} values for {self.n_nodes} nodes")
        for name, values in self.edge_props.items():
            _check_prop_name(name)
            if len(values) != self.nnz:
                raise InvalidGraphError(
                    f"edge property {name!r} has {len(values)} values for {self.nnz} stored edges")
        if not self.directed:
            T = self.P.T.tocsr()
            T.sort_indices()
            if not (np.array_equal(T.indptr, self.P.indptr) and np.array_equal(T.indices, self.P.indices)
                    and np.array_equal(T.data, self.P.data)):
                raise InvalidGraphError("an undirected graph must have a symmetric P")
        return self

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(source, target) int64 arrays of every stored entry, in CSR order (source = column)."""
        rows = np.repeat(np.arange(self.n_nodes, dtype=np.int64), np.diff(self.P.indptr))
        return self.P.indices.astype(np.int64), rows

    def content_hash(self) -> str:
        """sha256 of the canonical content (see docs/store-format.md, "Content hash")."""
        h = GraphHasher(self.P.shape, self.directed, self.weighted)
        h.update("indptr", self.P.indptr)
        h.update("indices", self.P.indices)
        h.update("data", self.P.data)
        for name in sorted(self.node_props):
            h.update(f"nodes/{name}", self.node_props[name])
        for name in sorted(self.edge_props):
            h.update(f"edges/{name}", self.edge_props[name])
        return h.hexdigest()

    def equals(self, other: "SparseGraph") -> bool:
        """Exact equality of structure, weights, flags and properties."""
        return self.content_hash() == other.content_hash()


def _diagonal_mask(P: sp.csr_array) -> np.ndarray:
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    return rows == P.indices


def _check_prop_name(name: str) -> None:
    if not name or "/" in name or name.startswith(".") or name.startswith("__"):
        raise InvalidGraphError(f"invalid property name {name!r}")


def check_csr(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int], nnz: int | None = None,
              sorted_unique: bool = True) -> None:
    """Raise InvalidGraphError unless (indptr, indices) is a valid canonical CSR structure of ``shape``."""
    n_rows, n_cols = shape
    if len(indptr) != n_rows + 1:
        raise InvalidGraphError(f"indptr has length {len(indptr)}, expected {n_rows + 1}")
    if n_rows + 1 and indptr[0] != 0:
        raise InvalidGraphError("indptr must start at 0")
    d = np.diff(indptr)
    if np.any(d < 0):
        raise InvalidGraphError(f"indptr decreases at row {int(np.argmax(d < 0))}")
    total = int(indptr[-1]) if len(indptr) else 0
    if total != len(indices) or (nnz is not None and total != nnz):
        raise InvalidGraphError(f"indptr ends at {total} but there are {len(indices)} indices")
    if len(indices):
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n_cols:
            raise InvalidGraphError(f"column index {lo if lo < 0 else hi} out of range [0, {n_cols})")
    if sorted_unique and len(indices) > 1:
        step = np.diff(indices.astype(np.int64))
        row_start = np.zeros(len(indices), dtype=bool)
        row_start[indptr[1:-1][indptr[1:-1] < len(indices)]] = True
        bad = (step <= 0) & ~row_start[1:]
        if np.any(bad):
            k = int(np.argmax(bad)) + 1
            row = int(np.searchsorted(indptr, k, side="right") - 1)
            raise InvalidGraphError(f"column indices of row {row} are unsorted or duplicated")


class GraphHasher:
    """Incremental content hash: one sha256 per named array (fed in order, any chunking), combined
    with shape and flags. Arrays are hashed in a canonical dtype so int32/int64 storage agrees."""

    def __init__(self, shape: tuple[int, int], directed: bool, weighted: bool):
        self._header = {"shape": [int(shape[0]), int(shape[1])], "directed": bool(directed),
                        "weighted": bool(weighted)}
        self._parts: dict[str, "hashlib._Hash"] = {}
        self._kinds: dict[str, str] = {}

    def update(self, name: str, values: np.ndarray) -> None:
        values = np.asarray(values)
        h = self._parts.setdefault(name, hashlib.sha256())
        if values.dtype.kind in "OUST":
            kind = "str"
            for s in values.ravel():
                b = str(s).encode("utf-8")
                h.update(len(b).to_bytes(8, "little"))
                h.update(b)
        else:
            kind, canon = _canonical_numeric(values)
            h.update(np.ascontiguousarray(canon).view(np.uint8))
        kinds = self._kinds.setdefault(name, f"{kind}{list(values.shape[1:])}")
        if kinds != f"{kind}{list(values.shape[1:])}":
            raise InvalidGraphError(f"array {name!r} fed to the hash with inconsistent dtype or shape")

    def hexdigest(self) -> str:
        summary = dict(self._header)
        summary["arrays"] = {k: [self._kinds[k], self._parts[k].hexdigest()] for k in sorted(self._parts)}
        return hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()


def _canonical_numeric(values: np.ndarray) -> tuple[str, np.ndarray]:
    if values.dtype.kind == "b":
        return "bool", values.astype("|u1")
    if values.dtype.kind in "iu":
        return "int", values.astype("<i8")
    if values.dtype.kind == "f":
        return "float", values.astype("<f8")
    raise InvalidGraphError(f"cannot hash arrays of dtype {values.dtype}")


def from_edges(
    source: np.ndarray,
    target: np.ndarray,
    n_nodes: int,
    *,
    weight: np.ndarray | None = None,
    directed: bool = True,
    duplicates: DuplicatePolicy = "sum",
    self_loops: SelfLoopPolicy = "keep",
    nonfinite: NonFinitePolicy = "error",
    signed: bool = False,
    node_props: Mapping[str, np.ndarray] | None = None,
    edge_props: Mapping[str, np.ndarray] | None = None,
    node_names: np.ndarray | None = None,
) -> tuple[SparseGraph, dict[str, int]]:
    """Build a canonical SparseGraph from an edge list ``source -> target`` (P[target, source] = w).

    Undirected input is symmetrised; (u, v) and (v, u) are the same undirected edge. Parallel
    edges are merged by ``duplicates`` (``sum`` gives the multigraph's adjacency, which counts
    multiplicity, so an unweighted multigraph becomes weighted); numeric edge properties are merged by the same rule and non-numeric ones must not
    be merged. ``weight=None`` means unweighted (all ones before merging). Negative weights need
    ``signed=True``. NaN or infinite weights are an error, or with ``nonfinite="drop"`` their edges
    are dropped. ``node_names`` (labels for error messages) is not stored. Returns the graph and
    counts ``{"input_edges", "merged_duplicates", "self_loops", "dropped_self_loops", "dropped_nonfinite"}``.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise InvalidGraphError(f"unknown duplicate policy {duplicates!r}; choose from {DUPLICATE_POLICIES}")
    if nonfinite not in NONFINITE_POLICIES:
        raise InvalidGraphError(f"unknown non-finite weight policy {nonfinite!r}; choose from {NONFINITE_POLICIES}")
    if self_loops not in SELF_LOOP_POLICIES:
        raise InvalidGraphError(f"unknown self-loop policy {self_loops!r}; choose from {SELF_LOOP_POLICIES}")
    src = np.asarray(source, dtype=np.int64).ravel()
    dst = np.asarray(target, dtype=np.int64).ravel()
    if src.shape != dst.shape:
        raise InvalidGraphError(f"{len(src)} sources but {len(dst)} targets")
    n_nodes = int(n_nodes)
    if n_nodes < 0:
        raise InvalidGraphError("the number of nodes must be non-negative")
    m = len(src)
    label = (lambda v: repr(str(node_names[v]))) if node_names is not None else (lambda v: str(int(v)))
    if m and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n_nodes):
        bad = int(np.argmax((src < 0) | (dst < 0) | (src >= n_nodes) | (dst >= n_nodes)))
        raise InvalidGraphError(f"edge {bad} ({src[bad]} -> {dst[bad]}) names a node outside [0, {n_nodes})")
    weighted = weight is not None
    w = np.ones(m) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
    if len(w) != m:
        raise InvalidGraphError(f"{len(w)} weights for {m} edges")
    eprops = {k: np.asarray(v) for k, v in (edge_props or {}).items()}
    for k, v in eprops.items():
        _check_prop_name(k)
        if len(v) != m:
            raise InvalidGraphError(f"edge property {k!r} has {len(v)} values for {m} edges")
    finite = np.isfinite(w)
    n_nonfinite = int(m - finite.sum())
    if n_nonfinite and nonfinite == "error":
        bad = int(np.argmax(~finite))
        raise InvalidGraphError(f"edge {label(src[bad])} -> {label(dst[bad])} has weight {w[bad]} "
                                "(drop such edges with nonfinite='drop')")
    if n_nonfinite:
        src, dst, w = src[finite], dst[finite], w[finite]
        eprops = {k: v[finite] for k, v in eprops.items()}
    if not signed and np.any(w < 0):
        bad = int(np.argmax(w < 0))
        raise InvalidGraphError(
            f"edge {label(src[bad])} -> {label(dst[bad])} has negative weight {w[bad]} (allow with signed=True)")

    loops = src == dst
    n_loops = int(loops.sum())
    dropped = 0
    if n_loops and self_loops == "error":
        v = int(src[np.argmax(loops)])
        raise InvalidGraphError(f"self-loop at node {label(v)} (policy self_loops='error')")
    if n_loops and self_loops == "drop":
        keep = ~loops
        src, dst, w = src[keep], dst[keep], w[keep]
        eprops = {k: v[keep] for k, v in eprops.items()}
        dropped, n_loops = n_loops, 0

    # Receiver-major keys; undirected edges are first folded onto row >= col.
    row, col = dst, src
    if not directed:
        row, col = np.maximum(src, dst), np.minimum(src, dst)
    order = np.lexsort((col, row))
    row, col, w = row[order], col[order], w[order]
    eprops = {k: v[order] for k, v in eprops.items()}
    new = np.ones(len(row), dtype=bool)
    if len(row) > 1:
        new[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    n_merged = int(len(row) - new.sum())
    if n_merged:
        if duplicates == "error":
            k = int(np.argmax(~new))
            arrow = "->" if directed else "--"
            raise InvalidGraphError(
                f"duplicate edge {label(col[k])} {arrow} {label(row[k])} (policy duplicates='error')")
        starts = np.flatnonzero(new)
        w = _merge(w, starts, duplicates)
        weighted = weighted or bool(np.any(w != 1))  # summed parallel edges: multiplicities are weights
        for k, v in eprops.items():
            if v.dtype.kind not in "biuf":
                raise InvalidGraphError(f"cannot merge duplicate edges: edge property {k!r} is not numeric")
            eprops[k] = _merge(v, starts, duplicates)
        row, col = row[starts], col[starts]

    if not directed:
        off = row != col
        row, col = np.concatenate([row, col[off]]), np.concatenate([col, row[off]])
        w = np.concatenate([w, w[off]])
        eprops = {k: np.concatenate([v, v[off]]) for k, v in eprops.items()}
        order = np.lexsort((col, row))
        row, col, w = row[order], col[order], w[order]
        eprops = {k: v[order] for k, v in eprops.items()}

    idx_dtype = np.int32 if n_nodes < 2**31 else np.int64
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n_nodes), out=indptr[1:])
    P = sp.csr_array((w, col.astype(idx_dtype), indptr), shape=(n_nodes, n_nodes))
    P.has_sorted_indices = True
    graph = SparseGraph(P=P, directed=directed, weighted=weighted,
                        node_props={k: np.asarray(v) for k, v in (node_props or {}).items()},
                        edge_props=eprops)
    graph.validate()
    counts = {"input_edges": m, "merged_duplicates": n_merged, "self_loops": n_loops,
              "dropped_self_loops": dropped, "dropped_nonfinite": n_nonfinite}
    return graph, counts


def _merge(values: np.ndarray, starts: np.ndarray, policy: str) -> np.ndarray:
    if policy == "first":
        return values[starts]
    ufunc = {"sum": np.add, "max": np.maximum, "min": np.minimum}[policy]
    return ufunc.reduceat(values, starts, axis=0)


def from_csr(P: sp.spmatrix | sp.sparray, *, directed: bool | None = None, weighted: bool = True,
             node_props: Mapping[str, np.ndarray] | None = None,
             edge_props: Mapping[str, np.ndarray] | None = None) -> SparseGraph:
    """Wrap a scipy sparse matrix (any format) as a canonical SparseGraph.

    ``directed=None`` infers it: a symmetric P is undirected. Duplicate entries are summed (scipy's
    rule); edge properties, if given, must follow the canonical CSR order of the result.
    """
    if not sp.issparse(P):
        raise InvalidGraphError(f"expected a scipy sparse matrix, got {type(P).__name__}")
    A = sp.csr_array(P, copy=True)
    A.sum_duplicates()
    A.sort_indices()
    if directed is None:
        directed = not is_symmetric(A)
    g = SparseGraph(P=A, directed=directed, weighted=weighted,
                    node_props={k: np.asarray(v) for k, v in (node_props or {}).items()},
                    edge_props={k: np.asarray(v) for k, v in (edge_props or {}).items()})
    return g.validate()


def is_symmetric(A: sp.csr_array) -> bool:
    """Whether a CSR matrix equals its transpose exactly (structure and values)."""
    T = A.T.tocsr()
    T.sort_indices()
    return (np.array_equal(T.indptr, A.indptr) and np.array_equal(T.indices, A.indices)
            and np.array_equal(T.data, A.data))
