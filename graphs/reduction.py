"""The 1-D reduced equation dx/dt = F(x) + β G(x, x) (Gao, Barzel & Barabási 2016): fixed points
with their stability, the resilience function x_eff(β) on every branch, and critical points β_c
found by bifurcation detection — never hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, fsolve

from graphs.dynamics import Dynamics


@dataclass(frozen=True)
class FixedPoint:
    x: float
    stable: bool


@dataclass(frozen=True)
class CriticalPoint:
    """A bifurcation of the 1-D equation: at ``beta`` the fixed points change from ``before``
    to ``after`` (stability patterns of the sorted roots, e.g. ``"SUS"`` → ``"S"``)."""

    beta: float
    x: float
    kind: str
    before: str
    after: str


def _derivative(dyn: Dynamics, x: float, beta: float) -> float:
    """∂f/∂x by complex step (exact to rounding for analytic F and G); central difference otherwise."""
    h = 1e-20
    try:
        return float(np.imag(dyn.f1d(complex(x, h), beta)) / h)
    except (TypeError, ValueError, ZeroDivisionError):
        d = 1e-6 * max(1.0, abs(x))
        return float((dyn.f1d(x + d, beta) - dyn.f1d(x - d, beta)) / (2 * d))


def _grid(dyn: Dynamics, n: int) -> np.ndarray:
    lo, hi = dyn.x_min, dyn.x_max
    return np.unique(np.concatenate([np.linspace(lo, hi, n), lo + np.geomspace(1e-9, hi - lo, n)]))


def fixed_points(dyn: Dynamics, beta: float, grid: int = 3000) -> list[FixedPoint]:
    """All fixed points of the 1-D equation in [x_min, x_max], sorted, with their stability."""
    xs = _grid(dyn, grid)
    with np.errstate(all="ignore"):
        fx = np.asarray(dyn.f1d(xs, beta), dtype=float)
    roots = list(xs[fx == 0])
    for k in np.flatnonzero(fx[:-1] * fx[1:] < 0):
        roots.append(brentq(lambda x: dyn.f1d(x, beta), xs[k], xs[k + 1], xtol=1e-14, rtol=1e-14))
    out = []
    for x in sorted(roots):
        d = _derivative(dyn, x, beta)
        out.append(FixedPoint(float(x), bool(d < 0)))
    return out


def signature(points: list[FixedPoint]) -> str:
    return "".join("S" if p.stable else "U" for p in points)


def settle(dyn: Dynamics, beta: float, x0: float, points: list[FixedPoint] | None = None) -> float:
    """Where the 1-D dynamics started at x0 ends: the nearest fixed point in the direction of the
    flow (exact for a 1-D autonomous equation). NaN if the state escapes [x_min, x_max]."""
    points = fixed_points(dyn, beta) if points is None else points
    f0 = dyn.f1d(x0, beta)
    xs = [p.x for p in points]
    if f0 == 0:
        return float(x0)
    if f0 > 0:
        above = [x for x in xs if x > x0]
        return above[0] if above else float("nan")
    below = [x for x in xs if x < x0]
    return below[-1] if below else float("nan")


def resilience_function(dyn: Dynamics, betas: np.ndarray) -> dict[str, np.ndarray]:
    """Every fixed point on a β grid as columns ``beta, x, stable, branch``; branches are followed
    by continuity (nearest point of the same stability), so a branch id names one curve."""
    rows_beta, rows_x, rows_stable, rows_branch = [], [], [], []
    prev: list[tuple[int, FixedPoint]] = []
    next_id = 0
    for beta in np.asarray(betas, dtype=float):
        pts = fixed_points(dyn, beta)
        cur: list[tuple[int, FixedPoint]] = []
        free = list(prev)
        for p in pts:
            same = [(abs(q.x - p.x), i, q) for i, q in free if q.stable == p.stable]
            if same:
                _, bid, q = min(same, key=lambda t: t[0])
                free = [(i, r) for i, r in free if i != bid]
            else:
                bid, next_id = next_id, next_id + 1
            cur.append((bid, p))
            rows_beta.append(beta)
            rows_x.append(p.x)
            rows_stable.append(p.stable)
            rows_branch.append(bid)
        prev = cur
    return {"beta": np.array(rows_beta), "x": np.array(rows_x), "stable": np.array(rows_stable, dtype=bool),
            "branch": np.array(rows_branch, dtype=int)}


def critical_points(dyn: Dynamics, beta_min: float = 0.0, beta_max: float = 50.0, steps: int = 500,
                    tol: float = 1e-12) -> list[CriticalPoint]:
    """Bifurcations of the 1-D equation in [beta_min, beta_max]: a scan for changes in the pattern of
    fixed points, bisection on β, then Newton on f = ∂f/∂x = 0 for the exact point."""
    betas = np.linspace(beta_min, beta_max, steps + 1)
    sigs = [signature(fixed_points(dyn, b)) for b in betas]
    found = []
    for k in range(steps):
        if sigs[k] == sigs[k + 1]:
            continue
        a, b, sa = betas[k], betas[k + 1], sigs[k]
        while b - a > 1e-7 * max(1.0, abs(b)):
            m = 0.5 * (a + b)
            if signature(fixed_points(dyn, m)) == sa:
                a = m
            else:
                b = m
        found.append(_refine(dyn, a, b, sigs[k], sigs[k + 1], tol))
    return _merge_close(found)


def _merge_close(points: list[CriticalPoint]) -> list[CriticalPoint]:
    """One bifurcation can show as two pattern changes a hair apart (a new root still below the
    grid's resolution); report it once, with the patterns on either side."""
    merged: list[CriticalPoint] = []
    for p in points:
        if merged and abs(p.beta - merged[-1].beta) <= 1e-6 * max(1.0, abs(p.beta)):
            q = merged[-1]
            merged[-1] = CriticalPoint(q.beta, q.x, _kind(q.before, p.after), q.before, p.after)
        else:
            merged.append(p)
    return merged


def _kind(before: str, after: str) -> str:
    return "saddle-node" if abs(len(before) - len(after)) == 2 else "transcritical"


def _refine(dyn: Dynamics, a: float, b: float, before: str, after: str, tol: float) -> CriticalPoint:
    """Locate the bifurcation exactly: solve f(x, β) = 0 and ∂f/∂x(x, β) = 0 from the bracket."""
    more = a if len(before) >= len(after) else b
    pts = fixed_points(dyn, more)
    if len(before) != len(after) and len(pts) >= 2:  # two roots merge: start between the closest pair
        gaps = [(pts[i + 1].x - pts[i].x, i) for i in range(len(pts) - 1)]
        _, i = min(gaps)
        x0 = 0.5 * (pts[i].x + pts[i + 1].x)
    else:  # a root changes stability
        x0 = min(pts, key=lambda p: abs(_derivative(dyn, p.x, more))).x if pts else 0.0
    beta0 = 0.5 * (a + b)

    def eqs(v: np.ndarray) -> list[float]:
        x, beta = v
        return [float(np.real(dyn.f1d(x, beta))), _derivative(dyn, x, beta)]

    sol, info, ier, _ = fsolve(eqs, [x0, beta0], full_output=True, xtol=tol)
    x, beta = (float(sol[0]), float(sol[1])) if ier == 1 and abs(sol[1] - beta0) < 1e-3 * max(1, beta0) else (x0, beta0)
    return CriticalPoint(beta, x, _kind(before, after), before, after)
