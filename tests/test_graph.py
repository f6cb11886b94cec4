import numpy as np
import pytest
import scipy.sparse as sp

from graphs.graph import InvalidGraphError, SparseGraph, check_csr, from_csr, from_edges


def test_convention_row_is_receiver():
    g, _ = from_edges([0], [1], 2, weight=[3.0])  # 0 drives 1
    assert g.P[1, 0] == 3.0 and g.P[0, 1] == 0
    src, dst = g.edges()
    assert (src.tolist(), dst.tolist()) == ([0], [1])


def test_undirected_is_symmetric_and_counts_edges_once():
    g, counts = from_edges([0, 1, 2], [1, 0, 2], 3, directed=False)  # (0,1) twice, one self-loop
    assert counts["merged_duplicates"] == 1
    assert g.P.toarray().tolist() == [[0, 2, 0], [2, 0, 0], [0, 0, 1]]
    assert g.n_edges == 2 and g.nnz == 3 and g.n_self_loops == 1


@pytest.mark.parametrize("policy,expected", [("sum", 5.0), ("max", 3.0), ("min", 2.0), ("first", 2.0)])
def test_duplicate_policies(policy, expected):
    g, counts = from_edges([0, 0], [1, 1], 2, weight=[2.0, 3.0], duplicates=policy,
                           edge_props={"t": np.array([10, 20])})
    assert g.P[1, 0] == expected and counts["merged_duplicates"] == 1 and g.nnz == 1
    assert g.edge_props["t"][0] == {"sum": 30, "max": 20, "min": 10, "first": 10}[policy]


def test_duplicate_error_names_the_edge():
    with pytest.raises(InvalidGraphError, match=r"duplicate edge 'a' -> 'b'"):
        from_edges([0, 0], [1, 1], 2, duplicates="error", node_names=np.array(["a", "b"]))


def test_self_loop_policies():
    g, c = from_edges([0, 1], [0, 0], 2, self_loops="drop")
    assert g.nnz == 1 and c["dropped_self_loops"] == 1
    with pytest.raises(InvalidGraphError, match="self-loop at node 0"):
        from_edges([0], [0], 1, self_loops="error")


@pytest.mark.parametrize("weight,msg", [([np.nan], "weight nan"), ([-1.0], "negative weight"),
                                        ([np.inf], "weight inf")])
def test_bad_weights(weight, msg):
    with pytest.raises(InvalidGraphError, match=msg):
        from_edges([0], [1], 2, weight=weight)


def test_negative_weights_need_signed():
    g, _ = from_edges([0], [1], 2, weight=[-2.0], signed=True)
    assert g.P[1, 0] == -2.0


def test_node_out_of_range():
    with pytest.raises(InvalidGraphError, match="outside"):
        from_edges([0], [5], 3)


def test_content_hash_is_canonical_and_sensitive(sample_graph):
    h = sample_graph.content_hash()
    P64 = sp.csr_array((sample_graph.P.data, sample_graph.P.indices.astype(np.int64), sample_graph.P.indptr),
                       shape=sample_graph.P.shape)
    same = SparseGraph(P64, sample_graph.directed, sample_graph.weighted, sample_graph.node_props,
                       sample_graph.edge_props)
    assert same.content_hash() == h
    if sample_graph.nnz:
        P2 = sample_graph.P.copy()
        P2.data[0] += 1.0
        other = SparseGraph(P2, sample_graph.directed, sample_graph.weighted, sample_graph.node_props,
                            sample_graph.edge_props)
        assert other.content_hash() != h
    flipped = SparseGraph(sample_graph.P, sample_graph.directed, not sample_graph.weighted,
                          sample_graph.node_props, sample_graph.edge_props)
    assert flipped.content_hash() != h


@pytest.mark.parametrize("indptr,indices,msg", [
    ([0, 1], [0, 0], "ends at 1"),
    ([0, 2, 1], [0, 1], "decreases at row 1"),
    ([0, 1, 2], [0, 7], "out of range"),
    ([0, 2, 2], [1, 0], "row 0 are unsorted"),
    ([0, 2, 2], [1, 1], "row 0 are unsorted or duplicated"),
    ([1, 1, 1], [], "start at 0"),
])
def test_check_csr_rejects(indptr, indices, msg):
    with pytest.raises(InvalidGraphError, match=msg):
        check_csr(np.array(indptr), np.array(indices, dtype=np.int64), (len(indptr) - 1, 2))


def test_check_csr_accepts_row_boundaries():
    check_csr(np.array([0, 2, 4]), np.array([0, 1, 0, 1]), (2, 2))


def test_from_csr_infers_direction():
    A = sp.csr_array(np.array([[0, 1.0], [1.0, 0]]))
    assert from_csr(A).directed is False
    assert from_csr(sp.csr_array(np.array([[0, 1.0], [0, 0]]))).directed is True


def test_validate_catches_asymmetric_undirected():
    P = sp.csr_array(np.array([[0, 1.0], [0, 0]]))
    with pytest.raises(InvalidGraphError, match="symmetric"):
        SparseGraph(P, directed=False, weighted=True).validate()
