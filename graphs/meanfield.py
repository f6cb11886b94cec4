"""Mean-field structure of a weighted network (Gao, Barzel & Barabási, Nature 2016; Jiang et al. 2024).

Row = receiver: ``P[i, j]`` is the effect of j on i. With ``1`` the all-ones vector,

- in-strength ``δ_in = P 1`` (row sums), out-strength ``δ_out = 1ᵀ P`` (column sums);
- the operator ``L_P(z) = 1ᵀ P z / 1ᵀ P 1`` (a δ_out-weighted average of z);
- ``β_eff = L_P(δ_in) = 1ᵀ P P 1 / 1ᵀ P 1`` — the effective coupling, "neural capacitance" on line graphs;
- ``x_eff = L_P(x)`` — the effective state;
- ``⟨s⟩ = 1ᵀ P 1 / n``, symmetry ``S = corr(δ_in, δ_out)``, heterogeneity ``H = σ_in σ_out / ⟨s⟩``,
  so that ``β_eff = ⟨s⟩ + S·H`` exactly (population statistics over all n nodes).

Everything is O(nnz): ``1ᵀ P P 1 = δ_out · δ_in`` needs no matrix product. Computed with torch on
any device, accumulated in float64. When ``1ᵀ P 1`` is ~0 relative to ``Σ|P|`` (mixed signs
cancelling), ``β_eff`` and ``x_eff`` are undefined and reported as NaN with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphs.formats import resolve_device
from graphs.graph import InvalidGraphError, SparseGraph

CANCELLATION_RTOL = 1e-9


@dataclass(frozen=True)
class SparseCOO:
    """(row, col, value) of P on one device; row = receiver. The common input of mean-field code."""

    row: torch.Tensor
    col: torch.Tensor
    value: torch.Tensor
    n: int

    @property
    def device(self) -> torch.device:
        return self.value.device


def as_coo(P: Any, device: str | torch.device = "auto", dtype: torch.dtype = torch.float64) -> SparseCOO:
    """Accept a SparseGraph, a scipy sparse matrix, a torch sparse (CSR/COO) tensor or a SparseCOO."""
    if isinstance(P, SparseCOO):
        return P
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if isinstance(P, SparseGraph):
        P = P.P
    if sp.issparse(P):
        A = sp.csr_array(P)
        if A.shape[0] != A.shape[1]:
            raise InvalidGraphError(f"P must be square, got {A.shape}")
        counts = torch.from_numpy(np.diff(A.indptr).astype(np.int64))
        row = torch.repeat_interleave(torch.arange(A.shape[0]), counts)
        return SparseCOO(row.to(dev), torch.from_numpy(A.indices.astype(np.int64)).to(dev),
                         torch.from_numpy(np.asarray(A.data)).to(device=dev, dtype=dtype), int(A.shape[0]))
    if isinstance(P, torch.Tensor):
        t = P.to(dev)
        if t.layout == torch.sparse_csr:
            counts = t.crow_indices().diff()
            row = torch.repeat_interleave(torch.arange(t.shape[0], device=dev), counts)
            return SparseCOO(row, t.col_indices().long(), t.values().to(dtype), int(t.shape[0]))
        if t.layout == torch.sparse_coo:
            t = t.coalesce()
            return SparseCOO(t.indices()[0], t.indices()[1], t.values().to(dtype), int(t.shape[0]))
    raise InvalidGraphError(f"cannot use {type(P).__name__} as a sparse P")


def strengths(P: Any, device: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """(δ_in, δ_out): row sums P·1 and column sums 1ᵀP."""
    A = as_coo(P, device)
    s_in = torch.zeros(A.n, dtype=A.value.dtype, device=A.device).index_add_(0, A.row, A.value)
    s_out = torch.zeros(A.n, dtype=A.value.dtype, device=A.device).index_add_(0, A.col, A.value)
    return s_in, s_out


@dataclass(frozen=True)
class Structure:
    """Mean-field summary of one graph. ``symmetry`` is NaN when δ_in or δ_out has zero variance
    (then ``heterogeneity`` is 0 and β_eff = ⟨s⟩). ``well_defined`` is False, with ``reason``,
    when 1ᵀP1 cancels to ~0 and β_eff is meaningless."""

    n_nodes: int
    total: float
    abs_total: float
    beta_eff: float
    mean_strength: float
    symmetry: float
    heterogeneity: float
    well_defined: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def structure(P: Any, device: str = "auto", cancellation_rtol: float = CANCELLATION_RTOL) -> Structure:
    """β_eff, ⟨s⟩, S, H and the totals of P (see the module docstring). A scipy matrix on the CPU
    is summed by scipy's compiled kernels in place; anything else goes through torch on ``device``."""
    M = P.P if isinstance(P, SparseGraph) else P
    if sp.issparse(M) and resolve_device(device).type == "cpu":
        A = sp.csr_array(M)
        if A.shape[0] != A.shape[1]:
            raise InvalidGraphError(f"P must be square, got {A.shape}")
        data = np.asarray(A.data, dtype=np.float64)
        A = sp.csr_array((data, A.indices, A.indptr), shape=A.shape)
        s_in = torch.from_numpy(np.asarray(A.sum(axis=1)).ravel())
        s_out = torch.from_numpy(np.bincount(A.indices, weights=data, minlength=A.shape[1]).astype(np.float64))
        return structure_from_strengths(s_in, s_out, float(np.abs(data).sum()), cancellation_rtol)
    A = as_coo(P, device)
    s_in, s_out = strengths(A)
    abs_total = float(A.value.abs().sum()) if A.n else 0.0
    return structure_from_strengths(s_in, s_out, abs_total, cancellation_rtol)


