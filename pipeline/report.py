"""A static HTML report of a store (``nncap report STORE -o DIR``): ``index.html`` and PNG figures,
readable offline in any browser — no CDN, no JavaScript. Every figure is redrawn from the store's
results tables, so the report needs nothing but the store."""

from __future__ import annotations

import html
import time
from pathlib import Path

import pandas as pd

from graphs.dynamics import get_dynamics
from pipeline.compare import largest_effects
from pipeline.figures import capacitance_figures, degree_distributions, reduction_error, resilience_collapse
from pipeline.store import Store

MAX_ROWS = 200
MAX_PLOT_EDGES = 5_000_000
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 13px; margin: 0.6em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 13px; } nav a { margin-right: 1em; }
"""


def _table(frame: pd.DataFrame, note: str = "") -> str:
    shown = frame.head(MAX_ROWS)
    more = f"<p class='note'>First {MAX_ROWS} of {len(frame)} rows.</p>" if len(frame) > MAX_ROWS else ""
    body = shown.to_html(index=False, escape=True, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)
    return (f"<p class='note'>{html.escape(note)}</p>" if note else "") + body + more


def _img(path: Path, root: Path, alt: str) -> str:
    return f"<img src='{html.escape(path.relative_to(root).as_posix())}' alt='{html.escape(alt)}'>"


def write_report(store_url: str, out: str | Path) -> Path:
    """Write ``out/index.html`` and ``out/figures/*.png`` for the store; returns the index path."""
    store = Store(store_url, mode="r")
    root = Path(out)
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    catalog = store.catalog()
    names = store.tables()
    tables = {name: store.read_table(name) for name in names}
    sections: list[tuple[str, str, str]] = []  # (anchor, title, html)

    kinds = catalog["kind"].value_counts().to_dict() if len(catalog) else {}
    summary = ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in kinds.items()) or "no graphs"
    core = [c for c in ("id", "kind", "directed", "weighted", "n_nodes", "n_edges", "source") if c in catalog]
    extra = [c for c in ("beta_eff", "interaction", "storage", "metric_epoch", "metric_val_accuracy") if c in catalog]
    sections.append(("catalog", "Catalog", _table(catalog[core + extra],
                                                  f"{len(catalog)} graphs: {summary}. P[i, j] = effect of j on i.")))
    networks = catalog[(catalog["kind"] == "network") & (catalog["nnz"] <= MAX_PLOT_EDGES)]["id"].tolist()[:20] \
        if len(catalog) else []
    if networks:
        path = figures / "degree-distributions.png"
        degree_distributions({gid: store.read_graph(gid) for gid in networks}, str(path))
        sections.append(("degrees", "Degree distributions", _img(path, root, "degree distributions")
                         + f"<p class='note'>{len(networks)} networks (up to 20 with at most "
                           f"{MAX_PLOT_EDGES:,} stored edges).</p>"))
    for name, title, note in (("structure", "Mean-field structure", "β_eff = 1ᵀPP1/1ᵀP1 = ⟨s⟩ + S·H"),
                              ("topology", "Topology", "graph-tool measures; edge j → i is stored at P[i, j]"),
                              ("topology-layers", "Line graphs by layer pair",
                               "blocks of P: the receiving (upstream) layer against the driving one"),
                              ("comparison", "Group comparison", "difference of means b − a with a bootstrap 95 % "
                                                                 "interval; Cohen's d"),
                              ("randomisation", "Against degree-preserving randomisations",
                               "z = (real − mean) / sd over the randomisations")):
        if name in tables:
            frame = tables[name][0]
            if name == "comparison":
                frame = largest_effects(frame)
            if name == "randomisation":
                frame = frame[frame.z.notna()]
            sections.append((name, title, _table(frame, note)))

    for name in names:  # resilience sweeps: figures redrawn from the tidy tables
        frame, attrs = tables[name]
        if "dynamics" not in attrs or name.endswith("-summary"):
            continue
        dyn = get_dynamics(attrs["dynamics"], **attrs.get("params", {}))
        collapse, error = figures / f"{name}-collapse.png", figures / f"{name}-error.png"
        resilience_collapse(frame, dyn, str(collapse), title=f"{attrs['dynamics']}, {attrs.get('perturbation', '')}: "
                                                             f"{frame['graph'].nunique()} networks")
        reduction_error(frame, str(error))
        body = _img(collapse, root, f"{name} collapse") + _img(error, root, f"{name} 1-D error")
        if f"{name}-summary" in tables:
            body += _table(tables[f"{name}-summary"][0], "per network: 1-D prediction error")
        sections.append((name, f"Resilience: {name}", body))

    for name in names:  # model-selection studies: full ones have scores, early-only ones a ranking
        if not name.endswith("-candidates") or f"{name[:-11]}-trajectories" not in tables:
            continue
        study = name[:-11]
        traj = tables[f"{study}-trajectories"][0]
        cand, attrs = tables[name]
        scores = tables[f"{study}-scores"][0] if f"{study}-scores" in tables else None
        early = int(attrs.get("settings", {}).get("early_epochs", 3))
        paths = capacitance_figures(traj, cand, scores, str(figures), study, early)
        body = "".join(_img(Path(p), root, Path(p).stem) for p in paths)
        if scores is not None:
            body += _table(scores, "Kendall τ, Spearman ρ, top-1 regret and MAE against the true final accuracy")
        else:
            body += f"<p class='note'>Early budget only ({early} epochs): predictions, no ground truth.</p>"
        body += _table(cand.sort_values("rank") if "rank" in cand else cand, "per candidate")
        sections.append((study, f"Model selection: {study}", body))

    nav = " ".join(f"<a href='#{html.escape(a)}'>{html.escape(t)}</a>" for a, t, _ in sections)
    parts = [f"<section id='{html.escape(a)}'><h2>{html.escape(t)}</h2>{b}</section>" for a, t, b in sections]
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>nncap report</title>"
            f"<style>{STYLE}</style></head><body><h1>nncap report</h1>"
            f"<p class='note'>Store {html.escape(store.url)}, written {time.strftime('%Y-%m-%d %H:%M')}.</p>"
            f"<nav>{nav}</nav>{''.join(parts)}</body></html>")
    index = root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
