"""Real networks in: graph-tool's bundled collection, networkx's built-in graphs, edge-list
CSV/TSV files, GraphML/GML/``.gt`` files (parsed by graph-tool) and networkx objects.

A source is named by a string: ``gt:NAME``, ``nx:NAME`` or a path / fsspec URL. Loading never
writes; :func:`import_source` loads, then writes and publishes one graph.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import fsspec
import numpy as np

from graphs.formats import _graph_tool, from_graph_tool, from_networkx
from graphs.graph import InvalidGraphError, SparseGraph, from_edges
from pipeline.errors import one_line
from pipeline.store import Store, StoreError, check_graph_id

GRAPH_TOOL_SUFFIXES = (".gt", ".gt.gz", ".graphml", ".graphml.gz", ".xml", ".xml.gz", ".gml", ".gml.gz")
EDGE_LIST_SUFFIXES = (".csv", ".tsv", ".txt", ".edges", ".el", ".csv.gz", ".tsv.gz", ".txt.gz", ".edges.gz")
NETWORKX_BUILTINS: dict[str, str] = {
    "karate": "karate_club_graph",
    "lesmis": "les_miserables_graph",
    "florentine": "florentine_families_graph",
    "davis": "davis_southern_women_graph",
}


@dataclass
class ImportOptions:
    """How raw input becomes a graph. ``weight``: ``auto`` (a ``weight`` or ``value`` column or
    property if present), ``none``, or a column number / property name. ``directed`` applies to
    edge lists (other formats say it themselves). ``node_ids``: ``label`` numbers nodes by first
    appearance and keeps labels as the ``name`` property; ``index`` reads labels as 0-based ints."""

    directed: bool = True
    weight: str = "auto"
    delimiter: str | None = None
    duplicates: str = "sum"
    self_loops: str = "keep"
    nonfinite: str = "error"
    signed: bool = False
    node_ids: Literal["label", "index"] = "label"
    overwrite: bool = False


@dataclass
class Loaded:
    """A graph ready to store, with where it came from."""

    graph: SparseGraph
    graph_id: str
    source: str
    provenance: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def bundled_networks() -> list[dict[str, Any]]:
    """Networks that ship with installed packages, as ``{source, directed, n_nodes, n_edges, description}``."""
    gt = _graph_tool()
    out = []
    for name in sorted(gt.collection.data.keys()):
        g = gt.collection.data[name]
        desc = gt.collection.descriptions.get(name, "")
        out.append({"source": f"gt:{name}", "directed": g.is_directed(), "n_nodes": g.num_vertices(),
                    "n_edges": g.num_edges(), "description": " ".join(desc.split())[:100]})
    import networkx as nx

    for name, fn in NETWORKX_BUILTINS.items():
        G = getattr(nx, fn)()
        out.append({"source": f"nx:{name}", "directed": G.is_directed(), "n_nodes": G.number_of_nodes(),
                    "n_edges": G.number_of_edges(), "description": f"networkx.{fn}()"})
    return out


def default_graph_id(spec: str) -> str:
    """``gt:power`` -> ``power``; ``data/edges.csv`` -> ``edges``."""
    if spec.startswith(("gt:", "nx:")):
        return spec[3:]
    name = spec.rstrip("/").rsplit("/", 1)[-1]
    for suffix in sorted(GRAPH_TOOL_SUFFIXES + EDGE_LIST_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name.rsplit(".", 1)[0]


def absolute_source(spec: str) -> str:
    """Make a local path absolute so workers with another working directory find it."""
    if spec.startswith(("gt:", "nx:")) or "://" in spec:
        return spec
    return os.path.abspath(spec)


def load_source(spec: str, options: ImportOptions, graph_id: str | None = None) -> Loaded:
    """Parse one source into a graph, without writing anything."""
    gid = check_graph_id(graph_id or default_graph_id(spec))
    if spec.startswith("gt:"):
        loaded = _load_gt_collection(spec[3:], options)
    elif spec.startswith("nx:"):
        loaded = _load_nx_builtin(spec[3:], options)
    else:
        lower = spec.lower()
        if lower.endswith(GRAPH_TOOL_SUFFIXES):
            loaded = _load_graph_tool_file(spec, options)
        elif lower.endswith(EDGE_LIST_SUFFIXES):
            loaded = load_edge_list(spec, options)
        else:
            raise StoreError(f"{spec}: unknown source; use gt:NAME, nx:NAME or a file ending in "
                             f"{', '.join(EDGE_LIST_SUFFIXES[:5] + GRAPH_TOOL_SUFFIXES[::2])}")
    loaded.graph_id = gid
    return loaded


def import_source(store_url: str, spec: str, options: ImportOptions, graph_id: str | None = None,
                  storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load one source and publish it in the store; returns the catalog record. A Dask task."""
    loaded = load_source(spec, options, graph_id)
    store = Store(store_url, storage_options=storage_options)
    return store.write_graph(loaded.graph_id, loaded.graph, kind="network", source=loaded.source,
                             provenance=loaded.provenance, meta=loaded.meta, overwrite=options.overwrite)


