"""Perturbation sweeps of Gao, Barzel & Barabási (2016): node removal, link removal, weight change.

A sweep is a sequence of perturbed copies of P (row = receiver) at increasing strength ``t``:

- ``node-removal`` — a fraction t of nodes removed (with their links); ``random`` order, or
  ``targeted``: hubs first (largest in+out strength).
- ``link-removal`` — a fraction t of links removed (an undirected link as a pair); ``random``
  order, or ``targeted``: strongest links first.
- ``weight-scaling`` — weights multiplied by ``1 - t``: ``uniform`` scales every weight alike;
  ``random`` also multiplies each link once by U(0, 2), as Gao's ``changeWeight``.

Removals are nested (each point removes a superset of the previous one's), so the points of one
sweep trace one path of damage. Everything is determined by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from graphs.graph import InvalidGraphError, is_symmetric

MODES = {
    "node-removal": ("random", "targeted"),
    "link-removal": ("random", "targeted"),
    "weight-scaling": ("uniform", "random"),
}


@dataclass(frozen=True)
class Perturbed:
    """One point of a sweep: its strength ``t`` and the perturbed P (for node removal, on the
    surviving nodes only, in their original order)."""

    t: float
    P: sp.csr_array


def check_mode(kind: str, mode: str) -> None:
    if kind not in MODES:
        raise InvalidGraphError(f"unknown perturbation {kind!r}; choose from {', '.join(MODES)}")
    if mode not in MODES[kind]:
        raise InvalidGraphError(f"{kind} supports modes {', '.join(MODES[kind])}, not {mode!r}")


def sweep(P: sp.sparray | sp.spmatrix, kind: str, mode: str, strengths: np.ndarray, *,
          directed: bool | None = None, seed: int = 0) -> list[Perturbed]:
    """The perturbed copies of P at each strength t in ``strengths`` (each in [0, 1]). Links of an
    undirected graph (``directed=False``; None: a symmetric P) are perturbed as pairs."""
    check_mode(kind, mode)
    t = np.asarray(strengths, dtype=float)
    if np.any((t < 0) | (t > 1)):
        raise InvalidGraphError("perturbation strengths must lie in [0, 1]")
    A = sp.csr_array(P, dtype=np.float64)
    A.sort_indices()
    directed = not is_symmetric(A) if directed is None else directed
    rng = np.random.default_rng(seed)
    if kind == "node-removal":
        return _node_removal(A, mode, t, rng)
    if kind == "link-removal":
        return _link_removal(A, mode, t, rng, directed)
    return _weight_scaling(A, mode, t, rng, directed)


def _node_removal(A: sp.csr_array, mode: str, t: np.ndarray, rng: np.random.Generator) -> list[Perturbed]:
    n = A.shape[0]
    if mode == "random":
        order = rng.permutation(n)
    else:
        strength = np.abs(A).sum(axis=0) + np.abs(A).sum(axis=1)
        order = np.lexsort((rng.random(n), -strength))  # hubs first, ties at random
    out = []
    for ti in t:
        removed = order[: int(round(ti * n))]
        keep = np.setdiff1d(np.arange(n), removed)
        out.append(Perturbed(float(ti), sp.csr_array(A[keep][:, keep])))
    return out


def _links(A: sp.csr_array, directed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, weight) of each link once: every entry (directed) or the lower triangle incl. the
    diagonal (undirected)."""
    C = A.tocoo()
    keep = np.ones(C.nnz, bool) if directed else C.row >= C.col
    return C.row[keep], C.col[keep], C.data[keep]


def _rebuild(n: int, row: np.ndarray, col: np.ndarray, w: np.ndarray, directed: bool) -> sp.csr_array:
    if not directed:
        off = row != col
        row, col, w = np.concatenate([row, col[off]]), np.concatenate([col, row[off]]), np.concatenate([w, w[off]])
    M = sp.csr_array((w, (row, col)), shape=(n, n))
    M.sort_indices()
    return M


def _link_removal(A: sp.csr_array, mode: str, t: np.ndarray, rng: np.random.Generator,
                  directed: bool) -> list[Perturbed]:
    row, col, w = _links(A, directed)
    m = len(w)
    order = rng.permutation(m) if mode == "random" else np.lexsort((rng.random(m), -np.abs(w)))
    out = []
    for ti in t:
        keep = np.sort(order[int(round(ti * m)):])
        out.append(Perturbed(float(ti), _rebuild(A.shape[0], row[keep], col[keep], w[keep], directed)))
    return out


def _weight_scaling(A: sp.csr_array, mode: str, t: np.ndarray, rng: np.random.Generator,
                    directed: bool) -> list[Perturbed]:
    row, col, w = _links(A, directed)
    factor = rng.uniform(0.0, 2.0, len(w)) if mode == "random" else np.ones(len(w))
    return [Perturbed(float(ti), _rebuild(A.shape[0], row, col, w * factor * (1.0 - ti), directed)) for ti in t]
