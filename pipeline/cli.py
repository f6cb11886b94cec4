"""The ``nncap`` command line: a thin layer over stages, the store and queries."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, List, Optional

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from pipeline.errors import USER_ERRORS, one_line
from pipeline.importers import ImportOptions, bundled_networks
from pipeline.stages import StageResult

app = typer.Typer(
    help="nncap: a Zarr store of graphs (real networks and neural networks' parameter interaction "
         "graphs) with Dask stages for their analysis.\n\nStart with `nncap sources`, then "
         "`nncap import STORE gt:karate`, `nncap query STORE` and `nncap show STORE karate`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="rich")
# Wide tables stay readable when output goes to a file or a pipe (rich defaults to 80 columns there).
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

SchedulerOpt = typer.Option(
    None, "--scheduler", envvar="NNCAP_SCHEDULER",
    help="Where stages run: 'local' (default: a Dask cluster of one worker per core), 'sync' "
         "(in-process, for debugging) or an existing dask.distributed scheduler, tcp://HOST:PORT.")
ProgressOpt = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: when stderr is a terminal).")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_table(frame: pd.DataFrame, title: str | None = None) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left",
                         overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_fmt(v) for v in row))
    out.print(table)


def _report_failures(result: StageResult) -> None:
    """Print the stage's notes and the files it wrote, then its failures (exit status 1 if any)."""
    for note in result.notes:
        err.print(note, highlight=False, soft_wrap=True)
    for path in result.outputs:
        err.print(f"wrote {path}", highlight=False)
    for item, message in result.failures:
        err.print(f"[red]error[/red]: {item}: {message}", highlight=False, soft_wrap=True)
    if result.failures:
        raise typer.Exit(1)


