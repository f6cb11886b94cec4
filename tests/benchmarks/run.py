"""`make bench`: speed and memory figures as ratios measured within one run (see docs/benchmarks.md).

Each benchmark prints a markdown table row set; nothing here asserts timings.
Sizes can be reduced for a quick look: NNCAP_BENCH_GRAPHS=1000 make bench. One benchmark:
`python -m tests.benchmarks.run scenarios` (names: import, catalog, beta, scenarios, million, linegraph,
capacitance, load).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


def _timeit(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _write_batch(args):
    url, start, stop = args
    from graphs.graph import from_edges
    from pipeline.store import Store

    store = Store(url)
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        n = int(rng.integers(5, 60))
        g, _ = from_edges(rng.integers(0, n, 3 * n), rng.integers(0, n, 3 * n), n, duplicates="first")
        store.write_graph(f"g{i:05d}", g, meta={"family": ["mlp", "cnn", "resnet"][i % 3], "epoch": i % 20})
    return stop - start


def bench_catalog(n_graphs: int) -> list[str]:
    """Catalog query over n_graphs: compacted snapshot vs pending entries vs opening every group."""
    import zarr

    from pipeline.query import open_store
    from pipeline.store import Store

    tmp = tempfile.mkdtemp(prefix="nncap-bench-")
    url = os.path.join(tmp, "store.zarr")
    Store(url)
    t = time.perf_counter()
    workers = os.cpu_count() or 1
    bounds = np.linspace(0, n_graphs, workers * 4 + 1).astype(int)
    with ProcessPoolExecutor(workers) as pool:
        assert sum(pool.map(_write_batch, [(url, a, b) for a, b in zip(bounds[:-1], bounds[1:])])) == n_graphs
    write_s = time.perf_counter() - t
    where = "n_nodes > 30 and family == 'cnn' and epoch >= 10"
    pending = _timeit(lambda: open_store(url).query(where), repeat=3)
    Store(url).compact()
    compacted = _timeit(lambda: open_store(url).query(where))
    expected = len(open_store(url).query(where))

    def naive():
        root = zarr.open_group(url, mode="r")
        rows = [dict(g.attrs) for _, g in root["graphs"].groups()]
        return [r for r in rows if r["n_nodes"] > 30 and r["meta"]["family"] == "cnn" and r["meta"]["epoch"] >= 10]

    naive_s = _timeit(naive, repeat=1)
    assert len(naive()) == expected
    shutil.rmtree(tmp)
    return [
        f"| catalog query, {n_graphs} graphs, compacted snapshot | {compacted * 1e3:.0f} ms | 1× |",
        f"| catalog query, {n_graphs} graphs, {n_graphs} pending entries | {pending * 1e3:.0f} ms | "
        f"{pending / compacted:.1f}× |",
        f"| open every graph group with zarr and filter | {naive_s * 1e3:.0f} ms | {naive_s / compacted:.0f}× |",
        f"| writing the {n_graphs} small graphs ({workers} processes) | {write_s:.1f} s "
        f"({write_s / n_graphs * workers * 1e3:.0f} ms per graph per process) | |",
    ]


def bench_import() -> list[str]:
    """Import of real networks (parse + canonicalise + write + publish) against graph-tool's load alone."""
    from graphs.formats import _graph_tool
    from pipeline.importers import ImportOptions, import_source

    gt = _graph_tool()
    rows = []
    for name in ("power", "astro-ph", "pgp-strong-2009"):
        tmp = tempfile.mkdtemp(prefix="nncap-bench-")
        url = os.path.join(tmp, "s.zarr")
        path = os.path.join(os.path.dirname(gt.collection.__file__), f"{name}.gt.gz")
        load = _timeit(lambda: gt.load_graph(path), repeat=3)

        def full():
            shutil.rmtree(url, ignore_errors=True)
            import_source(url, path, ImportOptions(nonfinite="drop"))  # the file: parsed every time

        total = _timeit(full, repeat=3)
        edges = gt.collection.data[name].num_edges()
        rows.append(f"| import {name}.gt.gz ({edges} edges) | {total * 1e3:.0f} ms ({edges / total / 1e6:.2f} M edges/s) "
                    f"| {total / load:.1f}× graph-tool's load_graph alone |")
        shutil.rmtree(tmp)
    return rows


def _random_graph(n: int, nnz: int, seed: int = 0, symmetric: bool = False):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    m = nnz // 2 if symmetric else nnz
    A = sp.csr_array((rng.uniform(0.5, 1.5, m), (rng.integers(0, n, m), rng.integers(0, n, m))), shape=(n, n))
    if symmetric:
        A = sp.csr_array(A + A.T)
    A.sum_duplicates()
    return A


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_beta_eff() -> list[str]:
    """β_eff, S and H of a 10M-edge graph: nncap (torch, O(nnz)) vs scipy.sparse done plainly."""

    from graphs.meanfield import structure

    P = _random_graph(1_000_000, 10_000_000)
    ours = _timeit(lambda: structure(P, "cpu"), repeat=3)

    def plain():
        one = np.ones(P.shape[0])
        s_in, s_out = P @ one, P.T @ one
        total = P.sum()
        beta = s_out @ s_in / total
        return beta, np.corrcoef(s_in, s_out)[0, 1], s_in.std() * s_out.std() / (total / P.shape[0])

    scipy_plain = _timeit(plain, repeat=3)

    def squared():
        return (P @ P).sum() / P.sum()

    t = time.perf_counter()
    b2 = squared()
    sq = time.perf_counter() - t
    assert abs(b2 - structure(P, "cpu").beta_eff) < 1e-6 * b2
    return [
        f"| β_eff, S, H of a 10M-edge graph (1M nodes), nncap | {ours * 1e3:.0f} ms | 1× |",
        f"| same with scipy.sparse matvecs (P·1, Pᵀ·1) | {scipy_plain * 1e3:.0f} ms | {scipy_plain / ours:.1f}× |",
        f"| β_eff as 1ᵀ(P·P)1 with an explicit sparse product | {sq * 1e3:.0f} ms | {sq / ours:.0f}× |",
    ]


