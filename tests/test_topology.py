"""Topology measures against direct networkx computations, and the topology stage."""

import math

import networkx as nx
import numpy as np
import pytest

from graphs.formats import from_networkx
from graphs.graph import from_edges
from graphs.topology import TopologyOptions, spectral_radius, topology
from pipeline.export import ExportOptions, export_zoo
from pipeline.store import Store
from pipeline.topology import run_topology
from tests.test_export import write_zoo


def test_undirected_measures_match_networkx():
    G = nx.karate_club_graph()
    g, _ = from_networkx(G, weight=None)
    t = topology(g)
    assert t["n_edges"] == G.number_of_edges()
    degrees = np.array([d for _, d in G.degree()])
    assert t["k_mean"] == pytest.approx(degrees.mean()) and t["k_max"] == degrees.max()
    assert t["assortativity"] == pytest.approx(nx.degree_assortativity_coefficient(G), abs=1e-12)
    assert t["clustering_global"] == pytest.approx(nx.transitivity(G), abs=1e-12)
    assert t["clustering_mean_local"] == pytest.approx(nx.average_clustering(G), abs=1e-12)
    assert t["kcore_max"] == max(nx.core_number(G).values())
    assert t["path_mean"] == pytest.approx(nx.average_shortest_path_length(G), abs=1e-12)
    assert t["path_max"] == nx.diameter(G)
    triangles = sum(nx.triangles(G).values()) / 3
    wedges = sum(d * (d - 1) / 2 for _, d in G.degree())
    assert t["motif_triangles"] == pytest.approx(triangles) and t["motif_paths"] == pytest.approx(wedges - 3 * triangles)
    assert t["spectral_radius"] == pytest.approx(max(abs(np.linalg.eigvals(nx.to_numpy_array(G, weight=None)))), rel=1e-9)
    assert t["components"] == 1 and t["giant_fraction"] == 1.0
    lengths = [v for s, d in nx.shortest_path_length(G) for t_, v in d.items() if t_ != s]
    assert t["path_p90"] == np.percentile(lengths, 90)
    # the SBM fit is graph-tool's own, with the same seed
    import graph_tool.all as gt

    from graphs.formats import to_graph_tool

    gt.seed_rng(0)
    np.random.seed(0)
    state = gt.minimize_blockmodel_dl(to_graph_tool(g))
    assert t["sbm_blocks"] == state.get_nonempty_B() >= 1
    assert t["sbm_description_length"] == pytest.approx(state.entropy())


def test_directed_measures_match_networkx():
    D = nx.gnp_random_graph(60, 0.06, seed=3, directed=True)
    g, _ = from_networkx(D, weight=None)
    t = topology(g)
    assert t["assortativity"] == pytest.approx(nx.degree_assortativity_coefficient(D), abs=1e-12)
    assert t["reciprocity"] == pytest.approx(nx.reciprocity(D), abs=1e-12)
    assert t["strong_components"] == nx.number_strongly_connected_components(D)
    assert t["components"] == nx.number_weakly_connected_components(D)
    assert t["k_in_max"] == max(d for _, d in D.in_degree())
    lengths = [v for s, d in nx.shortest_path_length(D) for t_, v in d.items() if t_ != s]
    assert t["path_mean"] == pytest.approx(np.mean(lengths), abs=1e-12)

def test_directed_triads_match_the_networkx_census():
    D = nx.gnp_random_graph(50, 0.12, seed=5, directed=True)
    D.add_edges_from([(v, u) for u, v in list(D.edges())[::3]])  # mutual dyads: every triad type occurs
    D.add_edge(7, 7)  # self-loops are not part of any triad
    g, _ = from_networkx(D, weight=None)
    t = topology(g)
    census = nx.triadic_census(D)
    assert min(census[c] for c in census if c not in ("003", "012", "102")) > 0
    for code in ("021D", "021U", "021C", "111D", "111U", "030T", "030C", "201", "120D", "120U", "120C", "210", "300"):
        assert t[f"triad_{code}"] == census[code], code


def test_weighted_undirected_strengths_match_networkx():
    G = nx.les_miserables_graph()
    g, _ = from_networkx(G)
    t = topology(g)
    strengths = np.array([d for _, d in G.degree(weight="weight")], float)
    assert t["s_mean"] == pytest.approx(strengths.mean()) and t["s_max"] == pytest.approx(strengths.max())
    assert t["s_std"] == pytest.approx(strengths.std())


