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
from graphs.meanfield import spectral_reduction, structure, x_eff
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
            critical: list[CriticalPoint] | None = None, spectral: bool = False,
            **solver: Any) -> list[dict[str, Any]]:
    """One row per perturbed network: structure, simulated and predicted x_eff, the error and
    the distance to the nearest critical point. All points are simulated together as one batch.
    With ``spectral``, also the spectral reduction (Laurence et al. 2019): β = λ_max(P), the
    observable aᵀx* with a the left Perron vector, and the 1-D prediction at β = λ_max."""
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
                       rel_error=relative_error(xs, xp, dyn),
                       same_branch=_nearest(stable, xs) == _nearest(stable, xp))
        else:
            row.update(x_eff_sim=math.nan, x_eff_1d=math.nan, abs_error=math.nan, rel_error=math.nan,
                       same_branch=False)
        if spectral:
            row.update(_spectral(dyn, p, x, x0))
        bc = _nearest_critical(critical, st.beta_eff)
        row.update(beta_c=bc, critical_distance=abs(st.beta_eff - bc) / abs(bc) if bc and not math.isnan(bc)
                   else math.nan)
        row["near_critical"] = bool(row["critical_distance"] < NEAR_CRITICAL)
        rows.append(row)
    return rows


def relative_error(simulated: float, predicted: float, dyn: Dynamics) -> float:
    """|simulated − predicted| relative to the prediction, with the denominator floored at 1% of the
    dynamics' scale (its high initial state): a collapsed state predicted as 0 and simulated as
    1e-11 is agreement, not an infinite error."""
    return abs(simulated - predicted) / max(abs(predicted), 1e-2 * abs(dyn.high))


def _spectral(dyn: Dynamics, p: Perturbed, x: np.ndarray, x0: float) -> dict[str, float]:
    nan = {"lambda_max": math.nan, "x_spec_sim": math.nan, "x_spec_1d": math.nan, "rel_error_spec": math.nan}
    if p.P.nnz == 0:
        return nan
    sr = spectral_reduction(p.P)
    if not sr.eigenvalue > 0:
        return {**nan, "lambda_max": sr.eigenvalue}
    xs = float(sr.x_eff(x))
    xp = settle(dyn, sr.eigenvalue, x0)
    return {"lambda_max": sr.eigenvalue, "x_spec_sim": xs, "x_spec_1d": xp,
            "rel_error_spec": relative_error(xs, xp, dyn)}


def _nearest(values: list[float], x: float) -> int:
    return int(np.argmin([abs(v - x) for v in values])) if values and not math.isnan(x) else -1


def _nearest_critical(critical: list[CriticalPoint], beta: float) -> float:
    usable = [c.beta for c in critical if c.beta > 1e-9]
    if not usable or math.isnan(beta):
        return math.nan
    return min(usable, key=lambda b: abs(b - beta))
