"""P of a parameter line graph as a matrix-free operator, and its entries in bounded row chunks.

With ``P[u, v] = Σ_r up[r, u] · down[r, v]`` on edges ``source(v) == target(u)`` (see
:mod:`graphs.interaction`), every mean-field quantity reduces to per-neuron sums: for example the
in-strength is ``δ_in[u] = Σ_r up[r, u] · Σ_{v: source(v) = target(u)} down[r, v]``. That costs
O(rank × parameters) time and memory instead of O(edges). For ``|P|`` with signed factors no such
factorisation exists: the operator then evaluates the edges chunk by chunk (O(edges × rank) time,
memory bounded by ``max_elements``).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from graphs.formats import resolve_device
from graphs.interaction import Factors
from graphs.linegraph import BIAS, ParameterGraph
from graphs.meanfield import CANCELLATION_RTOL, Structure, check_total, structure_from_strengths

DEFAULT_MAX_ELEMENTS = 1 << 24


class InteractionOperator:
    """Matrix-free ``P`` (or ``|P|`` with ``absolute=True``) of a parameter line graph.

    Row = receiver: ``matvec(z) = P z`` and ``in_strength() = P 1``; ``rmatvec(y) = Pᵀ y`` and
    ``out_strength() = 1ᵀ P``. Tensors live on ``device`` in ``dtype`` (float64 by default)."""

    def __init__(self, graph: ParameterGraph, factors: Factors, *, absolute: bool = False,
                 device: str | torch.device = "auto", dtype: torch.dtype = torch.float64,
                 max_elements: int = DEFAULT_MAX_ELEMENTS):
        self.graph = graph
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.factors = factors.to(self.device, dtype)
        # node-major copies (n_nodes, rank): scatter-adds along dim 0 touch contiguous rows
        self._up = self.factors.up.T.contiguous()
        self._down = self.factors.down.T.contiguous()
        self.dtype = dtype
        self.absolute = absolute
        self.factorised = not absolute or factors.nonnegative
        self.max_elements = int(max_elements)
        self.shape = (graph.n_nodes, graph.n_nodes)
        as_t = lambda a: torch.from_numpy(np.asarray(a, np.int64)).to(self.device)  # noqa: E731
        self._target = as_t(graph.target)
        fed = graph.source != BIAS
        self._fed = as_t(np.flatnonzero(fed))
        self._fed_source = as_t(graph.source[fed])

    # -- factorised sums (node-major: values of shape (n_nodes, rank)) ---------------------------
    def _by_target(self, values: torch.Tensor) -> torch.Tensor:
        """(n_neurons, rank): Σ over parameters with target n of ``values[u]``."""
        out = torch.zeros(self.graph.n_neurons, values.shape[1], dtype=self.dtype, device=self.device)
        return out.index_add_(0, self._target, values)

    def _by_source(self, values: torch.Tensor) -> torch.Tensor:
        """(n_neurons, rank): Σ over non-bias parameters with source n of ``values[v]``."""
        out = torch.zeros(self.graph.n_neurons, values.shape[1], dtype=self.dtype, device=self.device)
        return out.index_add_(0, self._fed_source, values[self._fed])

    def _spread_source(self, per_neuron: torch.Tensor) -> torch.Tensor:
        """(n_nodes, rank): ``per_neuron[source(v)]``, zero for biases."""
        out = torch.zeros(self.graph.n_nodes, per_neuron.shape[1], dtype=self.dtype, device=self.device)
        out[self._fed] = per_neuron[self._fed_source]
        return out

    def _signs(self) -> tuple[torch.Tensor, torch.Tensor]:
        up, down = self._up, self._down
        return (up.abs(), down.abs()) if self.absolute else (up, down)

    # -- chunked edges --------------------------------------------------------------------------
    def row_ranges(self) -> Iterator[tuple[int, int]]:
        """Row ranges whose edge values fit in ``max_elements`` (rank × edges) at a time."""
        return self.graph.row_ranges(max(1, self.max_elements // max(1, self.factors.rank)))

    def row_values(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(col, value) of the edges in rows ``start:stop``, row-major with sorted columns (the CSR
        ``indices`` and ``data`` of those rows). Rows sharing a target neuron form one block,
        ``up[rows] · down[columns]ᵀ`` (a GEMM)."""
        up, down = self._up, self._down
        cols, vals = [], []
        for a, b, neuron in self.graph.runs(start, stop):
            targets = self.graph.columns(neuron)
            if not targets.size:
                continue
            c = torch.from_numpy(targets).to(self.device)
            vals.append((up[a:b] @ down.index_select(0, c).T).reshape(-1))
            cols.append(c.repeat(b - a))
        if not vals:
            return torch.zeros(0, dtype=torch.int64, device=self.device), torch.zeros(0, dtype=self.dtype,
                                                                                      device=self.device)
        v = torch.cat(vals)
        return torch.cat(cols), (v.abs() if self.absolute else v)

    def entries(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row, col, value) of the edges in rows ``start:stop``."""
        rows = np.repeat(np.arange(start, stop, dtype=np.int64), self.graph.row_lengths[start:stop])
        return (torch.from_numpy(rows).to(self.device), *self.row_values(start, stop))

    def _edge_reduce(self, x: torch.Tensor | None, transpose: bool) -> torch.Tensor:
        """Σ over edges of value (× x[col] or x[row]) into rows (or columns when ``transpose``)."""
        out = torch.zeros(self.graph.n_nodes, dtype=self.dtype, device=self.device)
        for start, stop in self.row_ranges():
            r, c, v = self.entries(start, stop)
            into, other = (c, r) if transpose else (r, c)
            out.index_add_(0, into, v if x is None else v * x[other])
        return out

    # -- public operator ------------------------------------------------------------------------
    def in_strength(self) -> torch.Tensor:
        """δ_in = P 1 (row sums)."""
        if not self.factorised:
            return self._edge_reduce(None, transpose=False)
        up, down = self._signs()
        return (up * self._by_source(down)[self._target]).sum(1)

    def out_strength(self) -> torch.Tensor:
        """δ_out = 1ᵀ P (column sums)."""
        if not self.factorised:
            return self._edge_reduce(None, transpose=True)
        up, down = self._signs()
        return (down * self._spread_source(self._by_target(up))).sum(1)

    def matvec(self, z: torch.Tensor | np.ndarray) -> torch.Tensor:
        """P z for z of shape (n_nodes,)."""
        z = torch.as_tensor(z, dtype=self.dtype, device=self.device)
        if not self.factorised:
            return self._edge_reduce(z, transpose=False)
        up, down = self._signs()
        return (up * self._by_source(down * z[:, None])[self._target]).sum(1)

    def rmatvec(self, y: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Pᵀ y for y of shape (n_nodes,)."""
        y = torch.as_tensor(y, dtype=self.dtype, device=self.device)
        if not self.factorised:
            return self._edge_reduce(y, transpose=True)
        up, down = self._signs()
        return (down * self._spread_source(self._by_target(up * y[:, None]))).sum(1)

    def abs_bound(self) -> float:
        """Σ_edges Σ_r |up[r, u]| |down[r, v]|: equals Σ|P| for rank-1 or non-negative factors and
        bounds it from above otherwise (used to detect sign cancellation in 1ᵀP1)."""
        return float((self._by_target(self._up.abs()) * self._by_source(self._down.abs())).sum())

    def structure(self, cancellation_rtol: float = CANCELLATION_RTOL) -> Structure:
        """β_eff, ⟨s⟩, S, H as in :func:`graphs.meanfield.structure`; ``abs_total`` is exact for
        ``absolute`` or rank-1 or non-negative factors, else the upper bound :meth:`abs_bound`."""
        s_in, s_out = self.in_strength(), self.out_strength()
        abs_total = float(s_in.sum()) if self.absolute or self.factors.nonnegative else self.abs_bound()
        return structure_from_strengths(s_in, s_out, abs_total, cancellation_rtol)

    def beta_eff(self) -> float:
        """β_eff = 1ᵀPP1 / 1ᵀP1, the neural capacitance."""
        return self.structure().beta_eff

    def x_eff(self, x: torch.Tensor | np.ndarray) -> float:
        """x_eff = 1ᵀP x / 1ᵀP1 (δ_out-weighted mean of x, e.g. the parameter values)."""
        s_out = self.out_strength()
        total = float(s_out.sum())
        exact = self.absolute or self.factors.nonnegative
        if not check_total(total, float(s_out.abs().sum()) if exact else self.abs_bound())[0]:
            return math.nan
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        return float(s_out @ x) / total

    def spectral_radius(self, iterations: int = 200) -> float:
        """ρ(P) by power iteration on the operator, for P ≥ 0 (Perron–Frobenius: the iteration
        converges to it); 0 when some P^k·1 vanishes (a nilpotent, feed-forward line graph); NaN
        for signed P, where power iteration has no such guarantee."""
        if not (self.factors.nonnegative or self.absolute):
            return math.nan
        x = torch.ones(self.shape[0], dtype=self.dtype, device=self.device)
        rho = 0.0
        for _ in range(iterations):
            y = self.matvec(x)
            norm = float(y.norm())
            if norm == 0:
                return 0.0
            y = y / norm
            rho, x = float((self.matvec(y) @ y) / (y @ y)), y
        return rho

    def to_scipy(self) -> sp.csr_array:
        """The explicit CSR (materialises every edge: for tests and small graphs)."""
        data = np.concatenate([self.row_values(a, b)[1].cpu().numpy() for a, b in self.row_ranges()] or [np.zeros(0)])
        _, cols = self.graph.edges(0, self.graph.n_nodes)
        return sp.csr_array((data, cols, self.graph.indptr), shape=self.shape)
