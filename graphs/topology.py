"""Topology of one graph with graph-tool: degrees and strengths, assortativity, clustering, cores,
components, reciprocity, spectral radius, path lengths, motifs and stochastic-block-model structure.

Edges follow nncap's convention (``P[i, j]`` = effect of j on i: an edge j → i). Directed measures
use that direction; ``*_total`` and clustering ignore it where graph-tool does. Expensive measures
are computed exactly on small graphs and sampled or skipped (NaN, with the reason in ``notes``)
above the limits in :class:`TopologyOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphs.formats import to_graph_tool
from graphs.graph import SparseGraph


@dataclass(frozen=True)
class TopologyOptions:
    """Limits for the expensive measures (node counts) and the seed of every sampled one."""

    path_sources: int = 64
    motif_max_nodes: int = 5_000
    sbm_max_nodes: int = 5_000
    seed: int = 0


def _gt():
    import graph_tool.all as gt

    return gt


def spectral_radius(P: sp.sparray | sp.spmatrix) -> float:
    """max |λ| of the weighted adjacency (ARPACK above 64 nodes, dense below)."""
    A = sp.csr_array(P, dtype=np.float64)
    n = A.shape[0]
    if n == 0:
        return math.nan
    if n <= 64:
        return float(np.abs(np.linalg.eigvals(A.toarray())).max())
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    try:
        vals = eigs(A, k=1, which="LM", return_eigenvectors=False, maxiter=max(1000, 20 * n), tol=1e-8)
    except ArpackNoConvergence as e:
        vals = e.eigenvalues if len(e.eigenvalues) else np.array([math.nan])
    return float(np.abs(vals).max())


def _edge_pearson(x_src: np.ndarray, x_dst: np.ndarray, w: np.ndarray | None = None) -> float:
    """Pearson correlation over edges of a source value and a target value (weighted by w)."""
    if x_src.size < 2:
        return math.nan
    w = np.ones_like(x_src, dtype=np.float64) if w is None else np.asarray(w, np.float64)
    ws = w.sum()
    mx, my = (w * x_src).sum() / ws, (w * x_dst).sum() / ws
    cov = (w * (x_src - mx) * (x_dst - my)).sum() / ws
    vx, vy = (w * (x_src - mx) ** 2).sum() / ws, (w * (x_dst - my) ** 2).sum() / ws
    return float(cov / math.sqrt(vx * vy)) if vx > 0 and vy > 0 else math.nan


def topology(graph: SparseGraph, options: TopologyOptions | None = None) -> dict[str, Any]:
    """Scalar topology measures of one graph; ``notes`` says what was sampled or skipped."""
    gt = _gt()
    opt = options or TopologyOptions()
    P = sp.csr_array(graph.P)
    n = graph.n_nodes
    coo = P.tocoo()
    src, dst, w = coo.col, coo.row, np.asarray(coo.data, np.float64)  # edge j -> i stored at P[i, j]
    if not graph.directed:
        keep = src <= dst
        src, dst, w = src[keep], dst[keep], w[keep]
    k_in = np.bincount(dst, minlength=n)
    k_out = np.bincount(src, minlength=n)
    s_in = np.bincount(dst, weights=w, minlength=n)
    s_out = np.bincount(src, weights=w, minlength=n)
    notes: list[str] = []
    out: dict[str, Any] = {"n_nodes": n, "n_edges": int(src.size)}
    if graph.directed:
        for name, k in (("k_in", k_in), ("k_out", k_out), ("s_in", s_in), ("s_out", s_out)):
            out[f"{name}_mean"], out[f"{name}_max"], out[f"{name}_std"] = moments(k)
        # degree assortativity as networkx's default for digraphs: out-degree of the source
        # against in-degree of the target; weighted: strengths, each edge weighted by its weight
        out["assortativity"] = _edge_pearson(k_out[src], k_in[dst])
        out["assortativity_weighted"] = _edge_pearson(s_out[src], s_in[dst], w) if graph.weighted else math.nan
    else:
        k = k_in + k_out
        s = s_in + s_out
        loops = src == dst
        k = k - np.bincount(src[loops], minlength=n)  # an undirected self-loop counts once
        s = s - np.bincount(src[loops], weights=w[loops], minlength=n)
        out["k_mean"], out["k_max"], out["k_std"] = moments(k)
        out["s_mean"], out["s_max"], out["s_std"] = moments(s)
        both_s = np.r_[src, dst]
        both_d = np.r_[dst, src]
        both_w = np.r_[w, w]
        out["assortativity"] = _edge_pearson(k[both_s].astype(float), k[both_d].astype(float))
        out["assortativity_weighted"] = _edge_pearson(s[both_s], s[both_d], both_w) if graph.weighted else math.nan
    g = to_graph_tool(graph)
    gt.seed_rng(opt.seed)
    np.random.seed(opt.seed)
    out["clustering_global"] = float(gt.global_clustering(g)[0]) if n else math.nan
    out["clustering_mean_local"] = float(np.mean(gt.local_clustering(g, undirected=True).a)) if n else math.nan
    out["kcore_max"] = int(gt.kcore_decomposition(g).a.max()) if n else 0
    weak, hist = gt.label_components(g, directed=False)
    out["components"] = int(len(hist))
    out["giant_fraction"] = float(hist.max() / n) if n else math.nan
    if graph.directed:
        _, shist = gt.label_components(g, directed=True)
        out["strong_components"] = int(len(shist))
        out["reciprocity"] = float(gt.edge_reciprocity(g)) if g.num_edges() else math.nan
    out["spectral_radius"] = spectral_radius(P)
    out.update(_paths(gt, g, n, opt, notes))
    out.update(_motifs(gt, g, graph, n, opt, notes))
    out.update(_blockmodel(gt, g, n, opt, notes))
    out["notes"] = "; ".join(notes)
    return out


def moments(x: np.ndarray) -> tuple[float, float, float]:
    """(mean, max, population standard deviation); NaN for an empty array."""
    if not x.size:
        return math.nan, math.nan, math.nan
    x = np.asarray(x, np.float64)
    return float(x.mean()), float(x.max()), float(x.std())


def _paths(gt: Any, g: Any, n: int, opt: TopologyOptions, notes: list[str]) -> dict[str, float]:
    """Mean and 90th-percentile hop distance over reachable ordered pairs (unweighted, following
    edge direction), from every node or from ``path_sources`` sampled ones."""
    if n < 2:
        return {"path_mean": math.nan, "path_p90": math.nan, "path_max": math.nan}
    rng = np.random.default_rng(opt.seed)
    sources = np.arange(n) if n <= opt.path_sources else rng.choice(n, opt.path_sources, replace=False)
    if n > opt.path_sources:
        notes.append(f"path lengths sampled from {opt.path_sources} sources")
    dists = []
    for v in sources:
        d = gt.shortest_distance(g, source=g.vertex(int(v))).a.astype(np.float64)
        d = d[(d > 0) & (d < n)]  # unreachable pairs carry a huge sentinel
        dists.append(d)
    d = np.concatenate(dists) if dists else np.zeros(0)
    if not d.size:
        return {"path_mean": math.nan, "path_p90": math.nan, "path_max": math.nan}
    return {"path_mean": float(d.mean()), "path_p90": float(np.percentile(d, 90)), "path_max": float(d.max())}


# The 13 connected directed triads, by Holland–Leinhardt MAN code (mutual, asymmetric, null dyads).
TRIADS = ("021D", "021U", "021C", "111D", "111U", "030T", "030C", "201", "120D", "120U", "120C", "210", "300")


def _motifs(gt: Any, g: Any, graph: SparseGraph, n: int, opt: TopologyOptions, notes: list[str]) -> dict[str, float]:
    """Connected 3-node subgraphs. Of the undirected graph: open paths and triangles; of a directed
    graph also the node-induced count of each connected triad (``triad_<MAN code>``, the connected
    part of the triad census; graph-tool's ``motifs``)."""
    triad_keys = [f"triad_{code}" for code in TRIADS] if graph.directed else []
    if n > opt.motif_max_nodes:
        notes.append(f"motifs skipped above {opt.motif_max_nodes} nodes")
        return dict.fromkeys(["motif_paths", "motif_triangles", *triad_keys], math.nan)
    u = gt.Graph(g, directed=False)
    gt.remove_self_loops(u)
    gt.remove_parallel_edges(u)
    k = u.get_total_degrees(u.get_vertices()).astype(np.float64)
    triangles = float(gt.local_clustering(u).a @ (k * (k - 1) / 2) / 3) if n else 0.0
    wedges = float((k * (k - 1) / 2).sum())
    out = {"motif_paths": wedges - 3 * triangles, "motif_triangles": triangles}
    if graph.directed:
        out.update(dict.fromkeys(triad_keys, 0.0))
        d = gt.Graph(g, directed=True)
        gt.remove_self_loops(d)
        if n >= 3 and d.num_edges():
            import networkx as nx

            for motif, count in zip(*gt.motifs(d, 3)):
                h = nx.DiGraph()
                h.add_nodes_from(range(3))
                h.add_edges_from((int(e.source()), int(e.target())) for e in motif.edges())
                out[f"triad_{nx.triad_type(h)}"] = float(count)
    return out


def _blockmodel(gt: Any, g: Any, n: int, opt: TopologyOptions, notes: list[str]) -> dict[str, float]:
    """Community structure by minimising the description length of a degree-corrected SBM."""
    if n > opt.sbm_max_nodes or n < 2:
        if n >= 2:
            notes.append(f"SBM skipped above {opt.sbm_max_nodes} nodes")
        return {"sbm_blocks": math.nan, "sbm_description_length": math.nan}
    state = gt.minimize_blockmodel_dl(g)
    return {"sbm_blocks": int(state.get_nonempty_B()), "sbm_description_length": float(state.entropy())}


def layer_pairs(graph: SparseGraph) -> list[dict[str, Any]]:
    """Per (receiving layer, driving layer) block of a model line graph (node property ``layer``):
    edge count, Σ P and mean |P|. Row = receiver, so ``layer_receiver`` is the upstream layer."""
    if "layer" not in graph.node_props:
        return []
    layer = np.asarray(graph.node_props["layer"], np.int64)
    coo = sp.csr_array(graph.P).tocoo()
    w = np.asarray(coo.data, np.float64)
    pairs, index = np.unique(np.column_stack([layer[coo.row], layer[coo.col]]), axis=0, return_inverse=True)
    index = index.ravel()
    edges = np.bincount(index, minlength=len(pairs))
    total = np.bincount(index, weights=w, minlength=len(pairs))
    magnitude = np.bincount(index, weights=np.abs(w), minlength=len(pairs))
    return [{"layer_receiver": int(r), "layer_driver": int(c), "edges": int(n), "weight_sum": float(t),
             "weight_abs_mean": float(a / n)} for (r, c), n, t, a in zip(pairs, edges, total, magnitude)]
