"""Line-graph benchmarks (issue 4): explicit export against networkx / graph-tool / a numpy CSR build,
and matrix-free β_eff against explicit scipy. Every method runs in a fresh process so that its peak
RSS is its own: ``python -m tests.benchmarks.linegraph METHOD W0-W1-...`` prints "seconds peak_MB"."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def _mlp(widths: list[int], bias: bool):
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double()


def _neuron_edges(widths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum(widths)])
    src, dst = [], []
    for layer, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        j, i = np.meshgrid(np.arange(a), np.arange(b))  # weight (i, j): neuron j of layer -> neuron i of next
        src.append(offsets[layer] + j.ravel())
        dst.append(offsets[layer + 1] + i.ravel())
    return np.concatenate(src), np.concatenate(dst)


def run_method(method: str, widths: list[int]) -> int:
    """Build the line graph of a bias-free MLP with ``method``; returns its edge count."""
    if method == "nncap-export":
        import torch

        from graphs.interaction import weight_factors
        from graphs.linegraph import trace
        from graphs.operator import InteractionOperator
        from pipeline.store import Store

        model = _mlp(widths, bias=False)
        g = trace(model, torch.zeros(2, widths[0], dtype=torch.float64))
        op = InteractionOperator(g, weight_factors(model, g), device="cpu")
        tmp = tempfile.mkdtemp(prefix="nncap-bench-")
        try:
            blocks = ((c.numpy(), v.numpy()) for c, v in (op.row_values(a, b) for a, b in g.row_ranges(1 << 22)))
            Store(f"{tmp}/s.zarr").write_csr_stream("mlp", shape=(g.n_nodes, g.n_nodes), indptr=g.indptr,
                                                     blocks=blocks, index_dtype=np.int32, self_loops=g.n_self_loops)
        finally:
            shutil.rmtree(tmp)
        return g.n_edges
    if method == "numpy-csr":
        import scipy.sparse as sp
        import torch

        from graphs.linegraph import trace

        model = _mlp(widths, bias=False)
        g = trace(model, torch.zeros(2, widths[0], dtype=torch.float64))
        w = np.abs(np.concatenate([p.detach().numpy().ravel() for p in model.parameters()]))
        rows, cols = g.edges(0, g.n_nodes)
        P = sp.csr_array((w[rows] * w[cols], cols, g.indptr), shape=(g.n_nodes, g.n_nodes))
        return P.nnz
    src, dst = _neuron_edges(widths)
    if method == "graph-tool":
        import graph_tool.all as gt

        G = gt.Graph(directed=True)
        G.add_vertex(int(sum(widths)))
        G.add_edge_list(np.column_stack([src, dst]))
        L, _ = gt.line_graph(G)
        return L.num_edges()
    if method == "networkx":
        import networkx as nx

        G = nx.DiGraph()
        G.add_edges_from(zip(src.tolist(), dst.tolist()))
        return nx.line_graph(G).number_of_edges()
    raise SystemExit(f"unknown method {method}")


def measure(method: str, widths: list[int]) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, edges) of one method in a fresh process."""
    out = subprocess.run([sys.executable, "-m", "tests.benchmarks.linegraph", method, "-".join(map(str, widths))],
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def bench_export() -> list[str]:
    rows = []
    for widths, methods in (([784, 64, 64, 10], ["nncap-export", "numpy-csr", "graph-tool", "networkx"]),
                            ([784, 512, 512, 10], ["nncap-export", "numpy-csr", "graph-tool"])):
        results = {m: measure(m, widths) for m in methods}
        base = results["nncap-export"][0]
        for m, (sec, mb, edges) in results.items():
            what = "nncap trace + P values + streamed Zarr write" if m == "nncap-export" else m
            rows.append(f"| line graph of MLP {'-'.join(map(str, widths))} ({edges / 1e6:.1f}M edges), {what} | "
                        f"{sec:.2f} s ({edges / sec / 1e6:.1f} M edges/s), peak RSS {mb:.0f} MB | {sec / base:.2f}× |")
    return rows


def bench_capacitance() -> list[str]:
    """β_eff of a 784-512-512-10 MLP: matrix-free vs explicit scipy, per interaction model."""
    import torch

    from graphs.interaction import interaction
    from graphs.linegraph import trace
    from graphs.meanfield import structure
    from graphs.operator import InteractionOperator

    rows = []
    # chain and hessian need 4 weight layers: with 3, the softmax identity makes signed β_eff ≡ 0
    for widths, kinds in (([784, 512, 512, 10], ["weight"]), ([784, 128, 128, 128, 10], ["chain", "hessian"])):
        model = _mlp(widths, bias=True)
        x = torch.randn(64, widths[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        y = torch.randint(0, widths[-1], (64,), generator=torch.Generator().manual_seed(1))
        g = trace(model, x[:2])
        for kind in kinds:
            t = time.perf_counter()
            factors = interaction(model, g, kind, x, y)
            t_factors = time.perf_counter() - t
            op = InteractionOperator(g, factors, device="cpu")
            t = time.perf_counter()
            free = op.beta_eff()
            t_free = time.perf_counter() - t
            t = time.perf_counter()
            P = op.to_scipy()
            t_build = time.perf_counter() - t
            t = time.perf_counter()
            explicit = structure(P).beta_eff
            t_explicit = time.perf_counter() - t
            del P
            assert abs(free - explicit) <= 1e-9 * abs(explicit), (free, explicit)
            rows.append(f"| β_eff of MLP {'-'.join(map(str, widths))} ({g.n_edges / 1e6:.0f}M edges), {kind}: "
                        f"matrix-free from the factors | {t_free * 1e3:.1f} ms (factors: {t_factors * 1e3:.0f} ms) | 1× |")
            rows.append(f"| same, explicit scipy from the same factors: build P / β_eff of the built P | "
                        f"{t_build:.2f} s / {t_explicit:.2f} s | {(t_build + t_explicit) / t_free:.0f}× / "
                        f"{t_explicit / t_free:.0f}× |")
    return rows


PRELOAD = {"nncap-export": ["torch", "pipeline.store", "graphs.operator"], "numpy-csr": ["torch", "scipy.sparse",
           "graphs.linegraph"], "graph-tool": ["graph_tool.all"], "networkx": ["networkx"]}

if __name__ == "__main__":
    import importlib
    import warnings

    warnings.filterwarnings("ignore", category=RuntimeWarning)  # graph-tool without cairo
    for module in PRELOAD.get(sys.argv[1], []):  # imports are not part of the measured time
        importlib.import_module(module)
    t0 = time.perf_counter()
    n = run_method(sys.argv[1], [int(w) for w in sys.argv[2].split("-")])
    seconds = time.perf_counter() - t0
    print(f"{seconds:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} {n}")
