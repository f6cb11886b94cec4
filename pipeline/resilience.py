"""The resilience stage: perturbation sweeps of stored networks, simulated to steady state and
compared with the 1-D reduction (Gao, Barzel & Barabási 2016), fanned out over Dask as one task per
(network, initial state, batch of sweep points).

Outputs: a tidy table (one row per simulated network; CSV in ``out`` and ``results/<name>`` in the
store), a per-network summary of the reduction's error, the collapse figure and the error figure.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Sequence

import fsspec
import numpy as np
import pandas as pd

from graphs.dynamics import get_dynamics
from graphs.meanfield import beta_eff
from graphs.perturb import check_mode, sweep
from graphs.reduction import critical_points
from graphs.resilience import analyse
from pipeline.cluster import run_tasks
from pipeline.errors import NncapError
from pipeline.query import filter_frame
from pipeline.stages import StageResult, error_message
from pipeline.store import Store

MAX_BATCH_NODES = 1_000_000  # nodes per simulated batch (one Dask task); bounds a task's memory


@dataclass
class SweepSpec:
    """What to simulate. ``strength`` is the largest perturbation (fraction removed, or weight
    reduction) reached by the last of ``points`` evenly spaced points, starting from the intact
    network. ``beta_target`` first rescales each network's weights so its intact β_eff equals it,
    which makes networks of different scales cross the same tipping point."""

    dynamics: str = "mutualistic"
    perturbation: str = "node-removal"
    mode: str = "random"
    points: int = 40
    strength: float = 0.9
    inits: tuple[str, ...] = ("high", "low")
    seed: int = 0
    beta_target: float | None = None
    device: str = "auto"
    spectral: bool = False
    params: dict[str, float] = field(default_factory=dict)

    def validate(self) -> "SweepSpec":
        get_dynamics(self.dynamics, **self.params)
        check_mode(self.perturbation, self.mode)
        if self.points < 1:
            raise NncapError("--points must be at least 1")
        if not 0 <= self.strength <= 1:
            raise NncapError("--strength must lie in [0, 1]")
        for init in self.inits:
            if init not in ("high", "low"):
                raise NncapError(f"--init must be high, low or both, not {init!r}")
        if self.beta_target is not None and not self.beta_target > 0:
            raise NncapError("--beta-target must be positive")
        return self

    @property
    def name(self) -> str:
        return f"resilience-{self.dynamics}-{self.perturbation}-{self.mode}"

    def strengths(self) -> np.ndarray:
        return np.linspace(0.0, self.strength, self.points) if self.points > 1 else np.zeros(1)


def run_resilience(store_url: str, spec: SweepSpec, *, client: Any, ids: Sequence[str] | None = None,
                   where: str | None = None, out: str = "nncap-results", name: str | None = None,
                   storage_options: dict[str, Any] | None = None, show_progress: bool | None = None) -> StageResult:
    """Run the sweeps on the selected networks (``ids``, or all matching ``where``), write the
    table, summary and figures, and return the summary as the stage's table."""
    spec.validate()
    store = Store(store_url, storage_options=storage_options)
    catalog = filter_frame(store.catalog(), where)
    if ids:
        missing = sorted(set(ids) - set(catalog["id"]))
        if missing:
            raise NncapError(f"no graph(s) {missing} in {store_url}" + (" matching --where" if where else ""))
        catalog = catalog[catalog["id"].isin(ids)]
    if catalog.empty:
        raise NncapError(f"no graphs to analyse in {store_url}")
    items = []
    for gid, n in zip(catalog["id"], catalog["n_nodes"]):
        per_task = max(1, MAX_BATCH_NODES // max(int(n), 1))
        chunks = [list(range(a, min(a + per_task, spec.points))) for a in range(0, spec.points, per_task)]
        items += [(gid, init, c) for init in spec.inits for c in chunks]
    task = partial(_sweep_task, store.url, spec, storage_options=storage_options)
    result = StageResult()
    rows: list[dict[str, Any]] = []
    for (gid, init, _), part, error in run_tasks(client, task, items, label=f"resilience ({spec.dynamics})",
                                                 show_progress=show_progress):
        if error is None:
            rows += part
        else:
            result.failures.append((f"{gid} ({init})", error_message(error)))
    if not rows:
        return result
    table = pd.DataFrame(rows).sort_values(["graph", "init", "t"]).reset_index(drop=True)
    summary = summarise(table)
    name = name or spec.name
    meta = {**asdict(spec), "inits": list(spec.inits), "graphs": sorted(set(table["graph"]))}
    store.write_table(name, table, meta)
    store.write_table(f"{name}-summary", summary, meta)
    fs, base = fsspec.core.url_to_fs(out)
    fs.makedirs(base, exist_ok=True)
    with fsspec.open(f"{out.rstrip('/')}/{name}.csv", "w") as f:
        table.to_csv(f, index=False)
    with fsspec.open(f"{out.rstrip('/')}/{name}-summary.csv", "w") as f:
        summary.to_csv(f, index=False)
    from pipeline.figures import reduction_error, resilience_collapse

    dyn = get_dynamics(spec.dynamics, **spec.params)
    resilience_collapse(table, dyn, f"{out.rstrip('/')}/{name}-collapse.png",
                        title=f"{spec.dynamics}, {spec.perturbation} ({spec.mode}): {table['graph'].nunique()} networks")
    reduction_error(table, f"{out.rstrip('/')}/{name}-error.png")
    result.records = table.to_dict("records")
    result.table = summary
    result.outputs = [os.path.join(out, f"{name}{s}") for s in (".csv", "-summary.csv", "-collapse.png", "-error.png")]
    return result


def _sweep_task(store_url: str, spec: SweepSpec, item: tuple[str, str, list[int]], *,
                storage_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    gid, init, chunk = item
    graph = Store(store_url, mode="r", storage_options=storage_options).read_graph(gid)
    P = graph.P
    scale = 1.0
    if spec.beta_target is not None:
        b0 = beta_eff(P, "cpu")
        if not b0 > 0:
            raise NncapError(f"{gid}: β_eff = {b0} cannot be rescaled to --beta-target")
        scale = spec.beta_target / b0
        P = P * scale
    dyn = get_dynamics(spec.dynamics, **spec.params)
    points = sweep(P, spec.perturbation, spec.mode, spec.strengths()[chunk], directed=graph.directed,
                   seed=spec.seed)
    rows = analyse(dyn, points, init, device=spec.device, critical=critical_points(dyn), spectral=spec.spectral)
    for k, row in zip(chunk, rows):
        row.update(graph=gid, init=init, point=k, weight_scale=scale)
    return rows


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per network and initial state: how well the 1-D equation predicts x_eff — overall, away from
    tipping points (and on the predicted branch), near them — and how often it picks the wrong branch."""
    out = []
    for (gid, init), g in table.groupby(["graph", "init"], sort=True):
        ok = g[np.isfinite(g["rel_error"])]
        away = ok[~ok["near_critical"] & ok["same_branch"]]
        near = ok[ok["near_critical"]]
        intact = g[g["t"] == g["t"].min()].iloc[0]
        out.append({
            "graph": gid, "init": init, "points": len(g), "converged": int(g["converged"].sum()),
            "H": intact["heterogeneity"], "beta_eff_intact": intact["beta_eff"],
            "mean_rel_error": _mean(ok["rel_error"]), "mean_rel_error_away": _mean(away["rel_error"]),
            "mean_rel_error_near": _mean(near["rel_error"]), "max_rel_error": _max(ok["rel_error"]),
            "wrong_branch": int((~ok["same_branch"]).sum()),
            **({"mean_rel_error_spectral": _mean(g["rel_error_spec"].dropna())} if "rel_error_spec" in g else {}),
        })
    return pd.DataFrame(out)


def _mean(s: pd.Series) -> float:
    return float(s.mean()) if len(s) else math.nan


def _max(s: pd.Series) -> float:
    return float(s.max()) if len(s) else math.nan
