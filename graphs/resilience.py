"""Resilience of perturbed networks against the 1-D prediction (Gao, Barzel & Barabási 2016).

For every perturbed copy of a network: its structure (β_eff, ⟨s⟩, S, H), the full network simulated
to steady state from the high or low initial state, x_eff of that steady state, and the x_eff the 1-D
equation predicts at the same β_eff from the same initial state. Their difference is the error of
the reduction, reported per point together with how close the point lies to a tipping point.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from graphs.dynamics import Dynamics
from graphs.meanfield import structure, x_eff
from graphs.perturb import Perturbed
from graphs.reduction import CriticalPoint, critical_points, fixed_points, settle
from graphs.simulate import batch_scenarios, steady_state

NEAR_CRITICAL = 0.1  # |β_eff − β_c| / β_c below this counts as "near a tipping point"


def initial_state(dyn: Dynamics, init: str | float) -> float:
    if init == "high":
        return dyn.high
    if init == "low":
        return dyn.low
    return float(init)


def analyse(dyn: Dynamics, points: Sequence[Perturbed], init: str | float, *, device: str = "auto",
            critical: list[CriticalPoint] | None = None, **solver: Any) -> list[dict[str, Any]]:
    """One row per perturbed network: structure, simulated and predicted x_eff, the error and
    the distance to the nearest critical point. All points are simulated together as one batch."""
    x0 = initial_state(dyn, init)
    critical = critical_points(dyn) if critical is None else critical
    batch = batch_scenarios([p.P for p in points], device)
    result = steady_state(dyn, batch, x0, **solver)
    states = batch.split(result.x)
    rows = []
    for k, (p, x) in enumerate(zip(points, states)):
        st = structure(p.P, device)
        row: dict[str, Any] = {
            "t": p.t, "n_nodes": st.n_nodes, "nnz": int(p.P.nnz), "beta_eff": st.beta_eff,
            "mean_strength": st.mean_strength, "symmetry": st.symmetry, "heterogeneity": st.heterogeneity,
            "x_mean_sim": float(x.mean()) if x.size else math.nan,
            "converged": bool(result.converged[k]), "steps": int(result.steps[k]),
            "residual": float(result.residual[k]),
        }
        if st.well_defined:
            xs = float(x_eff(p.P, torch.from_numpy(x), device))
            pts = fixed_points(dyn, st.beta_eff)
            xp = settle(dyn, st.beta_eff, x0, pts)
            stable = [q.x for q in pts if q.stable]
            row.update(x_eff_sim=xs, x_eff_1d=xp, abs_error=abs(xs - xp),
                       rel_error=abs(xs - xp) / max(abs(xp), 1e-12),
                       same_branch=_nearest(stable, xs) == _nearest(stable, xp))
        else:
            row.update(x_eff_sim=math.nan, x_eff_1d=math.nan, abs_error=math.nan, rel_error=math.nan,
                       same_branch=False)
        bc = _nearest_critical(critical, st.beta_eff)
        row.update(beta_c=bc, critical_distance=abs(st.beta_eff - bc) / abs(bc) if bc and not math.isnan(bc)
                   else math.nan)
        row["near_critical"] = bool(row["critical_distance"] < NEAR_CRITICAL)
        rows.append(row)
    return rows


def _nearest(values: list[float], x: float) -> int:
    return int(np.argmin([abs(v - x) for v in values])) if values and not math.isnan(x) else -1


def _nearest_critical(critical: list[CriticalPoint], beta: float) -> float:
    usable = [c.beta for c in critical if c.beta > 1e-9]
    if not usable or math.isnan(beta):
        return math.nan
    return min(usable, key=lambda b: abs(b - beta))
