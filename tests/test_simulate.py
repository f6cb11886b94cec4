import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.integrate import solve_ivp

from graphs.dynamics import DYNAMICS, get_dynamics
from graphs.graph import from_edges
from graphs.simulate import batch_scenarios, rhs, steady_state


def er(n=200, k=6, seed=1, lo=0.5, hi=1.5):
    rng = np.random.default_rng(seed)
    m = n * k // 2
    g, _ = from_edges(rng.integers(0, n, m), rng.integers(0, n, m), n, weight=rng.uniform(lo, hi, m),
                      directed=False, self_loops="drop", duplicates="max")
    return g


def ba(n=1000, m=3, seed=2):
    import networkx as nx
    from graphs.formats import from_networkx
    G = nx.barabasi_albert_graph(n, m, seed=seed)
    rng = np.random.default_rng(seed)
    for u, v in G.edges:
        G[u][v]["weight"] = rng.uniform(0.5, 1.5)
    return from_networkx(G)[0]


def close(x, ref):
    """Agreement to 1e-5 relative (1e-8 absolute for states that vanish)."""
    return bool(np.all(np.abs(x - ref) <= 1e-5 * np.abs(ref) + 1e-8))


def reference(dyn, P, x0, t_end=2000.0, method="LSODA"):
    """scipy's steady state: integrate long enough with tight tolerances."""
    A = sp.csr_array(P)
    n = A.shape[0]
    row = np.repeat(np.arange(n), np.diff(A.indptr))
    col, w = A.indices, A.data

    def f(t, x):
        return dyn.F(x, dyn.params) + np.bincount(row, weights=w * dyn.G(x[row], x[col], dyn.params), minlength=n)

    kw = {"jac_sparsity": (abs(A) + sp.identity(n)).tocsr()} if method == "BDF" else {}
    sol = solve_ivp(f, (0, t_end), np.full(n, float(x0)), method=method, rtol=1e-11, atol=1e-12, **kw)
    assert sol.success
    x = sol.y[:, -1]
    assert np.abs(f(0, x)).max() < 1e-7, "the reference did not reach a steady state"
    return x


CASES = [  # (dynamics, initial state, weight scale): both basins, near and far from tipping points
    ("mutualistic", "high", 1.0), ("mutualistic", "low", 1.0), ("mutualistic", "low", 0.5),
    ("mutualistic", "high", 0.1), ("regulatory", "high", 1.0), ("regulatory", "high", 0.4),
    ("regulatory", "low", 1.0), ("epidemic", "high", 0.3), ("epidemic", "high", 0.1),
    ("biochemical", "high", 1.0), ("birth-death", "high", 1.0), ("population", "high", 0.2),
    ("neuronal", "high", 1.0), ("neuronal", "low", 1.0),
]


@pytest.mark.parametrize("name,init,scale", CASES)
def test_agrees_with_lsoda(name, init, scale):
    d = get_dynamics(name)
    P = er().P * scale
    x0 = d.high if init == "high" else d.low
    ss = steady_state(d, batch_scenarios([P], "cpu"), x0)
    assert ss.converged.all()
    ref = reference(d, P, x0)
    assert close(ss.x.numpy(), ref)


def test_agrees_on_heterogeneous_and_directed_networks():
    d = get_dynamics("mutualistic")
    for P in (ba().P, _celegans_scaled()):
        for x0 in (d.high, d.low):
            ss = steady_state(d, batch_scenarios([P], "cpu"), x0)
            ref = reference(d, P, x0)
            assert ss.converged.all()
            assert close(ss.x.numpy(), ref)


def _celegans_scaled():
    from pipeline.importers import ImportOptions, load_source
    g = load_source("gt:celegansneural", ImportOptions()).graph
    return g.P / g.P.data.mean()


@pytest.mark.slow
def test_agrees_on_the_power_grid():
    from pipeline.importers import ImportOptions, load_source
    d = get_dynamics("regulatory")
    P = load_source("gt:power", ImportOptions()).graph.P
    ss = steady_state(d, batch_scenarios([P], "cpu"), d.high)
    ref = reference(d, P, d.high, method="BDF")
    assert close(ss.x.numpy(), ref)


def test_batched_scenarios_equal_separate_runs():
    d = get_dynamics("mutualistic")
    g = er(n=150, seed=3)
    rng = np.random.default_rng(0)
    scenarios = []
    for s in range(6):
        keep = np.flatnonzero(rng.random(150) > 0.2 * (s % 3))
        scenarios.append(g.P[keep][:, keep] * (0.3 + 0.2 * s))
    batch = batch_scenarios(scenarios, "cpu")
    together = batch.split(steady_state(d, batch, d.low).x)
    for P, x in zip(scenarios, together):
        alone = steady_state(d, batch_scenarios([P], "cpu"), d.low).x.numpy()
        assert np.allclose(x, alone, rtol=1e-9, atol=1e-12)


def test_rhs_matches_the_definition():
    d = get_dynamics("mutualistic")
    g = er(n=30, seed=4)
    x = np.random.default_rng(1).uniform(0.1, 5, 30)
    A = g.P.toarray()
    want = d.F(x, d.params) + np.array([sum(A[i, j] * d.G(x[i], x[j], d.params) for j in range(30)) for i in range(30)])
    got = rhs(d, batch_scenarios([g.P], "cpu"), torch.from_numpy(x)).numpy()
    assert np.allclose(got, want, rtol=1e-12)


def test_empty_and_edgeless_scenarios():
    d = get_dynamics("regulatory")
    batch = batch_scenarios([sp.csr_array((0, 0)), sp.csr_array((3, 3)), er(n=20).P], "cpu")
    ss = steady_state(d, batch, d.high)
    assert ss.converged.all()
    parts = batch.split(ss.x)
    assert parts[0].size == 0 and np.allclose(parts[1], 0, atol=1e-8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu():
    d = get_dynamics("mutualistic")
    P = er().P
    cpu = steady_state(d, batch_scenarios([P], "cpu"), d.high).x.numpy()
    gpu = steady_state(d, batch_scenarios([P], "cuda"), d.high).x.cpu().numpy()
    assert np.allclose(cpu, gpu, rtol=1e-9)


def test_every_dynamics_converges_from_both_states():
    g = er(n=100, seed=5)
    for name, d in DYNAMICS.items():
        for x0 in (d.high, d.low):
            assert steady_state(d, batch_scenarios([g.P * 0.5], "cpu"), x0).converged.all(), (name, x0)


def test_large_sparse_network_never_goes_dense():
    """300k nodes: a dense matrix anywhere would need 720 GB; the solver must stay O(edges)."""
    rng = np.random.default_rng(0)
    n, m = 300_000, 900_000
    A = sp.csr_array((rng.uniform(0.5, 1.5, m), (rng.integers(0, n, m), rng.integers(0, n, m))), shape=(n, n))
    A = sp.csr_array(A + A.T)
    A.sum_duplicates()
    d = get_dynamics("regulatory")
    ss = steady_state(d, batch_scenarios([A], "cpu"), d.high)
    assert ss.converged.all()
    x = ss.x.numpy()
    assert np.abs(rhs(d, batch_scenarios([A], "cpu"), ss.x).numpy()).max() < 1e-8 * max(1, x.max())