@app.command("sources")
def sources_cmd(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the real networks bundled with installed packages (import them as gt:NAME or nx:NAME)."""
    rows = bundled_networks()
    if json_out:
        out.print_json(json.dumps(rows))
        return
    _print_table(pd.DataFrame(rows), title="bundled networks")


@app.command("import")
def import_cmd(
    store: str = typer.Argument(..., help="Store location: a local path or fsspec URL (created if missing)."),
    sources: List[str] = typer.Argument(..., help="gt:NAME, nx:NAME (see `nncap sources`), or files: "
                                                  "edge lists (.csv .tsv .txt .edges), .graphml .gml .gt (optionally .gz)."),
    graph_id: Optional[List[str]] = typer.Option(None, "--id", help="Graph id per source (default: the source's name)."),
    undirected: bool = typer.Option(False, "--undirected", help="Edge lists: edges are undirected (stored as a symmetric P)."),
    weight: str = typer.Option("auto", help="'auto' (a weight/value column or property if present), 'none', "
                                            "or a column number (edge lists) / edge property name."),
    delimiter: Optional[str] = typer.Option(None, help="Edge-list delimiter (default: ',' for .csv, whitespace otherwise)."),
    duplicates: str = typer.Option("sum", help="Parallel edges: sum (multigraph adjacency), max, min, first, error."),
    self_loops: str = typer.Option("keep", help="Self-loops: keep, drop or error."),
    nonfinite: str = typer.Option("error", help="NaN/infinite weights: error, or drop those edges."),
    signed: bool = typer.Option(False, "--signed", help="Allow negative weights."),
    node_ids: str = typer.Option("label", help="Edge lists: 'label' (names, numbered by first appearance) or "
                                               "'index' (0-based integer node ids)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace graphs whose id exists with other content."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Import networks into the store, one Dask task each. Bad input is reported with its line
    number and nothing of that network is written; re-running skips what is already stored."""
    from pipeline.cluster import dask_client
    from pipeline.stages import import_networks

    if node_ids not in ("label", "index"):
        raise typer.BadParameter("--node-ids must be 'label' or 'index'")
    options = ImportOptions(directed=not undirected, weight=weight, delimiter=delimiter, duplicates=duplicates,
                            self_loops=self_loops, nonfinite=nonfinite, signed=signed, node_ids=node_ids,  # type: ignore[arg-type]
                            overwrite=overwrite)
    t0 = time.perf_counter()
    with dask_client(scheduler, n_workers=len(sources)) as client:
        result = import_networks(store, sources, client=client, options=options, ids=graph_id or None,
                                 show_progress=progress)
    if result.records:
        frame = pd.DataFrame(result.records)[["id", "n_nodes", "n_edges", "directed", "weighted", "source"]]
        _print_table(frame, title=f"imported into {store} in {time.perf_counter() - t0:.1f} s")
    _report_failures(result)


@app.command("query")
def query_cmd(
    store: str = typer.Argument(..., help="Store location."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Filter, e.g. \"n_nodes > 1000 and kind == "
                                                                     "'network'\" (catalog fields and meta keys)."),
    columns: Optional[str] = typer.Option(None, help="Comma-separated columns to show."),
    json_out: bool = typer.Option(False, "--json", help="JSON list of records, for machines."),
) -> None:
    """List the graphs matching a filter, answered from the catalog without opening any graph."""
    from pipeline.query import QueryError, open_store

    frame = open_store(store).query(where)
    if columns:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise QueryError(f"unknown column(s) {missing}; have: {', '.join(frame.columns)}")
        frame = frame[wanted]
    elif not json_out:
        frame = frame[[c for c in ("id", "kind", "directed", "weighted", "n_nodes", "n_edges", "source")
                       if c in frame.columns]]
    if json_out:
        sys.stdout.write(frame.to_json(orient="records") + "\n")
        return
    _print_table(frame, title=f"{len(frame)} graph(s)")


@app.command("show")
def show_cmd(
    store: str = typer.Argument(..., help="Store location."),
    graph_id: str = typer.Argument(..., help="Graph id (see `nncap query`)."),
    stats: bool = typer.Option(True, "--stats/--no-stats", help="Also load the graph and compute degree and "
                                                               "component statistics."),
    json_out: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Summarise one graph: its attributes, provenance, properties and structure."""
    from graphs.stats import basic_stats
    from pipeline.query import open_store

    reader = open_store(store)
    handle = reader.graph(graph_id)
    attrs = handle.attrs
    info: dict[str, Any] = {k: attrs.get(k) for k in ("id", "kind", "directed", "weighted", "n_nodes", "n_edges",
                                                      "nnz", "self_loops", "source", "created", "content_hash")}
    info["meta"] = attrs.get("meta", {})
    info["provenance"] = attrs.get("provenance", {})
    group = reader.store.group(graph_id)
    info["node_properties"] = {k: _describe_array(a) for k, a in sorted(group["nodes"].arrays())}
    info["edge_properties"] = {k: _describe_array(a) for k, a in sorted(group["edges"].arrays())}
    if stats:
        info["stats"] = basic_stats(reader.store.read_graph(graph_id))
    if json_out:
        sys.stdout.write(json.dumps(info, default=str) + "\n")
        return
    table = Table(title=f"graph {graph_id}", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in info.items():
        if isinstance(value, dict):
            for k, v in value.items():
                table.add_row(f"{key}.{k}", _fmt(json.dumps(v) if isinstance(v, (dict, list)) else v))
        else:
            table.add_row(key, _fmt(value))
    out.print(table)


@app.command("structure")
def structure_cmd(
    store: str = typer.Argument(..., help="Store location."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Catalog filter, as in `nncap query`."),
    spectral: bool = typer.Option(False, "--spectral", help="Also the leading eigenvalue λ_max of P (the spectral "
                                                             "reduction of Laurence et al. 2019)."),
    device: str = typer.Option("auto", help="auto (GPU when there is one), cpu or cuda."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Mean-field structure of stored graphs: β_eff = 1ᵀPP1/1ᵀP1, ⟨s⟩, symmetry S and heterogeneity H
    (β_eff = ⟨s⟩ + S·H). Stored as the results table `structure`."""
    from pipeline.cluster import dask_client
    from pipeline.stages import mean_field

    with dask_client(scheduler) as client:
        result = mean_field(store, client=client, where=where, spectral=spectral, device=device,
                            show_progress=progress)
    if result.table is not None and not result.table.empty:
        shown = result.table.drop(columns=["note", "total", "abs_total"])
        _print_table(shown, title="mean-field structure (row = receiver)")
        for gid, note in zip(result.table["id"], result.table["note"]):
            if note:
                err.print(f"[yellow]note[/yellow]: {gid}: {note}", highlight=False, soft_wrap=True)
    _report_failures(result)


zoo_app = typer.Typer(help="Model zoos: train one on a bundled dataset; export it with `nncap export`.",
                      no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("train")
def zoo_train_cmd(
    spec: str = typer.Argument(..., help="Zoo spec (TOML): [zoo] name, dataset, out; [grid] architecture, depth, "
                                         "width, activation, lr, epochs, seed; optional [sample] n, seed."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Directory for checkpoints and the manifest "
                                                                "(default: the spec's [zoo] out)."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Train a model zoo, one Dask task per configuration: a safetensors checkpoint after every epoch,
    train/validation metrics per epoch, and the manifest.toml `nncap export` reads. Runs already
    finished are skipped; see the docstring of pipeline/zoo.py for the spec format."""
    from pipeline.cluster import dask_client
    from pipeline.zoo import train_zoo

    with dask_client(scheduler) as client:
        result, _ = train_zoo(spec, client=client, out=out, show_progress=progress)
    if result.table is not None:
        _print_table(result.table, title="zoo (last epoch)")
    _report_failures(result)


@app.command("export")
def export_cmd(
    zoo: str = typer.Argument(..., help="Zoo directory with a manifest.toml (or the manifest itself)."),
    store: str = typer.Option(..., "--store", "-s", help="Store location (local path or fsspec URL)."),
    interaction: str = typer.Option("weight", help="P model: weight (|w_u w_v|, data-free), chain (first-order "
                                                   "back-propagation coefficient) or hessian (exact -∂²L/∂w_u∂w_v)."),
    mode: str = typer.Option("auto", help="explicit (CSR of P in the store), implicit (the factors of P; "
                                          "β_eff and P·z on demand) or auto (explicit up to --max-explicit-edges)."),
    absolute: bool = typer.Option(False, "--absolute", help="Use |P| (Gao's theory assumes P ≥ 0)."),
    module: Optional[str] = typer.Option(None, help="Restrict the graph to this sub-module, e.g. a probe head."),
    probe_size: int = typer.Option(128, help="Probe batch size (test split of the model's dataset)."),
    seed: int = typer.Option(0, help="Seed of the probe batch."),
    max_explicit_edges: int = typer.Option(200_000_000, help="--mode auto stores larger graphs implicitly."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Only this model id (repeatable)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace graphs exported from other checkpoints "
                                                              "or options."),
    device: str = typer.Option("auto", help="auto (GPU when there is one), cpu or cuda."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Export the parameter interaction line graphs of a model zoo (Jiang et al. 2024): one node per
    trainable parameter, an edge where two parameters share a neuron, P(u, v) = effect of parameter v on u.
    Models already exported from the same checkpoint and options are skipped; β_eff (the neural
    capacitance) and the other mean-field numbers go to the catalog."""
    from pipeline.cluster import dask_client
    from pipeline.export import ExportOptions, export_zoo

    options = ExportOptions(interaction=interaction, mode=mode, absolute=absolute, module=module,
                            probe_size=probe_size, seed=seed, max_explicit_edges=max_explicit_edges, device=device)
    with dask_client(scheduler) as client:
        result = export_zoo(store, zoo, client=client, options=options, models=model, overwrite=overwrite,
                            show_progress=progress)
    if result.table is not None:
        _print_table(result.table, title=f"line graphs ({interaction}{', |P|' if absolute else ''})")
    _report_failures(result)


@app.command("select")
def select_cmd(
    spec: str = typer.Argument(..., help="Selection spec (TOML), e.g. workflows/capacitance-digits.toml."),
    store: str = typer.Option("nncap-select.zarr", "--store", "-s", help="Store for the result tables."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Directory for CSV tables and figures "
                                                                "(default: the spec's out)."),
    budget: float = typer.Option(1.0, help="Scale the spec's training and evaluation subsets (e.g. 5 for a "
                                           "real study; capped by the dataset)."),
    full: bool = typer.Option(False, "--full", help="Also train every candidate on to early stopping for its true "
                                                    "accuracy, and score every method against it (default: the "
                                                    "early epochs only, or the spec's `full`)."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Neural-capacitance model selection (Jiang et al. 2024): train a probe on every candidate
    backbone for the early epochs, follow β_eff of its parameter graph, predict each final accuracy
    by Bayesian ridge regression at β_eff = 0, and rank the candidates (with the baselines' own
    predictions beside). --full trains on to early stopping and scores every method against the
    true accuracy (Kendall τ, Spearman ρ, top-1 regret, MAE, bootstrap intervals); it continues
    from the epochs an earlier run saved. Resumable per candidate and epoch."""
    from pipeline.cluster import dask_client
    from pipeline.select import run_select

    with dask_client(scheduler) as client:
        result = run_select(spec, store, client=client, out=out, budget=budget, full=full, show_progress=progress)
    if result.records:
        frame = pd.DataFrame(result.records).sort_values(["rank", "candidate"])
        cols = ["rank", "candidate", "true_accuracy", "capacitance", "early_accuracy", "curve_fit", "logme",
                "naswot", "neg_alpha_hat", "n_params"]
        _print_table(frame[[c for c in cols if c in frame]], title="candidates")
    if result.table is not None:
        _print_table(result.table[["method", "candidates", "kendall_tau", "kendall_tau_lo", "kendall_tau_hi",
                                   "spearman_rho", "top1_regret", "mae"]], title="methods")
    _report_failures(result)


@app.command("topology")
def topology_cmd(
    store: str = typer.Argument(..., help="Store location."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Catalog filter, as in `nncap query`."),
    path_sources: int = typer.Option(64, help="Sources sampled for path lengths on larger graphs."),
    motif_max_nodes: int = typer.Option(5000, help="Count 3-node motifs (paths, triangles; for directed graphs the 13 "
                                                   "connected triad types) up to this many nodes."),
    sbm_max_nodes: int = typer.Option(5000, help="Fit the stochastic block model up to this many nodes."),
    seed: int = typer.Option(0, help="Seed of the sampled measures and of the SBM inference."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Topology of stored graphs with graph-tool: degree and strength statistics, assortativity,
    clustering, k-cores, components, reciprocity, spectral radius, path lengths, motifs and
    stochastic-block-model communities. Stored as the results table `topology`."""
    from graphs.topology import TopologyOptions
    from pipeline.cluster import dask_client
    from pipeline.topology import run_topology

    options = TopologyOptions(path_sources=path_sources, motif_max_nodes=motif_max_nodes,
                              sbm_max_nodes=sbm_max_nodes, seed=seed)
    with dask_client(scheduler) as client:
        result = run_topology(store, client=client, where=where, options=options, show_progress=progress)
    if result.table is not None and not result.table.empty:
        table = result.table.drop(columns=["notes"]).set_index("id")
        if len(table) <= 8:  # one column per graph, one row per measure
            shown = table.T.reset_index().rename(columns={"index": "measure"})
            _print_table(shown.astype(object).where(shown.notna(), ""), title="topology (edge j -> i stored at P(i, j))")
        else:
            key = [c for c in ("n_nodes", "n_edges", "assortativity", "clustering_global", "kcore_max",
                               "giant_fraction", "spectral_radius", "path_mean", "sbm_blocks") if c in table]
            _print_table(table[key].reset_index(), title="topology: key measures (all in the store's `topology` table)")
        for gid, note in zip(result.table["id"], result.table["notes"]):
            if note:
                err.print(f"[yellow]note[/yellow]: {gid}: {note}", highlight=False, soft_wrap=True)
    _report_failures(result)


@app.command("compare")
def compare_cmd(
    store: str = typer.Argument(..., help="Store location (with a `topology` and/or `structure` table)."),
    by: Optional[str] = typer.Option(None, "--by", help="Catalog column defining the groups, e.g. kind, "
                                                        "metric_epoch, architecture."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Catalog filter, as in `nncap query`."),
    randomise: int = typer.Option(0, help="Also compare every graph with this many degree-preserving "
                                          "randomisations (z-scores; graph-tool's random_rewire)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap and the randomisations."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Compare groups of graphs measure by measure (difference of means with a bootstrap 95 %
    interval, Cohen's d; β_eff = ⟨s⟩ + S·H included), and/or graphs against their degree-preserving
    randomisations (z-scores). Stored as the results tables `comparison` and `randomisation`."""
    from pipeline.compare import largest_effects, randomisation_zscores, run_compare

    if not by and not randomise:
        raise typer.BadParameter("give --by ATTRIBUTE and/or --randomise N")
    if by:
        table = run_compare(store, by, where, seed)
        shown = largest_effects(table).head(25)
        _print_table(shown[["measure", "group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "difference",
                            "ci_lo", "ci_hi", "cohens_d"]],
                     title=f"groups by {by}: the 25 largest effects (all {len(table)} in the store's `comparison`)")
    if randomise:
        from pipeline.cluster import dask_client

        with dask_client(scheduler) as client:
            result = randomisation_zscores(store, client=client, where=where, n=randomise, seed=seed,
                                           show_progress=progress)
        if result.table is not None and not result.table.empty:
            varying = result.table[result.table.z.notna()]
            _print_table(varying, title=f"real vs {randomise} degree-preserving randomisations (measures they "
                                        "keep fixed are left out)")
        _report_failures(result)


@app.command("report")
def report_cmd(
    store: str = typer.Argument(..., help="Store location."),
    out: str = typer.Option("nncap-report", "--out", "-o", help="Directory for index.html and figures/."),
) -> None:
    """A static HTML report of everything in the store — catalog, mean-field structure, topology and
    comparisons, resilience sweeps, model-selection studies — as index.html plus PNG figures redrawn
    from the stored tables. Opens offline; no JavaScript."""
    from pipeline.report import write_report

    index = write_report(store, out)
    err.print(f"wrote {index} (open it in a browser)", highlight=False)


@app.command("check")
def check_cmd(
    store: str = typer.Argument(..., help="Store location."),
    repair: bool = typer.Option(False, "--repair", help="Remove unpublished (partial) graph groups. Published "
                                                        "data are never modified."),
    json_out: bool = typer.Option(False, "--json", help="The findings as one JSON object, for machines."),
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Validate a store: every published graph's group, schema version, CSR invariants and content
    hash, and every results table. Also lists the graph groups no catalog record points to: partial
    writes left by an interrupted run, invisible to readers. Exit status 1 when a published graph
    or table is invalid."""
    from pipeline.check import check_store

    show = sys.stderr.isatty() if progress is None else progress
    report = check_store(store, repair=repair, show_progress=show and not json_out)
    if json_out:
        print(json.dumps({"store": store, "ok": report.ok, "graphs_checked": report.checked,
                          "tables_checked": report.tables,
                          "problems": [{"item": i, "problem": p} for i, p in report.problems],
                          "partial_writes": report.unpublished, "removed": report.removed,
                          "stale_temporaries": report.temporaries}, indent=1))
        if not report.ok:
            raise typer.Exit(1)
        return
    for gid, problem in report.problems:
        err.print(f"[red]invalid[/red]: {gid}: {problem}", highlight=False, soft_wrap=True)
    for name in report.unpublished:
        state = "removed" if name in report.removed else "unpublished (partial write; --repair removes it)"
        err.print(f"[yellow]{state}[/yellow]: graphs/{name}", highlight=False)
    if report.temporaries:
        state = "removed" if repair else "left (--repair removes them)"
        err.print(f"[yellow]{len(report.temporaries)} stale temporary catalog file(s) {state}[/yellow]",
                  highlight=False)
    verdict = "ok" if report.ok else f"{len(report.problems)} invalid"
    if report.leftovers:
        verdict += f"; {len(report.leftovers)} partial write(s) left (invisible to readers; --repair removes them)"
    out.print(f"{report.checked} published graph(s) and {report.tables} table(s) checked: {verdict}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command("resilience")
def resilience_cmd(
    store: str = typer.Argument(..., help="Store location."),
    graph: Optional[List[str]] = typer.Option(None, "--graph", "-g", help="Graph id (repeatable)."),
    all_graphs: bool = typer.Option(False, "--all", help="Every graph in the store."),
    where: Optional[str] = typer.Option(None, "--where", "-w", help="Catalog filter, as in `nncap query`."),
    dynamics: str = typer.Option("mutualistic", help="mutualistic, regulatory, epidemic, biochemical, birth-death, "
                                                     "population or neuronal."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="Override a dynamics parameter, e.g. "
                                                                     "--param B=0.2 (repeatable)."),
    perturb: str = typer.Option("node-removal", help="node-removal, link-removal or weight-scaling."),
    mode: str = typer.Option("random", help="Removals: random or targeted (hubs / strongest links first). "
                                            "weight-scaling: uniform or random (each link also times U(0,2))."),
    points: int = typer.Option(40, help="Perturbation strengths from the intact network to --strength."),
    strength: float = typer.Option(0.9, help="Largest fraction removed (or weight reduction), in [0, 1]."),
    init: str = typer.Option("both", help="Initial state: high, low or both."),
    beta_target: Optional[float] = typer.Option(None, help="Rescale each network's weights so its intact β_eff "
                                                           "equals this (puts networks of any scale near the tipping "
                                                           "point)."),
    seed: int = typer.Option(0, help="Seed of the random removal orders and weights."),
    spectral: bool = typer.Option(False, "--spectral", help="Also the spectral reduction (β = λ_max, x_eff = aᵀx "
                                                             "with the left Perron vector; Laurence et al. 2019)."),
    device: str = typer.Option("auto", help="auto (GPU when there is one), cpu or cuda."),
    out: str = typer.Option("nncap-results", help="Directory (or fsspec URL) for the CSV tables and PNG figures."),
    scheduler: Optional[str] = SchedulerOpt,
    progress: Optional[bool] = ProgressOpt,
) -> None:
    """Perturb networks as in Gao, Barzel & Barabási (2016), simulate each perturbed network to
    steady state and compare its x_eff with the 1-D reduction's prediction. Writes a tidy table, a
    per-network error summary and the collapse figure to --out, and the tables to the store."""
    from pipeline.cluster import dask_client
    from pipeline.errors import NncapError
    from pipeline.resilience import SweepSpec, run_resilience

    if not (graph or all_graphs or where):
        raise NncapError("choose graphs with --graph ID, --where EXPR or --all")
    inits = ("high", "low") if init == "both" else (init,)
    spec = SweepSpec(dynamics=dynamics, perturbation=perturb, mode=mode, points=points, strength=strength,
                     inits=inits, seed=seed, beta_target=beta_target, device=device, spectral=spectral,
                     params=_parse_params(param or [])).validate()
    with dask_client(scheduler) as client:
        result = run_resilience(store, spec, client=client, ids=graph or None, where=where, out=out,
                                show_progress=progress)
    if result.table is not None:
        _print_table(result.table, title=f"1-D reduction error ({spec.name})")
    _report_failures(result)


def _parse_params(items: list[str]) -> dict[str, float]:
    from pipeline.errors import NncapError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise NncapError(f"--param expects NAME=NUMBER, got {item!r}")
    return out


def _describe_array(arr: Any) -> str:
    kind = "string" if np.dtype(arr.dtype).kind == "O" else str(arr.dtype)
    return f"{kind} {list(arr.shape)}"


@app.command("run")
def run_cmd(
    workflow: str = typer.Argument(..., help="Workflow TOML file, e.g. workflows/quickstart.toml."),
    store: Optional[str] = typer.Option(None, help="Store location (default: the workflow's `store`)."),
    scheduler: Optional[str] = SchedulerOpt,
) -> None:
    """Run a workflow: its steps in order, on one Dask client, against one store."""
    from pipeline.cluster import dask_client, scheduler_address
    from pipeline.workflow import load_workflow

    wf = load_workflow(workflow)
    target = store or wf.store
    err.print(f"[bold]{wf.name}[/bold]: {len(wf.steps)} step(s) on store {target} "
              f"(scheduler: {scheduler_address(scheduler)})", highlight=False)
    t0 = time.perf_counter()
    with dask_client(scheduler) as client:
        for i, step in enumerate(wf.steps, 1):
            t = time.perf_counter()
            result = step.run(target, client)
            err.print(f"step {i}/{len(wf.steps)} [bold]{step.stage}[/bold] done in {time.perf_counter() - t:.1f} s",
                      highlight=False)
            if result.table is not None and not result.table.empty:
                _print_table(result.table, title=step.stage)
            elif result.records:
                _print_table(pd.DataFrame(result.records)[["id", "n_nodes", "n_edges", "directed", "weighted"]],
                             title=step.stage)
            _report_failures(result)
    err.print(f"workflow finished in {time.perf_counter() - t0:.1f} s; store: {target}", highlight=False)


def main() -> None:
    """Console entry point: user errors print one line (no traceback) and exit with status 2."""
    try:
        app()
    except USER_ERRORS as e:
        if os.environ.get("NNCAP_DEBUG"):
            raise
        err.print(f"[red]error[/red]: {one_line(e)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as e:  # storage failing mid-run (disk full, lost connection): one line, NNCAP_DEBUG for more
        if os.environ.get("NNCAP_DEBUG"):
            raise
        err.print(f"[red]error[/red]: input/output failed: {type(e).__name__}: {one_line(e)} "
                  "(set NNCAP_DEBUG=1 for a traceback)", highlight=False, soft_wrap=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
