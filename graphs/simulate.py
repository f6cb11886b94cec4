"""Network dynamics to steady state, batched over many scenarios at once, on CPU or GPU.

Scenarios (perturbed copies of a network, different initial states) are stacked block-diagonally,
as PyG batches graphs: one sparse system, one scenario id per node. The right-hand side
``f_i(x) = F(x_i) + Σ_j P_ij G(x_i, x_j)`` is evaluated edge-wise with torch (O(nnz) memory, nothing
dense). Steady states are found by pseudo-transient continuation (implicit Euler whose step grows
as the residual falls, "switched evolution relaxation"; Kelley & Keyes, SIAM J. Numer. Anal. 35,
508, 1998): with small steps it follows the dynamics out of the initial state's basin, with large
steps it becomes Newton's method. Each step solves ``(D − J) δ = f``, with ``D = diag(1/Δt_i)``, by a
BiCGSTAB batched per scenario (Jacobi-preconditioned, on P's sparsity). The step size is per
scenario, capped per node where the node sits in a growing mode (local time steps), so that Newton
never runs backwards across the ghost of a vanished fixed point. Residuals and convergence are per
scenario; converged scenarios leave the batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from graphs.dynamics import Dynamics
from graphs.formats import resolve_device
from graphs.graph import InvalidGraphError, SparseGraph


@dataclass
class ScenarioBatch:
    """Block-diagonal union of scenario graphs. ``row``/``col``/``weight`` index P over all nodes
    (row = receiver, rows sorted), ``crow`` is its CSR row pointer and ``scenario[i]`` the scenario
    of node i; ``offsets[s]:offsets[s+1]`` are scenario s's nodes."""

    row: torch.Tensor
    col: torch.Tensor
    crow: torch.Tensor
    weight: torch.Tensor
    scenario: torch.Tensor
    offsets: torch.Tensor

    @property
    def n_nodes(self) -> int:
        return int(self.scenario.numel())

    @property
    def n_scenarios(self) -> int:
        return int(self.offsets.numel() - 1)

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def subset(self, keep: torch.Tensor) -> tuple["ScenarioBatch", torch.Tensor]:
        """The batch of the scenarios where ``keep`` is True, and the indices of its nodes here."""
        node_keep = keep[self.scenario]
        node_index = torch.nonzero(node_keep).flatten()
        new_id = torch.cumsum(node_keep.long(), 0) - 1
        edge_keep = node_keep[self.row]
        row = new_id[self.row[edge_keep]]
        sizes = torch.diff(self.offsets)[keep]
        crow = torch.zeros(len(node_index) + 1, dtype=torch.long, device=self.device)
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=len(node_index)), 0)
        offsets = torch.zeros(len(sizes) + 1, dtype=torch.long, device=self.device)
        offsets[1:] = torch.cumsum(sizes, 0)
        return ScenarioBatch(row=row, col=new_id[self.col[edge_keep]], crow=crow, weight=self.weight[edge_keep],
                             scenario=torch.repeat_interleave(torch.arange(len(sizes), device=self.device), sizes),
                             offsets=offsets), node_index

    def split(self, values: torch.Tensor) -> list[np.ndarray]:
        """Per-scenario pieces of a node vector, as numpy arrays."""
        v = values.detach().cpu().numpy()
        o = self.offsets.cpu().numpy()
        return [v[o[s]:o[s + 1]] for s in range(self.n_scenarios)]


