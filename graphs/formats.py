"""Lossless conversions between SparseGraph and scipy, torch sparse, PyG ``Data``, graph-tool and networkx.

Direction convention: ``P[i, j]`` (row = receiver) is the edge ``j -> i``. So PyG's
``edge_index = [source, target] = [P.indices, row]``, graph-tool's ``add_edge(j, i)`` and networkx's
``G.add_edge(j, i)``; graph-tool's own ``adjacency(g)[target, source]`` agrees with P.
Weights travel as ``edge_weight`` (PyG) or the ``weight`` edge property (graph-tool, networkx);
an unweighted graph carries none. Other edge properties travel as ``edge_<name>`` (PyG) or under
their own names; node properties under their own names.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from graphs.graph import InvalidGraphError, SparseGraph, from_csr, from_edges

if TYPE_CHECKING:
    import torch

Device = Literal["auto", "cpu", "cuda"] | str
_PYG_RESERVED = {"edge_index", "edge_weight", "num_nodes", "directed"}


def resolve_device(device: Device = "auto") -> "torch.device":
    """``auto`` picks CUDA when available, else CPU; an explicit ``cuda`` without a GPU is an error."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidGraphError("device 'cuda' requested but no CUDA GPU is available (use --device auto or cpu)")
    return dev


# scipy ---------------------------------------------------------------------------------------

def to_scipy(graph: SparseGraph) -> sp.csr_array:
    """The canonical CSR P (row = receiver); a copy."""
    return graph.P.copy()


def from_scipy(P: Any, *, directed: bool | None = None, weighted: bool = True) -> SparseGraph:
    return from_csr(P, directed=directed, weighted=weighted)


# torch ---------------------------------------------------------------------------------------

def to_torch(graph: SparseGraph | sp.sparray | sp.spmatrix, device: Device = "auto",
             dtype: "torch.dtype | None" = None) -> "torch.Tensor":
    """P as a ``torch.sparse_csr_tensor`` (int64 indices) on ``device``; weights keep their dtype
    unless ``dtype`` is given."""
    import torch

    P = graph.P if isinstance(graph, SparseGraph) else sp.csr_array(graph)
    dev = resolve_device(device)
    values = torch.from_numpy(np.ascontiguousarray(P.data))
    if dtype is not None:
        values = values.to(dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(P.indptr.astype(np.int64)), torch.from_numpy(P.indices.astype(np.int64)),
            values, size=P.shape).to(dev)


def from_torch(tensor: "torch.Tensor", *, directed: bool | None = None, weighted: bool = True) -> SparseGraph:
    """A torch sparse (CSR or COO) or dense square tensor back to a SparseGraph."""
    import torch

    t = tensor.detach().cpu()
    if t.layout == torch.sparse_csr:
        P = sp.csr_array((t.values().numpy(), t.col_indices().numpy(), t.crow_indices().numpy()),
                         shape=tuple(t.shape))
    elif t.layout == torch.sparse_coo:
        t = t.coalesce()
        i = t.indices().numpy()
        P = sp.csr_array((t.values().numpy(), (i[0], i[1])), shape=tuple(t.shape))
    elif t.layout == torch.strided:
        P = sp.csr_array(t.numpy())
    else:
        raise InvalidGraphError(f"unsupported torch layout {t.layout}")
    return from_csr(P, directed=directed, weighted=weighted)


# PyG -----------------------------------------------------------------------------------------

def to_pyg(graph: SparseGraph, device: Device = "cpu") -> "Any":
    """A ``torch_geometric.data.Data`` with ``edge_index`` (source, target), ``edge_weight``
    (weighted graphs only), node properties, ``edge_<name>`` edge properties and ``directed``."""
    import torch
    from torch_geometric.data import Data

    dev = resolve_device(device)
    src, dst = graph.edges()
    data = Data(edge_index=torch.from_numpy(np.stack([src, dst])).to(dev), num_nodes=graph.n_nodes)
    data.directed = graph.directed
    if graph.weighted:
        data.edge_weight = torch.from_numpy(graph.P.data.copy()).to(dev)
    for name, values in graph.node_props.items():
        if name in _PYG_RESERVED or name.startswith("edge_"):
            raise InvalidGraphError(f"node property {name!r} clashes with PyG's edge attribute names")
        data[name] = _to_tensor_or_list(values, dev)
    for name, values in graph.edge_props.items():
        data[f"edge_{name}"] = _to_tensor_or_list(values, dev)
    return data


def _to_tensor_or_list(values: np.ndarray, dev: "torch.device") -> Any:
    import torch

    if values.dtype.kind in "biuf":
        return torch.from_numpy(np.ascontiguousarray(values)).to(dev)
    return [str(v) for v in values]