def bench_power_scenarios() -> list[str]:
    """100 node-removal scenarios of the power grid to steady state: one batch vs sequential BDF."""
    import scipy.sparse as sp
    from scipy.integrate import solve_ivp

    from graphs.dynamics import get_dynamics
    from graphs.perturb import sweep
    from graphs.simulate import batch_scenarios, steady_state
    from pipeline.importers import ImportOptions, load_source

    g = load_source("gt:power", ImportOptions()).graph
    d = get_dynamics("mutualistic")
    pts = [p.P for s in range(10) for p in sweep(g.P, "node-removal", "random", np.linspace(0, 0.45, 10), seed=s)]
    t = time.perf_counter()
    ss = steady_state(d, batch_scenarios(pts, "cpu"), d.high)
    ours = time.perf_counter() - t
    assert ss.converged.all()
    ours_x = batch_scenarios(pts, "cpu").split(ss.x)

    def bdf(P):
        n = P.shape[0]
        row = np.repeat(np.arange(n), np.diff(P.indptr))
        col, w = P.indices, P.data

        def f(_, x):
            return d.F(x, d.params) + np.bincount(row, weights=w * d.G(x[row], x[col], d.params), minlength=n)

        sol = solve_ivp(f, (0, 100), np.full(n, d.high), method="BDF", rtol=1e-8, atol=1e-10,
                        jac_sparsity=(P + sp.identity(n)).tocsr())
        return sol.y[:, -1]

    t = time.perf_counter()
    refs = [bdf(P) for P in pts]
    seq = time.perf_counter() - t
    worst = max(float(np.max(np.abs(a - b) / np.abs(b))) for a, b in zip(ours_x, refs))
    return [
        f"| 100 power-grid scenarios (mutualistic, high state), one nncap batch | {ours:.2f} s "
        f"({ours / 100 * 1e3:.0f} ms per scenario) | 1× |",
        f"| same, 100 sequential solve_ivp BDF with jac_sparsity | {seq:.1f} s | {seq / ours:.1f}× "
        f"(largest relative difference of the steady states {worst:.1e}) |",
    ]


def bench_million_nodes() -> list[str]:
    """A generated 1M-node network (⟨k⟩ = 6) to steady state: wall time and peak memory."""
    from graphs.dynamics import get_dynamics
    from graphs.simulate import batch_scenarios, steady_state

    P = _random_graph(1_000_000, 6_000_000, symmetric=True)
    P = P * (10.0 / (P.sum() / P.shape[0]))  # mean strength 10: above the mutualistic tipping point
    d = get_dynamics("mutualistic")
    base = _peak_rss_mb()
    t = time.perf_counter()
    ss = steady_state(d, batch_scenarios([P], "cpu"), d.high)
    wall = time.perf_counter() - t
    peak = _peak_rss_mb()
    return [f"| 1M nodes, {P.nnz / 1e6:.1f}M stored edges, mutualistic to steady state | {wall:.1f} s, "
            f"{int(ss.steps[0])} steps, converged={bool(ss.converged[0])} | peak RSS {peak:.0f} MB "
            f"({peak - base:.0f} MB above the graph itself: {(peak - base) * 1e6 / P.nnz:.0f} bytes per edge) |"]


def bench_linegraph_export() -> list[str]:
    from tests.benchmarks.linegraph import bench_export

    return bench_export()


def bench_capacitance() -> list[str]:
    from tests.benchmarks.linegraph import bench_capacitance as run

    return run()


def bench_zoo_load() -> list[str]:
    """A 1,000-model zoo through export and β_eff on a local Dask cluster (NNCAP_BENCH_MODELS to resize)."""
    from pathlib import Path

    from tests.benchmarks.zooload import rows, run_load

    with tempfile.TemporaryDirectory(prefix="nncap-load-") as d:
        return rows(run_load(int(os.environ.get("NNCAP_BENCH_MODELS", "1000")), Path(d)))


BENCHMARKS = {"import": bench_import, "catalog": None, "beta": bench_beta_eff, "scenarios": bench_power_scenarios,
              "million": bench_million_nodes, "linegraph": bench_linegraph_export, "capacitance": bench_capacitance,
              "load": bench_zoo_load}


def main() -> None:
    """Each benchmark runs in a process of its own, so peak-memory figures are its own."""
    if sys.argv[1:2] == ["--one"]:
        name = sys.argv[2]
        rows = bench_catalog(int(os.environ.get("NNCAP_BENCH_GRAPHS", "10000"))) if name == "catalog" \
            else BENCHMARKS[name]()
        print("\n".join(rows), flush=True)
        return
    chosen = sys.argv[1:] or list(BENCHMARKS)
    unknown = [c for c in chosen if c not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    print(f"# nncap benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, python {sys.version.split()[0]})\n")
    print("| benchmark | figure | ratio |\n|---|---|---|", flush=True)
    for name in chosen:
        subprocess.run([sys.executable, "-m", "tests.benchmarks.run", "--one", name], check=True)


if __name__ == "__main__":
    main()
