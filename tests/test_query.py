import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from graphs.formats import to_networkx
from graphs.graph import from_edges
from pipeline.query import QueryError, filter_frame, gather, open_store
from pipeline.store import Store

from tests.conftest import sample_graphs


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    store_url = str(tmp_path_factory.mktemp("query") / "store.zarr")
    store = Store(store_url, chunk=7)  # small chunks so partial reads cross chunk boundaries
    for name, g in sample_graphs().items():
        store.write_graph(name, g, meta={"family": "directed" if g.directed else "undirected"})
    rng = np.random.default_rng(3)
    big, _ = from_edges(rng.integers(0, 300, 1500), rng.integers(0, 300, 1500), 300, weight=rng.random(1500),
                        node_props={"layer": np.arange(300) % 4, "score": rng.random(300)},
                        edge_props={"w2": rng.random(1500)}, duplicates="first")
    store.write_graph("big", big)
    return open_store(store_url)


def test_query_filters_catalog(reader):
    ids = reader.ids("n_nodes > 10 and directed == True")
    assert ids == ["big", "random_directed"]
    assert reader.ids("family == 'undirected' and n_edges >= 5") == ["random_undirected", "undirected_weighted"]
    assert reader.ids("id in ['big', 'empty']") == ["big", "empty"]
    assert len(reader.query()) == len(sample_graphs()) + 1


@pytest.mark.parametrize("where,msg", [
    ("n_nodez > 3", "unknown graph field 'n_nodez'"),
    ("__import__('os')", "Call is not allowed"),
    ("n_nodes >", "cannot parse"),
    ("n_nodes", "must be a condition"),
    ("n_nodes.real > 1", "Attribute is not allowed"),
])
def test_query_errors(reader, where, msg):
    with pytest.raises(QueryError, match=msg):
        reader.query(where)


def test_load_every_format(reader):
    for fmt in ("graph", "scipy", "torch", "pyg", "graph-tool", "networkx"):
        assert reader.load("big", fmt) is not None
    with pytest.raises(QueryError, match="unknown format"):
        reader.load("big", "excel")


def test_rows_block(reader):
    full = reader.load("big", "scipy")
    block = reader.graph("big").rows(10, 57)
    assert block.shape == (47, 300)
    assert abs(block - full[10:57]).sum() == 0


@pytest.mark.parametrize("direction", ["in", "out", "both"])
@pytest.mark.parametrize("k", [0, 1, 2])
def test_khop_matches_networkx(reader, direction, k):
    g = reader.load("big")
    G = to_networkx(g)
    seeds = [5, 17]
    expected = set()
    for s in seeds:
        H = G if direction == "out" else (G.reverse() if direction == "in" else G.to_undirected())
        expected |= set(nx.single_source_shortest_path_length(H, s, cutoff=k))
    sub = reader.graph("big").khop(seeds, k=k, direction=direction)
    assert set(sub.nodes.tolist()) == expected
    want = g.P[sub.nodes][:, sub.nodes]
    assert abs(sub.graph.P - want).sum() == 0 and sub.graph.P.nnz == want.nnz
    assert np.array_equal(sub.graph.node_props["layer"], g.node_props["layer"][sub.nodes])


def test_khop_undirected_reads_rows_only(reader):
    sub = reader.graph("random_undirected").khop([0], k=1)
    g = reader.load("random_undirected")
    assert set(sub.nodes) == {0, *g.P[[0]].indices.tolist()}
    assert not sub.graph.directed and (abs(sub.graph.P - sub.graph.P.T)).nnz == 0


def test_filter_nodes_and_edge_props(reader):
    g = reader.load("big")
    sub = reader.graph("big").filter_nodes("layer == 2 and score > 0.5")
    mask = (g.node_props["layer"] == 2) & (g.node_props["score"] > 0.5)
    assert np.array_equal(sub.nodes, np.flatnonzero(mask))
    # edge properties follow their edges
    P = sp.csr_array((g.edge_props["w2"], g.P.indices, g.P.indptr), shape=g.P.shape)
    want = P[sub.nodes][:, sub.nodes]
    got = sp.csr_array((sub.graph.edge_props["w2"], sub.graph.P.indices, sub.graph.P.indptr), shape=want.shape)
    assert abs(got - want).sum() == 0
    with pytest.raises(QueryError, match="unknown node field"):
        reader.graph("big").filter_nodes("colour == 1")


def test_node_properties_frame(reader):
    df = reader.graph("directed_weighted_loops").node_properties(nodes=[3, 1])
    assert list(df.index) == [3, 1] and list(df["name"]) == ["d", "b"]
    assert {"pos[0]", "pos[1]", "size"} <= set(df.columns)


def test_out_of_range_nodes(reader):
    with pytest.raises(QueryError, match="node ids must lie"):
        reader.graph("big").khop([300])


def test_gather_reads_runs_of_chunks(tmp_path):
    import zarr
    arr = zarr.open_group(str(tmp_path / "a.zarr"), mode="w").create_array("a", shape=(100,), chunks=(8,), dtype="int64")
    arr[:] = np.arange(100) * 3
    pos = np.array([99, 0, 1, 50, 51, 52, 9, 9, 64])
    assert np.array_equal(gather(arr, pos), pos * 3)
    assert gather(arr, np.array([], dtype=np.int64)).shape == (0,)


def test_filter_frame_on_empty_catalog():
    import pandas as pd
    assert filter_frame(pd.DataFrame(columns=["n_nodes"]), "n_nodes > 1").empty
