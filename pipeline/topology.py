"""The topology stage (``nncap topology``): graph-tool measures of every stored graph matching a
filter, one Dask task per graph, as the results table ``topology`` (and, for model line graphs,
per layer-pair blocks in ``topology-layers``). Line graphs stored implicitly
get what their matrix-free operator allows (size, β_eff, the spectral radius by power iteration);
the other measures are NaN with the note "needs explicit export"."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

import pandas as pd

from graphs.topology import TopologyOptions, layer_pairs, moments, topology
from pipeline.stages import StageResult, per_graph
from pipeline.store import Store


def run_topology(store_url: str, *, client: Any, where: str | None = None, options: TopologyOptions | None = None,
                 storage_options: dict[str, Any] | None = None, show_progress: bool | None = None) -> StageResult:
    """Topology of every graph matching ``where``; stored as the results table ``topology``."""
    options = options or TopologyOptions()
    store = Store(store_url, storage_options=storage_options)
    task = partial(_topology_one, store.url, options=options, storage_options=storage_options)
    result, rows = per_graph(store, where, task, client=client, label="topology", show_progress=show_progress)
    layers = [{"id": r["id"], **block} for r in rows for block in r.pop("layer_pairs", [])]
    result.table = pd.DataFrame(rows)
    if rows:
        store.write_table("topology", result.table, {"options": asdict(options)})
    if layers:
        store.write_table("topology-layers", pd.DataFrame(layers), {})
    return result


def _topology_one(store_url: str, graph_id: str, *, options: TopologyOptions,
                  storage_options: dict[str, Any] | None) -> dict[str, Any]:
    store = Store(store_url, mode="r", storage_options=storage_options)
    record = store.record(graph_id)
    if record.get("meta", {}).get("storage") == "implicit":
        return _implicit_row(store, graph_id, record)
    graph = store.read_graph(graph_id)
    return {**topology(graph, options), "layer_pairs": layer_pairs(graph)}


def _implicit_row(store: Store, graph_id: str, record: dict[str, Any]) -> dict[str, Any]:
    from pipeline.export import load_operator

    op = load_operator(store, graph_id, device="cpu")
    row: dict[str, Any] = {"n_nodes": record["n_nodes"], "n_edges": record["meta"]["n_edges_implicit"],
                           "beta_eff": op.beta_eff(), "spectral_radius": op.spectral_radius(),
                           "notes": "needs explicit export: an implicit line graph gives only its size, strengths, "
                                    "β_eff and spectral radius"}
    for name, s in (("s_in", op.in_strength()), ("s_out", op.out_strength())):
        row[f"{name}_mean"], row[f"{name}_max"], row[f"{name}_std"] = moments(s.cpu().numpy())
    return row