def import_networkx(store: Store, G: Any, graph_id: str, *, options: ImportOptions | None = None,
                    source: str = "networkx", meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Publish a networkx graph (Python API)."""
    options = options or ImportOptions()
    graph, counts = _wrap(lambda: from_networkx(G, weight=_weight_name(options, _edge_attribute_names(G)),
                                               duplicates=options.duplicates, self_loops=options.self_loops,
                                               nonfinite=options.nonfinite, signed=options.signed), source)
    return store.write_graph(check_graph_id(graph_id), graph, source=source,
                             provenance={"counts": counts, "options": _options_dict(options)},
                             meta=meta, overwrite=options.overwrite)


def _edge_attribute_names(G: Any) -> set[str]:
    """Every edge attribute name used anywhere in a networkx graph."""
    keys: set[str] = set()
    for _, _, d in G.edges(data=True):
        keys.update(d)
    return keys


def _weight_name(options: ImportOptions, available: set[str]) -> str | None:
    if options.weight == "none":
        return None
    if options.weight == "auto":
        return next((k for k in ("weight", "value") if k in available), None)
    if options.weight not in available:
        raise InvalidGraphError(f"weight property {options.weight!r} not found (have: {sorted(available) or 'none'})")
    return options.weight


def _options_dict(options: ImportOptions) -> dict[str, Any]:
    return {k: getattr(options, k) for k in ("directed", "weight", "duplicates", "self_loops", "nonfinite", "signed",
                                          "node_ids")}


def _wrap(fn: Callable[[], Any], where: str) -> Any:
    try:
        return fn()
    except InvalidGraphError as e:
        raise InvalidGraphError(f"{where}: {e}") from None


def _load_gt_collection(name: str, options: ImportOptions) -> Loaded:
    gt = _graph_tool()
    if name not in gt.collection.data.keys():
        raise StoreError(f"gt:{name}: not in graph-tool's bundled collection "
                         f"(have: {', '.join(sorted(gt.collection.data.keys()))})")
    g = gt.collection.data[name]
    loaded = _from_gt(g, f"gt:{name}", options)
    loaded.provenance["description"] = " ".join(gt.collection.descriptions.get(name, "").split())
    loaded.provenance["graph_tool_counts"] = {"n_nodes": g.num_vertices(), "n_edges": g.num_edges()}
    loaded.meta["collection"] = "graph-tool"
    return loaded


def _from_gt(g: Any, source: str, options: ImportOptions) -> Loaded:
    skipped: list[str] = []
    weight = _weight_name(options, set(g.edge_properties.keys()))
    graph, counts = _wrap(lambda: from_graph_tool(g, weight=weight, duplicates=options.duplicates,
                                                  self_loops=options.self_loops, nonfinite=options.nonfinite,
                                                  signed=options.signed, skipped=skipped), source)
    prov = {"counts": counts, "options": _options_dict(options), "weight_property": weight,
            "skipped_properties": skipped}
    return Loaded(graph, "", source, prov)


def _load_nx_builtin(name: str, options: ImportOptions) -> Loaded:
    import networkx as nx

    if name not in NETWORKX_BUILTINS:
        raise StoreError(f"nx:{name}: unknown; have {', '.join(NETWORKX_BUILTINS)}")
    G = getattr(nx, NETWORKX_BUILTINS[name])()
    graph, counts = _wrap(lambda: from_networkx(G, weight=_weight_name(options, _edge_attribute_names(G)),
                                               duplicates=options.duplicates, self_loops=options.self_loops,
                                               nonfinite=options.nonfinite, signed=options.signed), f"nx:{name}")
    return Loaded(graph, "", f"nx:{name}", {"counts": counts, "options": _options_dict(options)},
                  {"collection": "networkx"})


def _load_graph_tool_file(path: str, options: ImportOptions) -> Loaded:
    gt = _graph_tool()
    lower = path.lower().removesuffix(".gz")
    fmt = {"gt": "gt", "graphml": "graphml", "xml": "graphml", "gml": "gml"}[lower.rsplit(".", 1)[-1]]
    try:
        with fsspec.open(path, "rb", compression="infer") as f:
            raw = f.read()
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    try:
        g = gt.load_graph(io.BytesIO(raw), fmt=fmt)
    except Exception as e:  # graph-tool raises assorted parser errors
        raise InvalidGraphError(f"{path}: cannot parse as {fmt}: {one_line(e, 200)}") from None
    return _from_gt(g, path, options)


def load_edge_list(path: str, options: ImportOptions) -> Loaded:
    """Read ``source target [weight ...]`` lines; ``#`` and ``%`` start comment lines. The
    delimiter defaults to ``,`` for ``.csv`` and to tabs/whitespace otherwise. Every malformed line is
    reported with its number."""
    delim = options.delimiter or ("," if ".csv" in path.lower() else None)
    weight_col: int | None
    if options.weight == "none":
        weight_col = None
    elif options.weight == "auto":
        weight_col = -1  # third field if the lines have one
    else:
        try:
            weight_col = int(options.weight)
        except ValueError:
            raise InvalidGraphError(f"{path}: --weight for an edge list is a column number (0-based), "
                                    f"'auto' or 'none', not {options.weight!r}") from None
        if weight_col < 2:
            raise InvalidGraphError(f"{path}: weight column {weight_col} is a node column")
    labels: dict[str, int] = {}
    src: list[int] = []
    dst: list[int] = []
    wts: list[float] = []
    n_fields = None

    def node(token: str, lineno: int) -> int:
        if options.node_ids == "index":
            try:
                v = int(token)
            except ValueError:
                raise InvalidGraphError(f"{path}:{lineno}: node {token!r} is not an integer index") from None
            if v < 0:
                raise InvalidGraphError(f"{path}:{lineno}: negative node index {v}")
            return v
        return labels.setdefault(token, len(labels))

    try:
        f = fsspec.open(path, "rt", compression="infer", encoding="utf-8").open()
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    try:
        with f:
            for lineno, line in enumerate(f, 1):
                s = line.strip()
                if not s or s[0] in "#%":
                    continue
                fields = [t.strip() for t in s.split(delim)] if delim else s.split()
                if n_fields is None:
                    n_fields = len(fields)
                    if n_fields < 2:
                        raise InvalidGraphError(f"{path}:{lineno}: expected at least 2 fields, got {n_fields}")
                    if weight_col == -1:
                        weight_col = 2 if n_fields >= 3 else None
                    if weight_col is not None and weight_col >= n_fields:
                        raise InvalidGraphError(f"{path}:{lineno}: no weight column {weight_col} "
                                                f"(line has {n_fields} fields)")
                elif len(fields) != n_fields:
                    raise InvalidGraphError(f"{path}:{lineno}: expected {n_fields} fields, got {len(fields)}")
                if not fields[0] or not fields[1]:
                    raise InvalidGraphError(f"{path}:{lineno}: empty node name")
                src.append(node(fields[0], lineno))
                dst.append(node(fields[1], lineno))
                if weight_col is not None:
                    try:
                        w = float(fields[weight_col])
                    except ValueError:
                        raise InvalidGraphError(f"{path}:{lineno}: weight {fields[weight_col]!r} is not a number") from None
                    if not np.isfinite(w) and options.nonfinite == "error":
                        raise InvalidGraphError(f"{path}:{lineno}: weight {fields[weight_col]!r} is not finite "
                                                "(drop such edges with --nonfinite drop)")
                    if w < 0 and not options.signed and np.isfinite(w):
                        raise InvalidGraphError(f"{path}:{lineno}: negative weight {w} (allow with --signed)")
                    wts.append(w)
    except UnicodeDecodeError as e:
        raise InvalidGraphError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if options.node_ids == "index":
        n = max(max(src, default=-1), max(dst, default=-1)) + 1
        names = None
        node_props = {}
    else:
        n = len(labels)
        names = np.array(list(labels), dtype=str) if labels else np.zeros(0, dtype="<U1")
        node_props = {"name": names}
    graph, counts = _wrap(lambda: from_edges(
        np.array(src, np.int64), np.array(dst, np.int64), n, weight=np.array(wts) if weight_col is not None else None,
        directed=options.directed, duplicates=options.duplicates, self_loops=options.self_loops,
        nonfinite=options.nonfinite, signed=options.signed, node_props=node_props, node_names=names), path)
    prov = {"counts": counts, "options": _options_dict(options), "weight_column": weight_col}
    return Loaded(graph, "", path, prov)
