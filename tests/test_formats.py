import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphs import formats
from graphs.graph import InvalidGraphError, from_edges

from tests.conftest import sample_graphs


def _same(a, b):
    assert a.directed == b.directed and a.weighted == b.weighted
    assert a.P.shape == b.P.shape
    assert np.array_equal(a.P.indptr, b.P.indptr) and np.array_equal(a.P.indices, b.P.indices)
    assert np.array_equal(a.P.data, b.P.data)
    assert sorted(a.node_props) == sorted(b.node_props) and sorted(a.edge_props) == sorted(b.edge_props)
    for k in a.node_props:
        assert np.array_equal(np.asarray(a.node_props[k]).astype(b.node_props[k].dtype), b.node_props[k]), k
    for k in a.edge_props:
        assert np.array_equal(a.edge_props[k], b.edge_props[k]), k


def test_scipy_roundtrip(sample_graph):
    g = sample_graph
    back = formats.from_scipy(formats.to_scipy(g), directed=g.directed, weighted=g.weighted)
    assert np.array_equal(back.P.toarray(), g.P.toarray()) and back.directed == g.directed


def test_torch_roundtrip(sample_graph):
    g = sample_graph
    t = formats.to_torch(g, device="cpu")
    assert t.layout == torch.sparse_csr and t.shape == g.P.shape
    back = formats.from_torch(t, directed=g.directed, weighted=g.weighted)
    assert np.array_equal(back.P.toarray(), g.P.toarray())
    if g.n_nodes:
        x = np.random.default_rng(1).normal(size=g.n_nodes)
        assert np.allclose((t @ torch.from_numpy(x)).numpy(), g.P @ x)


def test_torch_coo_and_dense_inputs():
    g = sample_graphs()["directed_weighted_loops"]
    dense = torch.from_numpy(g.P.toarray())
    assert np.array_equal(formats.from_torch(dense.to_sparse()).P.toarray(), g.P.toarray())
    assert np.array_equal(formats.from_torch(dense).P.toarray(), g.P.toarray())


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; the error path cannot be exercised")
    with pytest.raises(InvalidGraphError, match="no CUDA GPU"):
        formats.to_torch(sample_graphs()["directed_unweighted"], device="cuda")


def test_pyg_roundtrip(sample_graph):
    g = sample_graph
    if any(k.startswith("edge_") for k in g.node_props):
        pytest.skip("not applicable")
    data = formats.to_pyg(g)
    assert data.num_nodes == g.n_nodes and data.edge_index.shape == (2, g.nnz)
    assert (data.edge_weight is not None) == g.weighted
    _same(g, formats.from_pyg(data))


def test_pyg_edge_index_direction():
    g, _ = from_edges([0], [1], 2, weight=[2.0])  # 0 -> 1
    data = formats.to_pyg(g)
    assert data.edge_index.tolist() == [[0], [1]]
    from torch_geometric.utils import to_scipy_sparse_matrix
    A = to_scipy_sparse_matrix(data.edge_index, data.edge_weight, 2).tocsr()
    # PyG's adjacency is A[source, target] = P.T
    assert np.array_equal(A.toarray(), g.P.toarray().T)


def test_graph_tool_roundtrip(sample_graph):
    g = sample_graph
    gt_graph = formats.to_graph_tool(g)
    assert gt_graph.num_vertices() == g.n_nodes and gt_graph.num_edges() == g.n_edges
    back, counts = formats.from_graph_tool(gt_graph)
    assert counts["merged_duplicates"] == 0
    _same(g, back)


def test_graph_tool_adjacency_agrees_with_P(sample_graph):
    g = sample_graph
    gtg = formats.to_graph_tool(g)
    import graph_tool.spectral as spec
    if g.n_nodes and g.directed:
        A = spec.adjacency(gtg, weight=gtg.ep["weight"] if g.weighted else None)
        assert np.allclose(A.toarray(), g.P.toarray())


def test_networkx_roundtrip(sample_graph):
    g = sample_graph
    G = formats.to_networkx(g)
    assert G.number_of_nodes() == g.n_nodes and G.number_of_edges() == g.n_edges
    back, _ = formats.from_networkx(G)
    _same(g, back)


def test_networkx_relabels_and_keeps_names():
    import networkx as nx
    G = nx.DiGraph()
    G.add_edge("x", "y", weight=2.0)
    G.add_edge("y", "z", weight=1.0)
    g, _ = formats.from_networkx(G)
    assert list(g.node_props["name"]) == ["x", "y", "z"]
    assert g.P[1, 0] == 2.0 and g.weighted


def test_networkx_multigraph_merges_by_policy():
    import networkx as nx
    G = nx.MultiGraph()
    G.add_edges_from([(0, 1), (0, 1), (1, 2)])
    g, counts = formats.from_networkx(G)
    assert counts["merged_duplicates"] == 1 and g.P[0, 1] == 2 and g.P[1, 0] == 2
    with pytest.raises(InvalidGraphError, match="duplicate edge"):
        formats.from_networkx(G, duplicates="error")


@st.composite
def graphs(draw):
    n = draw(st.integers(0, 12))
    m = draw(st.integers(0, 30)) if n else 0
    src = draw(st.lists(st.integers(0, max(n - 1, 0)), min_size=m, max_size=m))
    dst = draw(st.lists(st.integers(0, max(n - 1, 0)), min_size=m, max_size=m))
    weighted = draw(st.booleans())
    w = draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=m, max_size=m)) if weighted else None
    directed = draw(st.booleans())
    g, _ = from_edges(src, dst, n, weight=w, directed=directed, duplicates="max")
    return g


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_every_format_roundtrips_random_graphs(g):
    _same(g, formats.from_pyg(formats.to_pyg(g)))
    _same(g, formats.from_graph_tool(formats.to_graph_tool(g))[0])
    _same(g, formats.from_networkx(formats.to_networkx(g))[0])
    t = formats.from_torch(formats.to_torch(g, "cpu"), directed=g.directed, weighted=g.weighted)
    _same(g, t)