def from_pyg(data: Any, *, directed: bool | None = None) -> SparseGraph:
    """A PyG ``Data`` back to a SparseGraph; ``directed`` defaults to ``data.directed`` if present,
    else to whether the edge set is asymmetric."""
    import torch

    n = int(data.num_nodes)
    ei = data.edge_index.detach().cpu().numpy().astype(np.int64)
    weight = data.edge_weight.detach().cpu().numpy() if data.get("edge_weight") is not None else None
    node_props, edge_props = {}, {}
    for key in data.keys():
        if key in _PYG_RESERVED:
            continue
        value = data[key]
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=str)
        if key.startswith("edge_"):
            edge_props[key[len("edge_"):]] = arr
        else:
            node_props[key] = arr
    if directed is None:
        directed = data.directed if "directed" in data else None
    if directed is None:
        w = np.ones(ei.shape[1]) if weight is None else weight
        directed = not _is_symmetric_coo(ei[1], ei[0], w, n)
    if not directed:
        keep = ei[0] <= ei[1]
        ei, weight = ei[:, keep], (weight[keep] if weight is not None else None)
        edge_props = {k: v[keep] for k, v in edge_props.items()}
    graph, _ = from_edges(ei[0], ei[1], n, weight=weight, directed=directed, duplicates="error",
                          signed=True, node_props=node_props, edge_props=edge_props)
    return graph


def _is_symmetric_coo(row: np.ndarray, col: np.ndarray, w: np.ndarray, n: int) -> bool:
    A = sp.csr_array((w, (row, col)), shape=(n, n))
    return (abs(A - A.T)).nnz == 0 if A.nnz else True


# graph-tool ----------------------------------------------------------------------------------

_GT_SCALAR = {"b": "bool", "i": "int64_t", "u": "int64_t", "f": "double"}


def to_graph_tool(graph: SparseGraph) -> "Any":
    """A ``graph_tool.Graph``: edge ``j -> i`` per entry P[i, j] (undirected: one edge per pair), a
    ``weight`` edge property for weighted graphs, and the node/edge properties."""
    gt = _graph_tool()
    src, dst = graph.edges()
    keep = slice(None) if graph.directed else src <= dst
    g = gt.Graph(directed=graph.directed)
    g.add_vertex(graph.n_nodes)
    eprops = []
    if graph.weighted:
        eprops.append(("weight", graph.P.data))
    eprops += [(k, v) for k, v in graph.edge_props.items()]
    props = []
    for name, values in eprops:
        if values.dtype.kind not in _GT_SCALAR or values.ndim != 1:
            raise InvalidGraphError(f"edge property {name!r} of dtype {values.dtype} has no graph-tool type")
        p = g.new_edge_property(_GT_SCALAR[values.dtype.kind])
        g.edge_properties[name] = p
        props.append(p)
    columns = [src[keep], dst[keep]] + [np.asarray(v)[keep].astype(np.float64) for _, v in eprops]
    if len(columns[0]):
        g.add_edge_list(np.column_stack(columns), eprops=props)
    for name, values in graph.node_props.items():
        g.vertex_properties[name] = _gt_vertex_property(g, name, values)
    return g


def _gt_vertex_property(g: Any, name: str, values: np.ndarray) -> Any:
    if values.ndim == 2 and values.dtype.kind == "f":
        p = g.new_vertex_property("vector<double>")
        p.set_2d_array(np.ascontiguousarray(values.T))
        return p
    if values.ndim == 1 and values.dtype.kind in _GT_SCALAR:
        p = g.new_vertex_property(_GT_SCALAR[values.dtype.kind])
        p.a[:] = values
        return p
    if values.ndim == 1 and values.dtype.kind in "OUS":
        p = g.new_vertex_property("string")
        for v, s in zip(g.vertices(), values):
            p[v] = str(s)
        return p
    raise InvalidGraphError(f"node property {name!r} of dtype {values.dtype} has no graph-tool type")


def from_graph_tool(g: Any, *, weight: str | None = "weight", duplicates: str = "sum",
                    self_loops: str = "keep", nonfinite: str = "error", signed: bool = True,
                    skipped: list[str] | None = None) -> tuple[SparseGraph, dict[str, int]]:
    """A ``graph_tool.Graph`` to a SparseGraph. ``weight`` names the edge property used as weight
    (missing or None: unweighted). Scalar numeric edge properties and scalar, string and fixed-length
    ``vector<double>`` vertex properties are kept; the names of others are appended to ``skipped``."""
    n = g.num_vertices()
    skipped = [] if skipped is None else skipped
    escalar = [k for k, p in g.edge_properties.items() if _gt_is_scalar(p)]
    skipped += [f"edge:{k}" for k, p in g.edge_properties.items() if not _gt_is_scalar(p)]
    if weight is not None and weight not in escalar:
        weight = None
    cols = [g.edge_properties[k] for k in escalar]
    E = g.get_edges(cols) if cols else g.get_edges()
    src, dst = E[:, 0].astype(np.int64), E[:, 1].astype(np.int64)
    values = {k: E[:, 2 + i] for i, k in enumerate(escalar)}
    for k in escalar:
        if g.edge_properties[k].value_type() in ("bool", "int16_t", "int32_t", "int64_t", "uint8_t"):
            values[k] = values[k].astype(np.int64)
    w = values.pop(weight) if weight is not None else None
    node_props = {}
    for k, p in g.vertex_properties.items():
        arr = _gt_vertex_array(g, p)
        if arr is None:
            skipped.append(f"vertex:{k}")
        else:
            node_props[k] = arr
    return from_edges(src, dst, n, weight=w, directed=g.is_directed(), duplicates=duplicates,
                      self_loops=self_loops, nonfinite=nonfinite, signed=signed, node_props=node_props,
                      edge_props=values)