def test_weighted_assortativity_and_direction():
    # edges j -> i stored at P[i, j]: a star pointing into node 0 has in-degree 3 at the hub
    g, _ = from_edges([1, 2, 3, 1], [0, 0, 0, 2], 4, weight=[1.0, 2.0, 3.0, 0.5])
    t = topology(g)
    assert t["k_in_max"] == 3 and t["k_out_max"] == 2
    src, dst, w = np.array([1, 2, 3, 1]), np.array([0, 0, 0, 2]), np.array([1.0, 2.0, 3.0, 0.5])
    s_out, s_in = np.bincount(src, w, 4), np.bincount(dst, w, 4)
    x, y = s_out[src], s_in[dst]
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    r = np.average((x - mx) * (y - my), weights=w) / np.sqrt(np.average((x - mx) ** 2, weights=w)
                                                             * np.average((y - my) ** 2, weights=w))
    assert t["assortativity_weighted"] == pytest.approx(r)


def test_large_graphs_are_sampled_and_noted():
    G = nx.barabasi_albert_graph(300, 2, seed=1)
    g, _ = from_networkx(G, weight=None)
    t = topology(g, TopologyOptions(path_sources=20, motif_max_nodes=100, sbm_max_nodes=100))
    assert "sampled from 20 sources" in t["notes"] and "motifs skipped" in t["notes"] and "SBM skipped" in t["notes"]
    assert math.isnan(t["motif_triangles"]) and math.isnan(t["sbm_blocks"])
    assert 2 < t["path_mean"] < 6


def test_stage_on_networks_and_line_graphs(tmp_path):
    url = str(tmp_path / "s.zarr")
    store = Store(url)
    g, _ = from_networkx(nx.karate_club_graph(), weight=None)
    store.write_graph("karate", g)
    zoo = write_zoo(tmp_path / "zoo", n=1)
    export_zoo(url, zoo, client=None, options=ExportOptions(mode="explicit"), show_progress=False)
    implicit = str(tmp_path / "i.zarr")
    export_zoo(implicit, zoo, client=None, options=ExportOptions(mode="implicit"), show_progress=False)
    result = run_topology(url, client=None, show_progress=False)
    table = result.table.set_index("id")
    assert table.loc["karate", "kcore_max"] == 4
    # a feed-forward line graph has no cycles: P is nilpotent, ρ(P) = 0
    assert table.loc["tiny.m0", "spectral_radius"] == pytest.approx(0, abs=1e-9)
    stored, _ = Store(url, mode="r").read_table("topology")
    assert len(stored) == 2
    row = run_topology(implicit, client=None, show_progress=False).table.iloc[0]
    assert "needs explicit export" in row["notes"] and row["spectral_radius"] == 0.0
    assert row["s_in_mean"] == pytest.approx(table.loc["tiny.m0", "s_in_mean"], rel=1e-9)
    assert row["s_out_max"] == pytest.approx(table.loc["tiny.m0", "s_out_max"], rel=1e-9)
    assert row["beta_eff"] == pytest.approx(Store(url, mode="r").record("tiny.m0")["meta"]["beta_eff"], rel=1e-12)
    assert spectral_radius(Store(url, mode="r").read_graph("tiny.m0").P) == pytest.approx(0, abs=1e-9)


def test_cli_topology(tmp_path):
    from tests.cli_helpers import nncap

    url = tmp_path / "s.zarr"
    nncap("import", url, "gt:karate", "gt:dolphins", "--scheduler", "sync")
    p = nncap("topology", url, "--scheduler", "sync", "--where", "n_nodes < 100")
    assert "clustering_global" in p.stdout and "karate" in p.stdout and "dolphins" in p.stdout
    bad = nncap("topology", url, "--where", "n_nodes <", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_layer_pair_blocks_of_a_line_graph(tmp_path):
    from graphs.topology import layer_pairs

    url = str(tmp_path / "s.zarr")
    zoo = write_zoo(tmp_path / "zoo", n=1)  # MLP 64-12-8-10: Linear layers 0, 1, 2
    export_zoo(url, zoo, client=None, options=ExportOptions(mode="explicit"), show_progress=False)
    g = Store(url, mode="r").read_graph("tiny.m0")
    blocks = {(b["layer_receiver"], b["layer_driver"]): b for b in layer_pairs(g)}
    assert set(blocks) == {(0, 1), (1, 2)}  # upstream layers receive from the next layer only
    assert blocks[(0, 1)]["edges"] == 12 * (64 + 1) * 8 and blocks[(1, 2)]["edges"] == 8 * (12 + 1) * 10
    assert sum(b["weight_sum"] for b in blocks.values()) == pytest.approx(g.P.sum())
    run_topology(url, client=None, show_progress=False)
    stored, _ = Store(url, mode="r").read_table("topology-layers")
    assert len(stored) == 2 and set(stored["id"]) == {"tiny.m0"}
