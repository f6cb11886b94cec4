import pytest
import torch
from torch_geometric.data import EdgeAttr, TensorAttr

from pipeline.query import open_store
from pipeline.store import Store

from tests.conftest import sample_graphs


@pytest.fixture
def stores(store_url):
    store = Store(store_url, chunk=4)
    for name in ("directed_weighted_loops", "undirected_weighted", "random_directed"):
        store.write_graph(name, sample_graphs()[name])
    return open_store(store_url).pyg()


def test_graph_store_lists_every_graph(stores):
    _, graph_store = stores
    attrs = graph_store.get_all_edge_attrs()
    assert {a.edge_type for a in attrs} == {(n, "to", n) for n in
                                           ("directed_weighted_loops", "undirected_weighted", "random_directed")}
    assert all(a.layout.value == "csc" for a in attrs)


@pytest.mark.parametrize("name", ["directed_weighted_loops", "random_directed", "undirected_weighted"])
def test_edge_layouts_match_the_graph(stores, name):
    _, graph_store = stores
    g = sample_graphs()[name]
    src, dst = g.edges()
    et = (name, "to", name)
    row, col = graph_store.get_edge_index(edge_type=et, layout="coo", size=(g.n_nodes, g.n_nodes))
    assert row.tolist() == src.tolist() and col.tolist() == dst.tolist()
    row, colptr = graph_store.get_edge_index(EdgeAttr(et, "csc", size=(g.n_nodes, g.n_nodes)))
    assert colptr.tolist() == g.P.indptr.tolist() and row.tolist() == g.P.indices.tolist()
    rowptr, col = graph_store.get_edge_index(EdgeAttr(et, "csr", size=(g.n_nodes, g.n_nodes)))
    T = g.P.T.tocsr()
    T.sort_indices()
    assert rowptr.tolist() == T.indptr.tolist() and col.tolist() == T.indices.tolist()
    # PyG's own conversion helpers agree with the stored layout
    coo = graph_store.coo(edge_types=[et])
    assert coo[0][et].tolist() == src.tolist()


def test_feature_store_reads_requested_rows(stores):
    feature_store, _ = stores
    g = sample_graphs()["directed_weighted_loops"]
    attr = TensorAttr(group_name="directed_weighted_loops", attr_name="pos", index=torch.tensor([4, 0, 2]))
    out = feature_store.get_tensor(attr)
    assert torch.equal(out, torch.from_numpy(g.node_props["pos"][[4, 0, 2]]))
    size = feature_store.get_tensor_size(TensorAttr(group_name="directed_weighted_loops", attr_name="size"))
    assert tuple(size) == (5,)
    all_attrs = {(a.group_name, a.attr_name) for a in feature_store.get_all_tensor_attrs()}
    assert ("directed_weighted_loops", "size") in all_attrs and ("undirected_weighted", "group") in all_attrs
    assert ("directed_weighted_loops", "name") not in all_attrs  # strings are not tensors
    # PyG's key-style access
    assert torch.equal(feature_store["directed_weighted_loops", "size", None], torch.arange(5.0, dtype=torch.float64))


def test_adapters_are_read_only(stores):
    feature_store, graph_store = stores
    with pytest.raises(PermissionError, match="read-only"):
        feature_store.put_tensor(torch.zeros(3), group_name="x", attr_name="y", index=None)
    with pytest.raises(PermissionError, match="read-only"):
        graph_store.put_edge_index((torch.zeros(2), torch.zeros(2)), edge_type=("x", "to", "x"), layout="coo",
                                   size=(1, 1))