def _gt_is_scalar(p: Any) -> bool:
    return p.value_type() in ("bool", "int16_t", "int32_t", "int64_t", "uint8_t", "double", "long double")


def _gt_vertex_array(g: Any, p: Any) -> np.ndarray | None:
    t = p.value_type()
    if t in ("bool", "int16_t", "int32_t", "int64_t", "uint8_t"):
        return np.asarray(p.a, dtype=np.int64 if t != "bool" else bool).copy()
    if t in ("double", "long double"):
        return np.asarray(p.a, dtype=np.float64).copy()
    if t == "string":
        return np.array([p[v] for v in g.vertices()], dtype=object).astype(str)
    if t in ("vector<double>", "vector<long double>") and g.num_vertices():
        lengths = {len(p[v]) for v in g.vertices()}
        if len(lengths) == 1 and (k := lengths.pop()) > 0:
            return np.asarray(p.get_2d_array(list(range(k))), dtype=np.float64).T.copy()
    return None


def _graph_tool():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Error importing")
        import graph_tool.all as gt
    return gt


# networkx ------------------------------------------------------------------------------------

def to_networkx(graph: SparseGraph) -> "Any":
    """``nx.DiGraph`` or ``nx.Graph`` on nodes 0..n-1, edges ``j -> i`` with ``weight`` (weighted
    graphs) and edge properties as attributes, node properties as node attributes."""
    import networkx as nx

    G = nx.DiGraph() if graph.directed else nx.Graph()
    G.graph["weighted"] = graph.weighted  # survives even when there is no edge to carry a weight
    G.add_nodes_from(range(graph.n_nodes))
    for name, values in graph.node_props.items():
        nx.set_node_attributes(G, {i: _py(values[i]) for i in range(graph.n_nodes)}, name)
    src, dst = graph.edges()
    keep = np.ones(len(src), bool) if graph.directed else src <= dst
    attrs = {k: v for k, v in graph.edge_props.items()}
    if graph.weighted:
        attrs = {"weight": graph.P.data, **attrs}
    idx = np.flatnonzero(keep)
    G.add_edges_from((int(src[e]), int(dst[e]), {k: _py(v[e]) for k, v in attrs.items()}) for e in idx)
    return G


def _py(x: Any) -> Any:
    return x.tolist() if isinstance(x, np.ndarray) else (x.item() if isinstance(x, np.generic) else x)


def from_networkx(G: Any, *, weight: str | None = "weight", duplicates: str = "sum",
                  self_loops: str = "keep", nonfinite: str = "error", signed: bool = True) -> tuple[SparseGraph, dict[str, int]]:
    """A networkx (Di/Multi)Graph to a SparseGraph. Nodes keep G's order; unless they already are
    0..n-1, their labels go to the node property ``name``. Edge attributes present on every edge
    become edge properties (``weight`` the weight); node attributes present on every node become
    node properties."""
    nodes = list(G.nodes)
    n = len(nodes)
    relabel = nodes != list(range(n))
    index = {v: i for i, v in enumerate(nodes)}
    edges = list(G.edges(data=True))
    src = np.fromiter((index[u] for u, _, _ in edges), np.int64, len(edges))
    dst = np.fromiter((index[v] for _, v, _ in edges), np.int64, len(edges))
    common = set.intersection(*(set(d) for _, _, d in edges)) if edges else set()
    eprops = {k: np.array([d[k] for _, _, d in edges]) for k in sorted(common)}
    eprops = {k: v for k, v in eprops.items() if v.dtype.kind in "biuf" and v.ndim == 1}
    w = eprops.pop(weight) if weight in eprops else None
    if w is None and not edges and G.graph.get("weighted"):
        w = np.zeros(0)
    nattr = set.intersection(*(set(d) for _, d in G.nodes(data=True))) if n else set()
    node_props = {k: np.array([G.nodes[v][k] for v in nodes]) for k in sorted(nattr)}
    node_props = {k: v for k, v in node_props.items() if v.dtype.kind in "biufU"}
    names = np.array([str(v) for v in nodes])
    if relabel:
        node_props.setdefault("name", names)
    return from_edges(src, dst, n, weight=w, directed=G.is_directed(), duplicates=duplicates,
                      self_loops=self_loops, nonfinite=nonfinite, signed=signed, node_props=node_props,
                      edge_props=eprops, node_names=names)
