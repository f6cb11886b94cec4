import gzip

import networkx as nx
import numpy as np
import pytest

from graphs.formats import _graph_tool, to_graph_tool
from graphs.graph import InvalidGraphError
from pipeline.importers import (ImportOptions, bundled_networks, default_graph_id, import_networkx,
                                import_source, load_source)
from pipeline.store import Store, StoreError

from tests.conftest import sample_graphs


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_edge_list_with_weights_comments_and_labels(tmp_path):
    path = _write(tmp_path, "e.tsv", "# a comment\n% another\n\nalice\tbob\t2.5\nbob\tcarol\t1\n")
    g = load_source(path, ImportOptions()).graph
    assert list(g.node_props["name"]) == ["alice", "bob", "carol"]
    assert g.weighted and g.P[1, 0] == 2.5 and g.P[2, 1] == 1.0 and g.directed


def test_edge_list_csv_undirected_unweighted_index_ids(tmp_path):
    path = _write(tmp_path, "e.csv", "0,1\n1,2\n4,4\n")
    g = load_source(path, ImportOptions(directed=False, node_ids="index")).graph
    assert g.n_nodes == 5 and not g.weighted and not g.directed and g.n_edges == 3 and g.n_self_loops == 1
    assert "name" not in g.node_props


def test_edge_list_gzip(tmp_path):
    p = tmp_path / "e.txt.gz"
    with gzip.open(p, "wt") as f:
        f.write("a b\nb c\n")
    loaded = load_source(str(p), ImportOptions())
    assert loaded.graph.n_edges == 2 and loaded.graph_id == "e"


@pytest.mark.parametrize("text,options,msg", [
    ("a b\nb\n", {}, r"e.txt:2: expected 2 fields, got 1"),
    ("a b 1\nb c x\n", {}, r"e.txt:2: weight 'x' is not a number"),
    ("a b 1\nb c nan\n", {}, r"e.txt:2: weight 'nan' is not finite"),
    ("a b 1\nb c inf\n", {"nonfinite": "drop", "duplicates": "error"}, None),
    ("a b 1\nb c -1\n", {}, r"e.txt:2: negative weight -1.0"),
    ("a b\na b\n", {"duplicates": "error"}, r"duplicate edge 'a' -> 'b'"),
    ("a a\n", {"self_loops": "error"}, r"self-loop at node 'a'"),
    ("0 1\nx 2\n", {"node_ids": "index"}, r"e.txt:2: node 'x' is not an integer"),
    ("a\n", {}, r"e.txt:1: expected at least 2 fields"),
    ("a b 1\n", {"weight": "5"}, r"no weight column 5"),
])
def test_edge_list_errors_name_the_line(tmp_path, text, options, msg):
    path = _write(tmp_path, "e.txt", text)
    if msg is None:  # accepted: the non-finite edge is dropped and counted
        loaded = load_source(path, ImportOptions(**options))
        assert loaded.graph.n_edges == 1 and loaded.provenance["counts"]["dropped_nonfinite"] == 1
        return
    with pytest.raises(InvalidGraphError, match=msg):
        load_source(path, ImportOptions(**options))


def test_signed_edge_list(tmp_path):
    path = _write(tmp_path, "e.txt", "a b -1.5\n")
    assert load_source(path, ImportOptions(signed=True)).graph.P[1, 0] == -1.5


def test_bad_input_writes_nothing(tmp_path, store_url):
    path = _write(tmp_path, "e.txt", "a b 1\nb c oops\n")
    with pytest.raises(InvalidGraphError):
        import_source(store_url, path, ImportOptions())
    import os
    assert not os.path.exists(store_url)  # not even the store was created
    Store(store_url)
    with pytest.raises(InvalidGraphError):
        import_source(store_url, path, ImportOptions())
    s = Store(store_url, mode="r")
    assert s.catalog().empty and s.unpublished() == []


def test_missing_file_and_unknown_source(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        load_source(str(tmp_path / "missing.csv"), ImportOptions())
    with pytest.raises(StoreError, match="unknown source"):
        load_source(str(tmp_path / "x.xyz"), ImportOptions())
    with pytest.raises(StoreError, match="not in graph-tool's bundled collection"):
        load_source("gt:nope", ImportOptions())


@pytest.mark.parametrize("fmt", ["graphml", "gml", "gt"])
def test_graph_tool_file_formats(tmp_path, fmt):
    g = sample_graphs()["directed_weighted_loops"]
    path = str(tmp_path / f"g.{fmt}")
    to_graph_tool(g).save(path, fmt=fmt)
    back = load_source(path, ImportOptions()).graph
    assert np.allclose(back.P.toarray(), g.P.toarray())
    assert back.directed and back.weighted


def test_malformed_graphml_is_one_line_error(tmp_path):
    path = _write(tmp_path, "bad.graphml", "<graphml><graph><node id='a'></graph>")
    with pytest.raises(InvalidGraphError, match=r"bad.graphml: cannot parse as graphml"):
        load_source(path, ImportOptions())


def test_networkx_python_api(store_url):
    G = nx.karate_club_graph()
    rec = import_networkx(Store(store_url), G, "karate-nx", meta={"origin": "test"})
    assert rec["n_nodes"] == 34 and rec["n_edges"] == 78 and rec["meta"] == {"origin": "test"}
    g = Store(store_url).read_graph("karate-nx")
    assert g.weighted and g.P.sum() == sum(d["weight"] for *_, d in G.edges(data=True)) * 2


def test_networkx_builtins():
    g = load_source("nx:florentine", ImportOptions()).graph
    assert g.n_nodes == 15 and g.n_edges == 20 and "name" in g.node_props
    assert default_graph_id("nx:florentine") == "florentine"


def test_bundled_listing_has_all_graph_tool_networks():
    names = {r["source"] for r in bundled_networks()}
    assert len([n for n in names if n.startswith("gt:")]) == 19 and "gt:power" in names


@pytest.mark.slow
def test_all_19_graph_tool_networks_import_with_matching_counts(store_url):
    gt = _graph_tool()
    names = sorted(gt.collection.data.keys())
    assert len(names) == 19
    store = Store(store_url)
    for name in names:
        # cond-mat-2005 has two infinite weights: the clear error, then the explicit policy
        if name == "cond-mat-2005":
            with pytest.raises(InvalidGraphError, match="has weight inf"):
                import_source(store_url, f"gt:{name}", ImportOptions())
        rec = import_source(store_url, f"gt:{name}", ImportOptions(nonfinite="drop"))
        g = gt.collection.data[name]
        counts = rec["provenance"]["counts"]
        assert counts["dropped_nonfinite"] == (2 if name == "cond-mat-2005" else 0), name
        assert rec["n_nodes"] == g.num_vertices(), name
        assert counts["input_edges"] == g.num_edges(), name
        # every input edge is stored, or merged into a parallel one (multigraph adjacency)
        assert rec["n_edges"] + counts["merged_duplicates"] + counts["dropped_nonfinite"] == g.num_edges(), name
        assert rec["directed"] == g.is_directed(), name
        if not rec["weighted"] or name in ("polblogs",):
            stored = store.read_graph(name)
            # without weights, P sums the multiplicities: the total equals graph-tool's edge count
            total = stored.P.sum() if stored.directed else (stored.P.sum() + stored.P.diagonal().sum()) / 2
            assert total == g.num_edges(), name
    assert len(store.catalog()) == 19
