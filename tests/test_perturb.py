import numpy as np
import pytest

from graphs.graph import InvalidGraphError, from_edges
from graphs.perturb import sweep


def graph(directed=False, n=60, m=240, seed=0):
    rng = np.random.default_rng(seed)
    g, _ = from_edges(rng.integers(0, n, m), rng.integers(0, n, m), n, weight=rng.uniform(0.5, 2, m),
                      directed=directed, self_loops="drop", duplicates="max")
    return g


def test_node_removal_is_nested_and_sized():
    g = graph()
    pts = sweep(g.P, "node-removal", "random", np.linspace(0, 0.9, 10), seed=3)
    sizes = [p.P.shape[0] for p in pts]
    assert sizes == [60 - round(t * 60) for t in np.linspace(0, 0.9, 10)]
    assert abs(pts[0].P - g.P).sum() == 0
    # nested: the surviving sub-graphs shrink along one removal order (same seed, same order)
    again = sweep(g.P, "node-removal", "random", [0.5], seed=3)[0]
    assert abs(again.P - pts[5].P).sum() == 0 or pts[5].t != 0.5


def test_targeted_node_removal_takes_hubs_first():
    g = graph()
    strength = np.asarray(g.P.sum(axis=0)).ravel() + np.asarray(g.P.sum(axis=1)).ravel()
    p = sweep(g.P, "node-removal", "targeted", [5 / 60])[0]
    total_left = p.P.sum()
    hubs = np.argsort(-strength)[:5]
    keep = np.setdiff1d(np.arange(60), hubs)
    assert p.P.sum() == pytest.approx(g.P[keep][:, keep].sum()) and total_left < g.P.sum()


@pytest.mark.parametrize("directed", [False, True])
def test_link_removal_counts_and_symmetry(directed):
    g = graph(directed=directed)
    links = g.nnz if directed else g.n_edges
    for mode in ("random", "targeted"):
        for p in sweep(g.P, "link-removal", mode, [0, 0.25, 0.5], directed=directed):
            kept = p.P.nnz if directed else (p.P.nnz + (p.P.diagonal() != 0).sum()) // 2
            assert kept == links - round(p.t * links)
            if not directed:
                assert abs(p.P - p.P.T).sum() == 0


def test_targeted_link_removal_takes_strongest_first():
    g = graph(directed=True)
    p = sweep(g.P, "link-removal", "targeted", [0.1], directed=True)[0]
    removed = np.sort(g.P.data)[::-1][: round(0.1 * g.nnz)]
    assert p.P.sum() == pytest.approx(g.P.sum() - removed.sum())


def test_weight_scaling():
    g = graph()
    uni = sweep(g.P, "weight-scaling", "uniform", [0, 0.5])
    assert abs(uni[1].P - 0.5 * g.P).sum() < 1e-12
    rnd = sweep(g.P, "weight-scaling", "random", [0, 0.5], seed=1)
    assert abs(rnd[0].P - rnd[0].P.T).sum() < 1e-12  # one factor per undirected link
    assert abs(rnd[1].P - 0.5 * rnd[0].P).sum() < 1e-12
    assert abs(rnd[0].P - g.P).sum() > 0


def test_bad_requests():
    g = graph()
    with pytest.raises(InvalidGraphError, match="supports modes"):
        sweep(g.P, "weight-scaling", "targeted", [0.1])
    with pytest.raises(InvalidGraphError, match="unknown perturbation"):
        sweep(g.P, "node-kicking", "random", [0.1])
    with pytest.raises(InvalidGraphError, match=r"\[0, 1\]"):
        sweep(g.P, "node-removal", "random", [1.5])
