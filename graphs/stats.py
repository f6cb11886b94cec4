"""Basic structural statistics of a SparseGraph (row = receiver: in-degree counts a row's entries)."""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from graphs.graph import SparseGraph


def basic_stats(graph: SparseGraph) -> dict[str, float | int]:
    """Size, density, degree and strength summaries and weak components of one graph.

    Degrees count neighbours (an undirected self-loop adds one); strengths sum weights.
    ``density`` is ``n_edges`` over the number of possible ordered (directed) or unordered pairs;
    ``giant_fraction`` is the share of nodes in the largest weakly connected component.
    """
    P = graph.P
    n = graph.n_nodes
    k_in = np.diff(P.indptr)
    k_out = np.bincount(P.indices, minlength=n) if n else np.zeros(0, int)
    s_in = np.asarray(P.sum(axis=1)).ravel()
    pairs = n * (n - 1) if graph.directed else n * (n - 1) / 2
    if n:
        n_comp, labels = connected_components(P, directed=True, connection="weak")
        largest = int(np.bincount(labels).max())
    else:
        n_comp, largest = 0, 0
    return {
        "n_nodes": n,
        "n_edges": graph.n_edges,
        "density": float(graph.n_edges / pairs) if pairs else 0.0,
        "mean_degree": float(graph.nnz / n) if n else 0.0,
        "max_k_in": int(k_in.max()) if n else 0,
        "max_k_out": int(k_out.max()) if n else 0,
        "mean_strength": float(s_in.mean()) if n else 0.0,
        "self_loops": graph.n_self_loops,
        "components": int(n_comp),
        "giant_fraction": float(largest / n) if n else 0.0,
    }
