"""Load test (issue 7): a zoo of many small models through `nncap export` and `nncap structure`
(β_eff of every stored line graph) on a local Dask cluster, then catalog queries over the zoo.
Every command runs as a child process, so its peak RSS (largest process of its tree) is its own:
``python -m tests.benchmarks.zooload N`` prints the markdown rows for docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Small digits MLPs (64 inputs, 10 classes): widths vary with the model index.
HIDDEN = [(32, 16), (24, 24), (48,), (16, 16, 16)]


def make_zoo(root: Path, n_models: int) -> Path:
    """``n_models`` randomly initialised MLPs (seed = index) as safetensors, with their manifest."""
    import torch
    from safetensors.torch import save_file

    from pipeline.models import build

    root.mkdir(parents=True, exist_ok=True)
    lines = ['[zoo]\nname = "load"\ndataset = "digits"\n']
    for i in range(n_models):
        widths = [64, *HIDDEN[i % len(HIDDEN)], 10]
        torch.manual_seed(i)
        save_file(build("mlp", {"widths": widths, "activation": "relu"}).state_dict(), str(root / f"m{i:05d}.safetensors"))
        lines.append(f'[[models]]\nid = "m{i:05d}"\ncheckpoint = "m{i:05d}.safetensors"\narchitecture = "mlp"\n'
                     f'params = {{ widths = {widths}, activation = "relu" }}\n')
    (root / "manifest.toml").write_text("\n".join(lines))
    return root


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``nncap ARGS`` in a child process: (wall seconds, peak RSS in MB of its largest process, stdout)."""
    out = subprocess.run([sys.executable, "-m", "tests.benchmarks.zooload", "--child", *args], check=True,
                         capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "passive", **(env or {})})
    wall, peak, stdout = out.stdout.split("\n", 2)
    return float(wall), float(peak), stdout


def _child(args: list[str]) -> None:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(p.stderr)
    print(f"{wall}\n{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}\n{p.stdout}", end="")


def run_load(n_models: int, workdir: Path, scheduler: str = "local") -> dict[str, float]:
    """Export and β_eff of an ``n_models`` zoo; returns the measured figures and checks the results:
    every model stored once, and β_eff recomputed from the stored P equal to export's."""
    zoo = make_zoo(workdir / "zoo", n_models)
    url = str(workdir / "store.zarr")
    export_s, export_mb, _ = timed(["export", str(zoo), "--store", url, "--mode", "explicit", "--scheduler", scheduler,
                                    "--no-progress"])
    structure_s, structure_mb, _ = timed(["structure", url, "--where", "kind == 'linegraph'", "--scheduler",
                                          scheduler, "--no-progress"])
    from pipeline.query import open_store
    from pipeline.store import Store

    store = Store(url, mode="r")
    catalog = store.catalog()
    assert len(catalog) == n_models and catalog["id"].is_unique, "models lost or duplicated"
    table, _ = store.read_table("structure")
    merged = catalog.set_index("id")["beta_eff"].to_frame("exported").join(table.set_index("id")["beta_eff"])
    assert np.allclose(merged["exported"], merged["beta_eff"], rtol=1e-9), "β_eff differs between stages"
    t = time.perf_counter()
    hits = open_store(url).query("beta_eff > 0 and n_params > 2500")
    query_s = time.perf_counter() - t
    edges = int(catalog["n_edges"].sum())
    return {"models": n_models, "edges": edges, "export_s": export_s, "export_mb": export_mb,
            "structure_s": structure_s, "structure_mb": structure_mb, "query_s": query_s, "hits": len(hits),
            "pending": store.pending_entries()}


def rows(f: dict[str, float]) -> list[str]:
    n, e = f["models"], f["edges"]
    return [
        f"| export of {n} small MLPs ({e / 1e6:.0f}M edges) on a local Dask cluster | {f['export_s']:.0f} s: "
        f"{n / f['export_s'] * 3600:,.0f} models/h, {e / f['export_s'] / 1e6:.1f}M edges/s | peak RSS "
        f"{f['export_mb']:.0f} MB (largest process) |",
        f"| β_eff of the {n} stored line graphs (`nncap structure`) | {f['structure_s']:.0f} s: "
        f"{n / f['structure_s'] * 3600:,.0f} models/h, {e / f['structure_s'] / 1e6:.1f}M edges/s | peak RSS "
        f"{f['structure_mb']:.0f} MB |",
        f"| catalog query over the {n}-model zoo | {f['query_s'] * 1e3:.0f} ms | {int(f['hits'])} hits |",
    ]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="nncap-load-") as d:
        figures = run_load(n, Path(d))
    print("\n".join(rows(figures)))
    print(json.dumps(figures), file=sys.stderr)


if __name__ == "__main__":
    main()
