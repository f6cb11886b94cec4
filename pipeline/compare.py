"""Comparative topology studies (``nncap compare``): groups of stored graphs compared measure by
measure, and real graphs against their degree-preserving randomisations.

- ``compare_groups``: graphs grouped by a catalog attribute (e.g. ``kind``, ``metric_epoch``,
  ``architecture``); for every numeric measure of the ``topology`` and ``structure`` tables
  (β_eff with its decomposition ⟨s⟩ + S·H included) and every pair of groups: the means, their
  difference with a bootstrap 95 % interval, and Cohen's d.
- ``randomisation_zscores``: each graph against ``n`` randomisations by graph-tool's
  ``random_rewire`` (configuration model, degree sequence kept, no parallel edges or self-loops
  added): z = (real − mean) / sd of every measure over the randomisations.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from graphs.formats import from_graph_tool, to_graph_tool
from graphs.topology import TopologyOptions, topology
from pipeline.errors import NncapError
from pipeline.stages import StageResult, per_graph
from pipeline.store import Store, StoreError

SKIP = {"n_nodes", "n_edges", "notes"}


def measures_table(store: Store) -> pd.DataFrame:
    """The catalog joined with the stored ``topology`` and ``structure`` tables (by graph id)."""
    frame = store.catalog()
    found = False
    for name in ("topology", "structure"):
        try:
            table, _ = store.read_table(name)
        except StoreError:
            continue
        found = True
        extra = [c for c in table.columns if c != "id" and c not in frame.columns]
        frame = frame.merge(table[["id", *extra]], on="id", how="left")
    if not found:
        raise NncapError("the store has no topology or structure table yet: run `nncap topology` "
                         "(and/or `nncap structure`) first")
    return frame


def compare_groups(frame: pd.DataFrame, by: str, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (measure, group pair): means, difference b − a with a bootstrap 95 % interval,
    and Cohen's d with the pooled standard deviation."""
    if by not in frame.columns:
        raise NncapError(f"no catalog column {by!r} to group by; columns: {', '.join(map(str, frame.columns))}")
    groups = {str(k): g for k, g in frame.groupby(frame[by].astype(str), sort=True)}
    if len(groups) < 2:
        raise NncapError(f"grouping by {by!r} gives {len(groups)} group; need at least two")
    numeric = [c for c in frame.columns if c not in SKIP and c != by and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    rng = np.random.default_rng(seed)
    rows = []
    for measure in numeric:
        for (ga, a), (gb, b) in itertools.combinations(groups.items(), 2):
            x, y = a[measure].to_numpy(float), b[measure].to_numpy(float)
            x, y = x[np.isfinite(x)], y[np.isfinite(y)]
            if not x.size or not y.size:
                continue
            diff = float(y.mean() - x.mean())
            boots = rng.choice(y, (n_boot, y.size)).mean(1) - rng.choice(x, (n_boot, x.size)).mean(1)
            pooled = math.sqrt(((x.size - 1) * x.var(ddof=1 if x.size > 1 else 0)
                                + (y.size - 1) * y.var(ddof=1 if y.size > 1 else 0)) / max(1, x.size + y.size - 2))
            rows.append({"measure": measure, "group_a": ga, "group_b": gb, "n_a": x.size, "n_b": y.size,
                         "mean_a": float(x.mean()), "mean_b": float(y.mean()), "difference": diff,
                         "ci_lo": float(np.percentile(boots, 2.5)), "ci_hi": float(np.percentile(boots, 97.5)),
                         "cohens_d": diff / pooled if pooled > 0 else math.nan})
    return pd.DataFrame(rows)


def run_compare(store_url: str, by: str, where: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Group comparison of the stored measures of the graphs matching ``where``; stored as the
    results table ``comparison``."""
    from pipeline.query import filter_frame

    store = Store(store_url)
    table = compare_groups(filter_frame(measures_table(store), where), by, seed=seed)
    store.write_table("comparison", table, {"by": by, "where": where or ""})
    return table


def largest_effects(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison table ordered by |Cohen's d|, largest first."""
    return table.reindex(table.cohens_d.abs().sort_values(ascending=False).index)


def randomisation_zscores(store_url: str, *, client: Any, where: str | None = None, n: int = 10,
                          options: TopologyOptions | None = None, seed: int = 0,
                          show_progress: bool | None = None) -> StageResult:
    """z-scores of every topology measure of each graph against ``n`` degree-preserving
    randomisations; stored as the results table ``randomisation``."""
    if n < 2:
        raise NncapError("--randomise needs at least 2 randomisations to estimate a spread")
    store = Store(store_url)
    task = partial(_zscores_one, store.url, n=n, options=options or TopologyOptions(), seed=seed)
    result, rows = per_graph(store, where, task, client=client, label="randomise", show_progress=show_progress)
    tidy = [{"id": r["id"], **m} for r in rows for m in r["measures"]]
    result.table = pd.DataFrame(tidy)
    if tidy:
        store.write_table("randomisation", result.table, {"randomisations": n, "seed": seed})
    return result


def _zscores_one(store_url: str, graph_id: str, *, n: int, options: TopologyOptions, seed: int) -> dict[str, Any]:
    import graph_tool.all as gt

    graph = Store(store_url, mode="r").read_graph(graph_id)
    real = topology(graph, options)
    gt.seed_rng(seed)
    samples = []
    for i in range(n):
        g = to_graph_tool(graph)
        gt.random_rewire(g, model="configuration", parallel_edges=False, self_loops=False, n_iter=10)
        rewired, _ = from_graph_tool(g, weight="weight" if graph.weighted else None)
        samples.append(topology(rewired, replace(options, seed=seed + i + 1)))
    measures = []
    for key, value in real.items():
        if key in SKIP or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        values = np.array([s[key] for s in samples], float)
        values = values[np.isfinite(values)]
        mean = float(values.mean()) if values.size else math.nan
        sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
        spread = sd > 1e-9 * max(1.0, abs(mean))  # measures the randomisation keeps fixed have no z
        measures.append({"measure": key, "real": float(value), "random_mean": mean, "random_sd": sd,
                         "z": (float(value) - mean) / sd if spread else math.nan})
    return {"measures": measures}