def batch_scenarios(graphs: Sequence[Any], device: str = "auto") -> ScenarioBatch:
    """Stack scenario graphs (SparseGraph or scipy sparse, row = receiver) block-diagonally."""
    if not graphs:
        raise InvalidGraphError("no scenarios to simulate")
    mats = [sp.csr_array(g.P if isinstance(g, SparseGraph) else g, dtype=np.float64) for g in graphs]
    for m in mats:
        if m.shape[0] != m.shape[1]:
            raise InvalidGraphError(f"P must be square, got {m.shape}")
    big = sp.block_diag(mats, format="csr") if len(mats) > 1 else mats[0]
    big.sum_duplicates()
    dev = resolve_device(device)
    sizes = np.array([m.shape[0] for m in mats], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    crow = torch.from_numpy(big.indptr.astype(np.int64))
    row = torch.repeat_interleave(torch.arange(big.shape[0]), crow.diff())
    return ScenarioBatch(row=row.to(dev), col=torch.from_numpy(big.indices.astype(np.int64)).to(dev),
                         crow=crow.to(dev), weight=torch.from_numpy(big.data).to(dev),
                         scenario=torch.repeat_interleave(torch.arange(len(mats)), torch.from_numpy(sizes)).to(dev),
                         offsets=torch.from_numpy(offsets).to(dev))


def rhs(dyn: Dynamics, batch: ScenarioBatch, x: torch.Tensor) -> torch.Tensor:
    """f(x) = F(x) + Σ_j P_ij G(x_i, x_j) for every node of every scenario."""
    p = dyn.params
    coupling = batch.weight * dyn.G(x[batch.row], x[batch.col], p)
    return dyn.F(x, p) + torch.zeros_like(x).index_add_(0, batch.row, coupling)


def _rhs_and_jacobian(dyn: Dynamics, batch: ScenarioBatch, x: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f(x), the Jacobian's diagonal, and its off-diagonal values on P's pattern (∂f_i/∂x_j)."""
    p = dyn.params
    with torch.enable_grad():
        xv = x.detach().requires_grad_(True)
        xi = x[batch.row].detach().requires_grad_(True)
        xj = x[batch.col].detach().requires_grad_(True)
        Fx = dyn.F(xv, p)
        Gx = dyn.G(xi, xj, p)
        dF = _grad(Fx, xv)
        dGi, dGj = _grad(Gx, xi), _grad(Gx, xj)
    coupling = batch.weight * Gx.detach()
    f = Fx.detach() + torch.zeros_like(x).index_add_(0, batch.row, coupling)
    diag = dF + torch.zeros_like(x).index_add_(0, batch.row, batch.weight * dGi)
    return f, diag, batch.weight * dGj


def _grad(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y.sum(), x, retain_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def _csr(batch: ScenarioBatch, values: torch.Tensor) -> torch.Tensor:
    """Values on P's pattern as a torch CSR matrix (structure valid by construction)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(batch.crow, batch.col, values, size=(batch.n_nodes, batch.n_nodes),
                                       check_invariants=False)


def _per_scenario(batch: ScenarioBatch, values: torch.Tensor, reduce: str) -> torch.Tensor:
    """Sum or max of a node vector over each scenario's (contiguous) nodes; 0 for empty ones.
    ``max`` is only used on non-negative values."""
    return torch.segment_reduce(values, "sum" if reduce == "sum" else "max", offsets=batch.offsets, initial=0.0)


def _bicgstab(matvec, b: torch.Tensor, inv_diag: torch.Tensor, batch: ScenarioBatch, rtol: torch.Tensor,
              maxiter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve A x = b block by block (one Krylov recurrence per scenario, run together).
    Returns x and a per-scenario flag of convergence to ``rtol`` (relative 2-norm residual, one
    tolerance per scenario)."""
    S = batch.scenario
    dot = lambda u, v: _per_scenario(batch, u * v, "sum")  # noqa: E731
    x = b * inv_diag
    r = b - matvec(x)
    r_hat = r.clone()
    bnorm = dot(b, b).sqrt()
    tiny = torch.finfo(b.dtype).tiny
    rho = alpha = omega = torch.ones(batch.n_scenarios, dtype=b.dtype, device=b.device)
    v = p = torch.zeros_like(b)
    done = dot(r, r).sqrt() <= rtol * bnorm
    for _ in range(maxiter):
        if bool(done.all()):
            break
        rho_new = dot(r_hat, r)
        beta = (rho_new / torch.where(rho.abs() > tiny, rho, tiny)) * (alpha / torch.where(omega.abs() > tiny, omega, tiny))
        p = r + beta[S] * (p - omega[S] * v)
        y = p * inv_diag
        v = matvec(y)
        denom = dot(r_hat, v)
        alpha = rho_new / torch.where(denom.abs() > tiny, denom, tiny)
        s = r - alpha[S] * v
        z = s * inv_diag
        t = matvec(z)
        tt = dot(t, t)
        omega = dot(t, s) / torch.where(tt > tiny, tt, tiny)
        active = (~done)[S]
        x = torch.where(active, x + alpha[S] * y + omega[S] * z, x)
        r = torch.where(active, s - omega[S] * t, r)
        rho = rho_new
        done = done | (dot(r, r).sqrt() <= rtol * bnorm)
    return x, done


@dataclass
class SteadyState:
    """Result of :func:`steady_state`: the state, and per scenario whether it converged, its final
    residual max|f|, and the number of pseudo-time steps it took."""

    x: torch.Tensor
    converged: np.ndarray
    residual: np.ndarray
    steps: np.ndarray


def steady_state(dyn: Dynamics, batch: ScenarioBatch, x0: float | torch.Tensor | np.ndarray, *,
                 atol: float = 1e-10, rtol: float = 1e-10, dt0: float = 1e-2, max_steps: int = 2000,
                 change: float = 0.5, linear_rtol: float = 1e-10, linear_maxiter: int = 200) -> SteadyState:
    """Integrate every scenario to its steady state from ``x0`` (a scalar or one value per node).

    A scenario is converged when ``max_i |f_i| <= atol + rtol * max_i |x_i|`` over its nodes.
    ``change`` is the relative state change per pseudo-time step that the step size aims at while
    the state is still moving; ``linear_rtol`` is the tightest relative tolerance of the linear solves
    (looser, down to 1e-2, while the residual is large). States are kept within the dynamics' domain (``x >= x_min``).
    Converged scenarios leave the working batch, so slow ones do not make fast ones pay.
    """
    dev = batch.device
    x_all = torch.as_tensor(x0, dtype=torch.float64, device=dev)
    x_all = x_all.expand(batch.n_nodes).clone() if x_all.ndim == 0 else x_all.clone()
    if x_all.shape != (batch.n_nodes,):
        raise InvalidGraphError(f"x0 has shape {tuple(x_all.shape)}, expected ({batch.n_nodes},)")
    n_all = batch.n_scenarios
    res_all = torch.zeros(n_all, dtype=torch.float64, device=dev)
    steps_all = torch.zeros(n_all, dtype=torch.long, device=dev)
    done_all = torch.zeros(n_all, dtype=torch.bool, device=dev)
    work, nodes, scen = batch, torch.arange(batch.n_nodes, device=dev), torch.arange(n_all, device=dev)
    x = x_all
    dt = torch.full((n_all,), dt0, dtype=torch.float64, device=dev)
    f, diag, off = _rhs_and_jacobian(dyn, work, x)
    res = _per_scenario(work, f.abs(), "amax")
    scale = _per_scenario(work, x.abs(), "amax")
    done = (res <= atol + rtol * scale) | (torch.diff(work.offsets) == 0)
    steps = torch.zeros(n_all, dtype=torch.long, device=dev)
    for _ in range(max_steps):
        if bool(done.all()):
            break
        if 2 * int(done.sum()) >= work.n_scenarios:  # retire converged scenarios from the batch
            x_all[nodes], res_all[scen], steps_all[scen], done_all[scen] = x, res, steps, done
            keep = ~done
            work, sub_nodes = work.subset(keep)
            nodes, scen = nodes[sub_nodes], scen[keep]
            x, dt, steps = x[sub_nodes], dt[keep], steps[keep]
            f, diag, off = _rhs_and_jacobian(dyn, work, x)
            res = _per_scenario(work, f.abs(), "amax")
            scale = _per_scenario(work, x.abs(), "amax")
            done = torch.zeros(work.n_scenarios, dtype=torch.bool, device=dev)
        S = work.scenario
        # local time steps: where the residual grows under the linearised flow (df/dt = J f, a node
        # in a growing mode), implicit Euler only follows it, rather than running backwards across
        # the ghost of a vanished fixed point, if Δt_i times that local rate stays below 1/2
        J_off = _csr(work, off)
        rate = (diag * f + J_off @ f) / torch.where(f == 0, torch.ones_like(f), f)
        rate = torch.where(f.abs() > 1e-3 * res[S], torch.clamp(rate, min=0.0), torch.zeros_like(rate))
        inv_dt = torch.maximum((1.0 / dt)[S], 2.0 * rate)
        shift = inv_dt - diag

        def matvec(v: torch.Tensor) -> torch.Tensor:
            return shift * v - J_off @ v

        inv_diag = 1.0 / torch.where(shift.abs() > 1e-300, shift, torch.ones_like(shift))
        # inexact Newton: loose linear solves while the residual is large, tight near the end
        eta = torch.clamp(0.1 * res, min=linear_rtol, max=1e-2)
        delta, solved = _bicgstab(matvec, f, inv_diag, work, eta, linear_maxiter)
        active = ~done
        x_new = torch.where(active[S], torch.clamp(x + delta, min=dyn.x_min), x)
        f_new, diag_new, off_new = _rhs_and_jacobian(dyn, work, x_new)
        res_new = _per_scenario(work, f_new.abs(), "amax")
        ok = solved & torch.isfinite(res_new) & active
        # step-size control: aim at a relative change of `change` per step (follows transients),
        # growing 4x per step at most as the state settles (then each step is a Newton step);
        # failed steps retry with a quarter of the step
        floor = 1e-2 * torch.clamp(scale, min=1.0)[S]
        moved = _per_scenario(work, (x_new - x).abs() / (x.abs() + floor), "amax")
        growth = torch.clamp(change / torch.clamp(moved, min=1e-300), max=4.0, min=0.25)
        dt = torch.where(ok, torch.clamp(dt * growth, max=1e12), torch.where(active, dt * 0.25, dt))
        keep_nodes = ok[S]
        x = torch.where(keep_nodes, x_new, x)
        f = torch.where(keep_nodes, f_new, f)
        diag = torch.where(keep_nodes, diag_new, diag)
        off = torch.where(ok[S[work.row]], off_new, off)
        res = torch.where(ok, res_new, res)
        steps += active.long()
        scale = _per_scenario(work, x.abs(), "amax")
        done = done | (ok & (res <= atol + rtol * scale))
    x_all[nodes], res_all[scen], steps_all[scen], done_all[scen] = x, res, steps, done
    return SteadyState(x=x_all, converged=done_all.cpu().numpy(), residual=res_all.cpu().numpy(),
                       steps=steps_all.cpu().numpy())
