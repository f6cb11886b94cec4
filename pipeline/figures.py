"""Figures drawn from stored tables (so a report can be rebuilt without recomputation)."""

from __future__ import annotations

import io
from typing import Any

import fsspec
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from graphs.dynamics import Dynamics  # noqa: E402
from graphs.reduction import critical_points, resilience_function  # noqa: E402


def _save(fig: Any, url: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    with fsspec.open(url, "wb") as f:
        f.write(buf.getvalue())


def _colours(ids: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab20")
    return {g: cmap(i % 20) for i, g in enumerate(ids)}


def resilience_collapse(table: pd.DataFrame, dyn: Dynamics, url: str, title: str = "") -> None:
    """The universal resilience function: the 1-D equation's stable (solid) and unstable (dashed)
    branches of x_eff(β), critical points (dotted), and every simulated perturbed network's
    (β_eff, x_eff) as a dot coloured by network; one panel per initial state."""
    data = table[np.isfinite(table["beta_eff"]) & np.isfinite(table["x_eff_sim"])]
    inits = [i for i in ("high", "low") if i in set(data["init"])] or sorted(set(data["init"]))
    beta_max = float(max(data["beta_eff"].max() * 1.05, 1.0)) if len(data) else 10.0
    rf = resilience_function(dyn, np.linspace(0, beta_max, 300))
    crit = critical_points(dyn, 0, beta_max, steps=300)
    colours = _colours(sorted(set(data["graph"])))
    fig, axes = plt.subplots(1, len(inits), figsize=(6.2 * len(inits), 4.8), squeeze=False, sharey=True)
    for ax, init in zip(axes[0], inits):
        for b in np.unique(rf["branch"]):
            sel = rf["branch"] == b
            stable = bool(rf["stable"][sel][0])
            ax.plot(rf["beta"][sel], rf["x"][sel], "-" if stable else "--", color="black" if stable else "0.55",
                    lw=1.6 if stable else 1.1, zorder=1)
        for c in crit:
            ax.axvline(c.beta, ls=":", color="0.4", lw=1)
        part = data[data["init"] == init]
        for gid, g in part.groupby("graph"):
            ax.scatter(g["beta_eff"], g["x_eff_sim"], s=14, color=colours[gid], label=gid, zorder=2,
                       edgecolors="none", alpha=0.85)
        ax.set_xlabel(r"$\beta_{\rm eff}$")
        ax.set_title(f"{init} initial state")
        ax.set_xlim(0, beta_max)
    axes[0][0].set_ylabel(r"$x_{\rm eff}$")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if handles:
        axes[0][-1].legend(handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7,
                           frameon=False, markerscale=1.5)
    fig.suptitle(title or f"{dyn.name}: simulated networks vs the 1-D resilience function")
    _save(fig, url)


def reduction_error(table: pd.DataFrame, url: str, title: str = "") -> None:
    """Relative error of the 1-D prediction against the distance to the nearest tipping point,
    coloured by heterogeneity H: where and by how much the reduction fails."""
    data = table[np.isfinite(table["rel_error"]) & np.isfinite(table["critical_distance"])]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if len(data):
        sc = ax.scatter(np.maximum(data["critical_distance"], 1e-4), np.maximum(data["rel_error"], 1e-8),
                        c=data["heterogeneity"], cmap="viridis", s=12, edgecolors="none")
        fig.colorbar(sc, ax=ax, label=r"heterogeneity $\mathcal{H}$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axvline(0.1, ls=":", color="0.4", lw=1)
    ax.set_xlabel(r"distance to tipping point $|\beta_{\rm eff}-\beta_c|/\beta_c$")
    ax.set_ylabel(r"relative error of the 1-D $x_{\rm eff}$")
    ax.set_title(title or "accuracy of the 1-D reduction")
    _save(fig, url)


def capacitance_figures(traj: pd.DataFrame, table: pd.DataFrame, scores: pd.DataFrame | None, out: str, name: str,
                        early_epochs: int) -> list[str]:
    """Model-selection figures: β_eff trajectories (does β_eff → 0 as training converges?), and
    when there are ``scores`` (a full run) predicted vs true accuracy and every method's Kendall τ
    with its bootstrap interval."""
    paths = []
    ids = sorted(traj["candidate"].unique())
    colour = _colours(ids)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for cid in ids:
        t = traj[traj.candidate == cid]
        axes[0].plot(t.epoch, t.beta_eff, "-o", ms=3, color=colour[cid], label=cid)
        axes[1].plot(t.train_loss, t.beta_eff, "-o", ms=3, color=colour[cid])
    axes[0].axvline(early_epochs, color="grey", ls=":", lw=1)
    axes[0].set(xlabel="epoch", ylabel=r"$\beta_{\rm eff}$ of the probe", yscale="log",
                title=r"$\beta_{\rm eff}$ trajectories (dotted: end of the early budget)")
    axes[1].set(xlabel="training loss", ylabel=r"$\beta_{\rm eff}$", xscale="log", yscale="log",
                title=r"$\beta_{\rm eff}$ against training loss")
    if len(ids) <= 20:
        axes[0].legend(fontsize=7, frameon=False)
    paths.append(f"{out}/{name}-trajectories.png")
    _save(fig, paths[-1])
    if scores is None:
        return paths

    methods = [m for m in ("capacitance", "early_accuracy", "curve_fit") if m in table]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 4.2), squeeze=False)
    lo = min(table.true_accuracy.min(), *(table[m].min() for m in methods)) - 0.02
    hi = max(table.true_accuracy.max(), *(table[m].max() for m in methods)) + 0.02
    for ax, m in zip(axes[0], methods):
        if m == "capacitance":
            ax.errorbar(table.true_accuracy, table[m], yerr=table.capacitance_std, fmt="o", ms=4, capsize=2)
        else:
            ax.plot(table.true_accuracy, table[m], "o", ms=4)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
        row = scores.set_index("method").loc[m]
        ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="true final accuracy", ylabel="predicted",
               title=f"{m}: τ = {row.kendall_tau:.2f}, MAE = {row.mae:.3f}")
    paths.append(f"{out}/{name}-predicted.png")
    _save(fig, paths[-1])

    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.5 * len(scores)))
    y = np.arange(len(scores))
    ax.errorbar(scores.kendall_tau, y, xerr=[scores.kendall_tau - scores.kendall_tau_lo,
                                             scores.kendall_tau_hi - scores.kendall_tau], fmt="o", capsize=3)
    ax.axvline(0, color="grey", lw=1)
    ax.set(yticks=y, yticklabels=scores.method, xlabel="Kendall τ with the true final accuracy (95 % bootstrap)",
           xlim=(-1.05, 1.05), title=f"{name}: {len(table)} candidates")
    paths.append(f"{out}/{name}-kendall.png")
    _save(fig, paths[-1])
    return paths


def degree_distributions(graphs: dict[str, Any], url: str) -> None:
    """Complementary cumulative distributions of in- and out-degree (edge j → i at P[i, j]; an
    undirected graph's degree in both panels), one line per graph, log–log."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    colour = _colours(sorted(graphs))
    for gid in sorted(graphs):
        P = graphs[gid].P
        k_in = np.diff(P.indptr)
        k_out = np.bincount(P.indices, minlength=P.shape[0])
        for ax, k in zip(axes, (k_in, k_out)):
            k = np.sort(k[k > 0])
            if k.size:
                ax.step(k, 1 - np.arange(k.size) / k.size, where="post", color=colour[gid], label=gid)
    for ax, what in zip(axes, ("in-degree (receivers)", "out-degree (drivers)")):
        ax.set(xscale="log", yscale="log", xlabel=what, ylabel="P(K ≥ k)")
    if len(graphs) <= 20:
        axes[1].legend(fontsize=7, frameon=False)
    _save(fig, url)
