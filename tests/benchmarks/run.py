"""`make bench`: speed and memory figures as ratios measured within one run (see docs/benchmarks.md).

Each benchmark prints a markdown table row set; nothing here asserts timings.
Sizes can be reduced for a quick look: NNCAP_BENCH_GRAPHS=1000 make bench.
"""

from __future__ import annotations

import os
import shutil
import statistics
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


def main() -> None:
    n = int(os.environ.get("NNCAP_BENCH_GRAPHS", "10000"))
    print(f"# nncap benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, python {sys.version.split()[0]})\n")
    print("| benchmark | figure | ratio |\n|---|---|---|")
    for row in bench_import() + bench_catalog(n):
        print(row, flush=True)


if __name__ == "__main__":
    main()
