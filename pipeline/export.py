"""Export the parameter interaction line graphs of a model zoo to the store (``nncap export``).

A zoo is a directory with a ``manifest.toml`` naming each model's checkpoint, architecture (from
:mod:`pipeline.models`) and probe dataset (from :mod:`pipeline.datasets`)::

    [zoo]
    name = "digits-mlps"        # graph ids become "<name>.<model id>"
    dataset = "digits"          # default probe dataset

    [[models]]
    id = "relu-s0-e5"
    checkpoint = "relu-s0-e5.safetensors"   # or a torch state_dict (.pt/.pth), loaded weights_only
    architecture = "mlp"
    params = { widths = [64, 32, 32, 10], activation = "relu" }
    metrics = { val_accuracy = 0.93, epoch = 5 }   # optional, copied to the catalog

Checkpoints are never unpickled: safetensors, or ``torch.load(weights_only=True)``. Each model
becomes one graph of kind ``linegraph``; its β_eff and the other mean-field numbers, computed
matrix-free, go to the catalog. ``explicit`` mode streams the CSR of P to the store in row chunks
(memory bounded by a chunk); ``implicit`` stores the factors P is made of (see
:mod:`graphs.interaction`) so that :func:`load_operator` rebuilds P's operator on demand.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from graphs.interaction import MODELS, Factors, interaction, parameter_values
from graphs.linegraph import ParameterGraph, ParameterGroup, trace
from graphs.operator import InteractionOperator
from pipeline.cluster import run_tasks
from pipeline.datasets import probe_batch
from pipeline.errors import NncapError, read_toml
from pipeline.models import STATE_MAPS, build
from pipeline.stages import COMPACT_AFTER, StageResult, error_message
from pipeline.store import Store, check_graph_id

MODES = ("explicit", "implicit", "auto")
EXPORT_VERSION = 1


@dataclass(frozen=True)
class ZooModel:
    """One manifest entry: a checkpoint file and how to rebuild and probe the model."""

    id: str
    checkpoint: Path
    architecture: str
    params: dict[str, Any]
    dataset: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    normalize: tuple[float, float] | None = None


@dataclass(frozen=True)
class ExportOptions:
    """How line graphs are computed and stored (see ``nncap export --help``)."""

    interaction: str = "weight"
    mode: str = "auto"
    absolute: bool = False
    module: str | None = None
    probe_size: int = 128
    seed: int = 0
    max_explicit_edges: int = 200_000_000
    chunk_edges: int = 1 << 22
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.interaction not in MODELS:
            raise NncapError(f"--interaction must be one of {', '.join(MODELS)}, not {self.interaction!r}")
        if self.mode not in MODES:
            raise NncapError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.probe_size < 1 or self.chunk_edges < 1:
            raise NncapError("--probe-size and the chunk size must be positive")


def read_manifest(zoo: str | Path) -> tuple[str, list[ZooModel]]:
    """(zoo name, models) from ``ZOO/manifest.toml``; every problem is a one-line NncapError."""
    root = Path(zoo)
    path = root / "manifest.toml" if root.is_dir() else root
    doc = read_toml(path, "zoo manifest")
    head = doc.get("zoo", {})
    name = str(head.get("name", path.parent.name))
    check_graph_id(name)
    entries = doc.get("models")
    if not isinstance(entries, list) or not entries:
        raise NncapError(f"{path}: no [[models]] entries")
    models, seen = [], set()
    for i, e in enumerate(entries):
        where = f"{path}: models[{i}]"
        missing = [k for k in ("id", "checkpoint", "architecture") if k not in e]
        if missing:
            raise NncapError(f"{where} lacks {', '.join(missing)}")
        if e["id"] in seen:
            raise NncapError(f"{where}: duplicate model id {e['id']!r}")
        seen.add(e["id"])
        check_graph_id(f"{name}.{e['id']}")
        dataset = e.get("dataset", head.get("dataset"))
        shape = e.get("input_shape")
        if not dataset and not shape:
            raise NncapError(f"{where}: no dataset and no input_shape (set one on the model or a dataset in [zoo])")
        if shape is not None and (not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape)):
            raise NncapError(f"{where}: input_shape must list positive integers (without the batch axis)")
        norm = e.get("normalize")
        if norm is not None and (not isinstance(norm, list) or len(norm) != 2 or not norm[1]):
            raise NncapError(f"{where}: normalize must be [mean, std] with std != 0")
        metrics = e.get("metrics", {})
        if not all(isinstance(v, (int, float, str, bool)) for v in metrics.values()):
            raise NncapError(f"{where}: metrics must be scalars")
        models.append(ZooModel(str(e["id"]), resolve_checkpoint(path.parent, str(e["checkpoint"])),
                               str(e["architecture"]), dict(e.get("params", {})), str(dataset) if dataset else None,
                               dict(metrics), tuple(shape) if shape else None, tuple(norm) if norm else None))
    return name, models


def resolve_checkpoint(root: Path, spec: str) -> Path:
    """A checkpoint path relative to the manifest, or ``package:MODULE/REL/PATH`` for weights that
    ship inside an installed Python package (the pretrained backbones)."""
    if not spec.startswith("package:"):
        return root / spec
    module, _, rel = spec[len("package:"):].partition("/")
    found = importlib.util.find_spec(module) if module else None
    if found is None or not found.submodule_search_locations:
        raise NncapError(f"checkpoint {spec}: package {module!r} is not installed (make setup installs the "
                         "pretrained packages of packaged-data.txt)")
    return Path(next(iter(found.submodule_search_locations))) / rel


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch file, never executing pickled code."""
    if not path.is_file():
        raise NncapError(f"checkpoint {path} not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise NncapError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, ... for unsafe or broken files
        raise NncapError(f"{path}: not a plain tensor state_dict ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise NncapError(f"{path}: expected a dict of tensors (a state_dict)")
    return state


def load_model(entry: ZooModel) -> torch.nn.Module:
    """Build the entry's architecture and load its checkpoint strictly."""
    model = build(entry.architecture, entry.params)
    state = load_checkpoint(entry.checkpoint)
    if entry.architecture in STATE_MAPS:
        state = STATE_MAPS[entry.architecture](state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise NncapError(f"{entry.checkpoint} does not fit architecture {entry.architecture} "
                         f"{entry.params}: {str(e).splitlines()[0]}") from None
    bad = [f"{name} ({_nonfinite_counts(t)})" for name, t in state.items()
           if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:  # a diverged run: its interaction graph would be NaN
        raise NncapError(f"{entry.checkpoint} has non-finite weights in {', '.join(bad[:5])}"
                         + (f" and {len(bad) - 5} more tensors" if len(bad) > 5 else ""))
    return model


def _nonfinite_counts(t: torch.Tensor) -> str:
    nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    return ", ".join(f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "inf")) if n)


def export_key(entry: ZooModel, options: ExportOptions) -> str:
    """What an export depends on: checkpoint bytes, architecture, dataset and options."""
    h = hashlib.sha256()
    with open(entry.checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    spec = {"version": EXPORT_VERSION, "architecture": entry.architecture, "params": entry.params,
            "dataset": entry.dataset, "input_shape": entry.input_shape, "normalize": entry.normalize,
            "options": {k: v for k, v in asdict(options).items() if k not in ("chunk_edges", "device")}}
    h.update(json.dumps(spec, sort_keys=True, default=str).encode())
    return h.hexdigest()


def model_line_graph(model: torch.nn.Module, entry: ZooModel, options: ExportOptions
                     ) -> tuple[ParameterGraph, Factors]:
    """Trace the model (float64) and compute the factors of P; the data-driven interaction models
    use the entry's probe batch, the data-free ``weight`` model only needs an input shape."""
    model = model.double().eval()
    if options.interaction == "weight" and entry.input_shape:
        graph = trace(model, torch.zeros(2, *entry.input_shape, dtype=torch.float64), options.module)
        return graph, interaction(model, graph, "weight")
    if not entry.dataset:
        raise NncapError(f"model {entry.id}: the {options.interaction!r} interaction needs a probe dataset")
    x, y = probe_batch(entry.dataset, options.probe_size, options.seed)
    x = x.double()
    if entry.normalize:
        x = (x - entry.normalize[0]) / entry.normalize[1]
    graph = trace(model, x[:2], options.module)
    return graph, interaction(model, graph, options.interaction, x, y)


def export_model(store_url: str, zoo_name: str, entry: ZooModel, options: ExportOptions,
                 storage_options: dict[str, Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Export one model's line graph; skipped (its record returned) if already exported alike."""
    store = Store(store_url, storage_options=storage_options)
    graph_id = f"{zoo_name}.{entry.id}"
    key = export_key(entry, options)
    if graph_id in store:
        record = store.record(graph_id)
        if record.get("meta", {}).get("export_key") == key:
            return dict(record, skipped=True)
        if not overwrite:
            raise NncapError(f"graph {graph_id!r} exists from a different checkpoint or options "
                             "(pass --overwrite to replace it)")
    model = load_model(entry)
    graph, factors = model_line_graph(model, entry, options)
    op = InteractionOperator(graph, factors, absolute=options.absolute, device=options.device)
    st = op.structure()
    values = parameter_values(model, graph).numpy()
    explicit = options.mode == "explicit" or (options.mode == "auto" and graph.n_edges <= options.max_explicit_edges)
    meta = {
        "model": entry.id, "zoo": zoo_name, "architecture": entry.architecture, "dataset": entry.dataset or "",
        "interaction": options.interaction, "absolute": options.absolute, "module": options.module or "",
        "storage": "explicit" if explicit else "implicit", "n_params": graph.n_nodes,
        "beta_eff": st.beta_eff, "total": st.total, "mean_strength": st.mean_strength,
        "symmetry": st.symmetry, "heterogeneity": st.heterogeneity, "well_defined": st.well_defined,
        "x_eff": op.x_eff(values) if st.well_defined else float("nan"), "export_key": key,
        **{f"metric_{k}": v for k, v in entry.metrics.items()},
    }
    provenance = {"checkpoint": str(entry.checkpoint), "params": entry.params, "options": asdict(options),
                  "structure": graph.describe()}
    nodes = graph.node_arrays(values)
    source = f"zoo:{zoo_name}/{entry.id}"
    if explicit:
        blocks = ((c.cpu().numpy(), v.cpu().numpy()) for c, v in
                  (op.row_values(a, b) for a, b in graph.row_ranges(options.chunk_edges)))
        index_dtype = np.int32 if graph.n_nodes < 2**31 else np.int64
        return store.write_csr_stream(graph_id, shape=(graph.n_nodes, graph.n_nodes), indptr=graph.indptr,
                                      blocks=blocks, node_props=nodes, source=source, provenance=provenance,
                                      meta=meta, index_dtype=index_dtype, self_loops=graph.n_self_loops,
                                      overwrite=overwrite)
    nodes.update(factor_up=factors.up.T.numpy(), factor_down=factors.down.T.numpy())
    meta.update(n_edges_implicit=graph.n_edges, factors_nonnegative=factors.nonnegative)
    return store.write_csr_stream(graph_id, shape=(graph.n_nodes, graph.n_nodes),
                                  indptr=np.zeros(graph.n_nodes + 1, np.int64), blocks=[], node_props=nodes,
                                  source=source, provenance=provenance, meta=meta, overwrite=overwrite)


def load_operator(store: Store, graph_id: str, device: str = "auto") -> InteractionOperator:
    """The matrix-free operator of an exported line graph (either storage mode)."""
    record = store.record(graph_id)
    meta = record.get("meta", {})
    if record["kind"] != "linegraph" or "interaction" not in meta:
        raise NncapError(f"graph {graph_id!r} is not an exported model line graph")
    group = store.group(graph_id)
    nodes = {k: np.asarray(a[...]) for k, a in group["nodes"].arrays()}
    spec = record["provenance"]["structure"]
    groups = []
    for i, g in enumerate(spec["groups"]):
        sel = nodes["group"] == i
        groups.append(ParameterGroup(g["name"], g["module"], g["op"], g["role"], tuple(g["shape"]), g["offset"],
                                     g["layer"], nodes["target"][sel], nodes["source"][sel], g["predecessor"]))
    graph = ParameterGraph(groups, spec["n_neurons"], spec["excluded"])
    if "factor_up" in nodes:
        factors = Factors(meta["interaction"], torch.from_numpy(nodes["factor_up"].T.copy()),
                          torch.from_numpy(nodes["factor_down"].T.copy()), bool(meta["factors_nonnegative"]))
        return InteractionOperator(graph, factors, absolute=bool(meta["absolute"]), device=device)
    raise NncapError(f"graph {graph_id!r} is stored explicitly: read its P with the store "
                     "(nncap query / StoredGraph) instead")


def export_zoo(store_url: str, zoo: str | Path, *, client: Any, options: ExportOptions,
               models: Sequence[str] | None = None, overwrite: bool = False,
               storage_options: dict[str, Any] | None = None, show_progress: bool | None = None) -> StageResult:
    """Export every model of the zoo (or those named in ``models``), one Dask task per model."""
    name, entries = read_manifest(zoo)
    if models:
        unknown = sorted(set(models) - {e.id for e in entries})
        if unknown:
            raise NncapError(f"zoo {name!r} has no model(s) {', '.join(unknown)}")
        entries = [e for e in entries if e.id in set(models)]
    store = Store(store_url, storage_options=storage_options)
    task = partial(export_model, store.url, name, options=options, storage_options=storage_options,
                   overwrite=overwrite)
    result = StageResult()
    for entry, record, error in run_tasks(client, task, entries, label="export", show_progress=show_progress):
        if error is None:
            result.records.append(record)
        else:
            result.failures.append((entry.id, error_message(error)))
    if store.pending_entries() > COMPACT_AFTER:
        store.compact()
    skipped = sum(bool(r.get("skipped")) for r in result.records)
    if skipped:
        result.notes.append(f"export: {skipped} of {len(entries)} models were already in the store "
                            "(same checkpoint and options) and were skipped")
    if result.records:
        result.table = pd.DataFrame([{
            "id": r["id"], "params": r["n_nodes"], "edges": r["meta"].get("n_edges_implicit", r["n_edges"]),
            "storage": r["meta"]["storage"], "beta_eff": r["meta"]["beta_eff"], "skipped": bool(r.get("skipped"))}
            for r in result.records])
    return result
