"""Pipeline stages: each reads from and writes to a store, and runs its work as Dask tasks (one
task per network here). Stages are idempotent: re-running skips graphs already published with the
same content."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Sequence

import pandas as pd

from graphs.meanfield import spectral_reduction, structure
from graphs.stats import basic_stats
from pipeline.cluster import run_tasks
from pipeline.errors import USER_ERRORS, NncapError, one_line
from pipeline.importers import ImportOptions, absolute_source, default_graph_id, import_source
from pipeline.query import filter_frame
from pipeline.store import Store, check_graph_id

COMPACT_AFTER = 256  # catalog entries that trigger folding into a snapshot after a stage


@dataclass
class StageResult:
    """What a stage did: one record per success and ``(item, message)`` per failure; ``notes`` are
    one-line remarks for the user (such as how much earlier work a resumed run reused)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    table: pd.DataFrame | None = None
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def import_networks(store_url: str, sources: Sequence[str], *, client: Any, options: ImportOptions | None = None,
                    ids: Sequence[str] | None = None, storage_options: dict[str, Any] | None = None,
                    show_progress: bool | None = None) -> StageResult:
    """Import every source into the store, one Dask task per source."""
    options = options or ImportOptions()
    if ids is not None and len(ids) != len(sources):
        raise NncapError(f"{len(ids)} ids given for {len(sources)} sources")
    for i, source in enumerate(sources):  # bad ids fail the whole command before anything is written
        check_graph_id(ids[i] if ids else default_graph_id(source))
    store = Store(store_url, storage_options=storage_options)  # create it (or fail) before fanning out
    items = [(absolute_source(s), (ids[i] if ids else None)) for i, s in enumerate(sources)]
    task = partial(_import_one, store.url, options=options, storage_options=storage_options)
    result = StageResult()
    for (spec, _), record, error in run_tasks(client, task, items, label="import", show_progress=show_progress):
        if error is None:
            result.records.append(record)
        else:
            result.failures.append((spec, error_message(error)))
    if store.pending_entries() > COMPACT_AFTER:
        store.compact()
    return result


def _import_one(store_url: str, item: tuple[str, str | None], *, options: ImportOptions,
                storage_options: dict[str, Any] | None) -> dict[str, Any]:
    spec, graph_id = item
    return import_source(store_url, spec, options, graph_id, storage_options)


def per_graph(store: Store, where: str | None, task: Any, *, client: Any, label: str,
              show_progress: bool | None) -> tuple[StageResult, list[dict[str, Any]]]:
    """Run ``task(graph_id) -> dict`` for every graph matching ``where`` as Dask tasks: the result
    with its failures, and the rows (``id`` first) of the graphs that succeeded."""
    catalog = filter_frame(store.catalog(), where)
    result = StageResult()
    rows = []
    for gid, row, error in run_tasks(client, task, list(catalog["id"]), label=label, show_progress=show_progress):
        if error is None:
            rows.append({"id": gid, **row})
        else:
            result.failures.append((gid, error_message(error)))
    return result, rows


def summarize(store_url: str, *, client: Any, where: str | None = None,
              storage_options: dict[str, Any] | None = None, show_progress: bool | None = None) -> StageResult:
    """Structural statistics (graphs.stats.basic_stats) of every graph matching ``where``."""
    store = Store(store_url, mode="r", storage_options=storage_options)
    task = partial(_summarize_one, store.url, storage_options=storage_options)
    result, rows = per_graph(store, where, task, client=client, label="summary", show_progress=show_progress)
    result.table = pd.DataFrame(rows)
    return result


def _summarize_one(store_url: str, graph_id: str, *, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    graph = Store(store_url, mode="r", storage_options=storage_options).read_graph(graph_id)
    return {"directed": graph.directed, "weighted": graph.weighted, **basic_stats(graph)}


def mean_field(store_url: str, *, client: Any, where: str | None = None, spectral: bool = False,
               device: str = "auto", storage_options: dict[str, Any] | None = None,
               show_progress: bool | None = None) -> StageResult:
    """β_eff, ⟨s⟩, S, H (and with ``spectral`` the leading eigenvalue of P) of every graph matching
    ``where``; stored as the results table ``structure``. Undefined values come with their reason."""
    store = Store(store_url, storage_options=storage_options)
    task = partial(_mean_field_one, store.url, spectral=spectral, device=device, storage_options=storage_options)
    result, rows = per_graph(store, where, task, client=client, label="structure", show_progress=show_progress)
    result.table = pd.DataFrame(rows)
    if rows:
        store.write_table("structure", result.table, {"spectral": spectral})
    return result


def _mean_field_one(store_url: str, graph_id: str, *, spectral: bool, device: str,
                    storage_options: dict[str, Any] | None) -> dict[str, Any]:
    graph = Store(store_url, mode="r", storage_options=storage_options).read_graph(graph_id)
    st = structure(graph, device)
    row = {"n_nodes": st.n_nodes, "beta_eff": st.beta_eff, "mean_strength": st.mean_strength, "S": st.symmetry,
           "H": st.heterogeneity, "total": st.total, "abs_total": st.abs_total, "note": st.reason}
    if spectral:
        row["lambda_max"] = spectral_reduction(graph).eigenvalue if graph.n_nodes else float("nan")
    return row


def error_message(error: BaseException) -> str:
    """User errors speak for themselves; anything else (a bug, a lost worker) names its type."""
    text = one_line(error)
    return text if isinstance(error, USER_ERRORS) else f"{type(error).__name__}: {text}"