def structure_from_strengths(s_in: torch.Tensor, s_out: torch.Tensor, abs_total: float,
                             cancellation_rtol: float = CANCELLATION_RTOL) -> Structure:
    """:class:`Structure` from δ_in, δ_out and Σ|P| alone (what a matrix-free operator provides)."""
    n = int(s_in.numel())
    if not n:
        return Structure(0, 0.0, 0.0, math.nan, math.nan, math.nan, math.nan, False, "empty graph")
    total = float(s_in.sum())
    defined, reason = check_total(total, abs_total, cancellation_rtol)
    mean_s = total / n
    beta = float(s_out @ s_in) / total if defined else math.nan
    sd_in = float(s_in.std(unbiased=False))
    sd_out = float(s_out.std(unbiased=False))
    cov = float(((s_in - s_in.mean()) * (s_out - s_out.mean())).mean())
    sym = cov / (sd_in * sd_out) if sd_in > 0 and sd_out > 0 else math.nan
    het = sd_in * sd_out / mean_s if defined else math.nan
    return Structure(n, total, abs_total, beta, mean_s, sym, het, defined, reason)


def check_total(total: float, abs_total: float, rtol: float = CANCELLATION_RTOL) -> tuple[bool, str]:
    """(well defined, reason): False when 1ᵀP1 is zero or cancels against Σ|P|."""
    if abs_total == 0:
        return False, "P has no non-zero weight: 1ᵀP1 = 0"
    if abs(total) <= rtol * abs_total:
        return False, (f"1ᵀP1 = {total:.3g} cancels to ~0 against Σ|P| = {abs_total:.3g} (mixed signs): "
                       "β_eff and x_eff are undefined; use |P|")
    return True, ""


def beta_eff(P: Any, device: str = "auto", cancellation_rtol: float = CANCELLATION_RTOL) -> float:
    """β_eff = 1ᵀPP1 / 1ᵀP1 (NaN when 1ᵀP1 cancels; see :func:`structure` for the reason)."""
    return structure(P, device, cancellation_rtol).beta_eff


def x_eff(P: Any, x: Any, device: str = "auto", cancellation_rtol: float = CANCELLATION_RTOL) -> torch.Tensor:
    """x_eff = L_P(x) = δ_out·x / 1ᵀP1 for a state x of shape (n,) or a batch (n, k) -> () or (k,)."""
    A = as_coo(P, device)
    _, s_out = strengths(A)
    xt = torch.as_tensor(x, dtype=s_out.dtype, device=A.device)
    total = float(s_out.sum())
    defined, _ = check_total(total, float(A.value.abs().sum()) if A.n else 0.0, cancellation_rtol)
    if not defined:
        return torch.full(xt.shape[1:], math.nan, dtype=xt.dtype, device=xt.device)
    return (s_out @ xt) / total


@dataclass(frozen=True)
class SpectralReduction:
    """Leading-eigenvector reduction (Laurence, Doyon, Dubé & Desrosiers, PRX 9, 011042, 2019):
    ``β = λ_max`` (largest real part) and ``x_eff = aᵀx`` with ``a`` the left Perron vector of P
    (``aᵀP = λ aᵀ``, since rows receive), normalised to sum 1."""

    eigenvalue: float
    left_vector: np.ndarray

    def x_eff(self, x: Any) -> np.ndarray:
        return self.left_vector @ np.asarray(x, dtype=np.float64)


def spectral_reduction(P: Any, tol: float = 1e-10) -> SpectralReduction:
    """Leading eigenpair by ARPACK on the CPU (O(nnz) per iteration, never dense for n > 64)."""
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    A = sp.csr_array(P.P if isinstance(P, SparseGraph) else P, dtype=np.float64)
    n = A.shape[0]
    if n == 0:
        raise InvalidGraphError("the spectral reduction needs at least one node")
    if n <= 64:
        vals, vecs = np.linalg.eig(A.toarray().T)
    else:
        try:
            vals, vecs = eigs(A.T.tocsr(), k=1, which="LR", tol=tol, maxiter=max(1000, 20 * n))
        except ArpackNoConvergence as e:
            raise InvalidGraphError(f"ARPACK did not converge on the leading eigenvector: {e}") from None
    k = int(np.argmax(vals.real))
    a = vecs[:, k].real
    s = a.sum()
    a = a / s if abs(s) > 1e-300 else a / np.abs(a).sum()
    return SpectralReduction(float(vals[k].real), a)
