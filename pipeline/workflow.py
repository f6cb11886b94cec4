"""Declarative workflows: a TOML file of ``[[step]]`` tables, each naming a stage and its
parameters, run in order against one store on one Dask client.

    [workflow]
    name = "quickstart"
    store = "nncap-store.zarr"      # overridable with --store

    [[step]]
    stage = "import"
    sources = ["gt:karate", "gt:power"]

    [[step]]
    stage = "summary"

Stages and their parameters: ``import`` (sources, ids, and the import options of ``nncap import``),
``summary`` (where), ``structure`` (where, spectral, device), ``resilience`` (graphs or where, dynamics, perturbation, mode, points, strength,
init, seed, beta_target, device, params, spectral, out, name), ``zoo-train`` (spec, out: train a model zoo)
and ``export`` (zoo, models, overwrite, and the options of ``nncap export``: interaction, mode,
absolute, module, probe_size, seed, max_explicit_edges, device), ``topology`` (where, path_sources,
motif_max_nodes, sbm_max_nodes, seed), ``select`` (spec, out, budget, full: a model-selection study),
``compare`` (by, where, randomise, seed) and ``report`` (out).
"""

from __future__ import annotations

import inspect
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import NncapError
from pipeline.importers import ImportOptions
from pipeline.stages import StageResult, import_networks, mean_field, summarize

WORKFLOW_KEYS = {"name", "description", "store"}


class WorkflowError(NncapError):
    """A workflow file that cannot be run as written."""


def _import_step(store: str, client: Any, *, sources: list[str], ids: list[str] | None = None,
                 **options: Any) -> StageResult:
    return import_networks(store, sources, client=client, ids=ids, options=ImportOptions(**options))


def _summary_step(store: str, client: Any, *, where: str | None = None) -> StageResult:
    return summarize(store, client=client, where=where)


def _structure_step(store: str, client: Any, *, where: str | None = None, spectral: bool = False,
                    device: str = "auto") -> StageResult:
    return mean_field(store, client=client, where=where, spectral=spectral, device=device)


def _resilience_step(store: str, client: Any, *, graphs: list[str] | None = None, where: str | None = None,
                     out: str = "nncap-results", name: str | None = None, init: str = "both",
                     **spec: Any) -> StageResult:
    from pipeline.resilience import SweepSpec, run_resilience

    inits = ("high", "low") if init == "both" else (init,)
    return run_resilience(store, SweepSpec(inits=inits, **spec).validate(), client=client, ids=graphs,
                          where=where, out=out, name=name)


def _zoo_train_step(store: str, client: Any, *, spec: str, out: str | None = None) -> StageResult:
    from pipeline.zoo import train_zoo

    result, _ = train_zoo(spec, client=client, out=out)
    return result


def _export_step(store: str, client: Any, *, zoo: str, models: list[str] | None = None, overwrite: bool = False,
                 **options: Any) -> StageResult:
    from pipeline.export import ExportOptions, export_zoo

    return export_zoo(store, zoo, client=client, options=ExportOptions(**options), models=models,
                      overwrite=overwrite)


def _topology_step(store: str, client: Any, *, where: str | None = None, **options: Any) -> StageResult:
    from graphs.topology import TopologyOptions
    from pipeline.topology import run_topology

    return run_topology(store, client=client, where=where, options=TopologyOptions(**options))


def _select_step(store: str, client: Any, *, spec: str, out: str | None = None, budget: float = 1.0,
                 full: bool = False) -> StageResult:
    from pipeline.select import run_select

    return run_select(spec, store, client=client, out=out, budget=budget, full=full)


def _compare_step(store: str, client: Any, *, by: str | None = None, where: str | None = None, randomise: int = 0,
                  seed: int = 0) -> StageResult:
    from pipeline.compare import randomisation_zscores, run_compare

    if not by and not randomise:
        raise WorkflowError("the compare stage needs `by` and/or `randomise`")
    result = StageResult()
    if randomise:
        result = randomisation_zscores(store, client=client, where=where, n=randomise, seed=seed)
    if by:
        result.table = run_compare(store, by, where, seed)
    return result


def _report_step(store: str, client: Any, *, out: str = "nncap-report") -> StageResult:
    from pipeline.report import write_report

    return StageResult(outputs=[str(write_report(store, out))])


_EXPORT_OPTIONS = {"interaction", "mode", "absolute", "module", "probe_size", "seed", "max_explicit_edges", "device"}
_IMPORT_OPTIONS = {f.name for f in fields(ImportOptions)}
_SWEEP_OPTIONS = {"dynamics", "perturbation", "mode", "points", "strength", "seed", "beta_target", "device", "params",
                  "spectral"}
STAGES: dict[str, tuple[Callable[..., StageResult], set[str]]] = {
    "import": (_import_step, {"sources", "ids"} | _IMPORT_OPTIONS),
    "summary": (_summary_step, {"where"}),
    "structure": (_structure_step, {"where", "spectral", "device"}),
    "resilience": (_resilience_step, {"graphs", "where", "out", "name", "init"} | _SWEEP_OPTIONS),
    "zoo-train": (_zoo_train_step, {"spec", "out"}),
    "export": (_export_step, {"zoo", "models", "overwrite"} | _EXPORT_OPTIONS),
    "topology": (_topology_step, {"where", "path_sources", "motif_max_nodes", "sbm_max_nodes", "seed"}),
    "select": (_select_step, {"spec", "out", "budget", "full"}),
    "compare": (_compare_step, {"by", "where", "randomise", "seed"}),
    "report": (_report_step, {"out"}),
}


@dataclass
class Step:
    stage: str
    params: dict[str, Any]

    def run(self, store: str, client: Any) -> StageResult:
        fn, _ = STAGES[self.stage]
        return fn(store, client, **self.params)


@dataclass
class Workflow:
    name: str
    description: str
    store: str
    steps: list[Step]


def load_workflow(path: str | Path) -> Workflow:
    """Parse and validate a workflow file; every problem is reported before anything runs."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WorkflowError(f"{path}: no such workflow file") from None
    except tomllib.TOMLDecodeError as e:
        raise WorkflowError(f"{path}: invalid TOML: {e}") from None
    unknown = set(doc) - {"workflow", "step"}
    if unknown:
        raise WorkflowError(f"{path}: unknown top-level table(s) {sorted(unknown)}; expected [workflow] and [[step]]")
    head = doc.get("workflow", {})
    if set(head) - WORKFLOW_KEYS:
        raise WorkflowError(f"{path}: unknown [workflow] key(s) {sorted(set(head) - WORKFLOW_KEYS)}")
    steps = []
    for i, raw in enumerate(doc.get("step", []), 1):
        raw = dict(raw)
        stage = raw.pop("stage", None)
        if stage not in STAGES:
            raise WorkflowError(f"{path}: step {i}: stage must be one of {sorted(STAGES)}, not {stage!r}")
        fn, allowed = STAGES[stage]
        extra = set(raw) - allowed
        if extra:
            raise WorkflowError(f"{path}: step {i} ({stage}): unknown parameter(s) {sorted(extra)}; "
                                f"allowed: {sorted(allowed)}")
        required = [p.name for p in inspect.signature(fn).parameters.values()
                    if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
        missing = [r for r in required if r not in raw]
        if missing:
            raise WorkflowError(f"{path}: step {i} ({stage}): missing parameter(s) {missing}")
        steps.append(Step(stage, raw))
    if not steps:
        raise WorkflowError(f"{path}: no [[step]] tables")
    return Workflow(name=head.get("name", path.stem), description=head.get("description", ""),
                    store=head.get("store", "nncap-store.zarr"), steps=steps)
