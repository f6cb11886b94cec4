"""Interaction strengths P on a parameter line graph (Jiang et al. 2024; see docs/linegraphs.md).

Every model here is a sum of rank-one terms over the line graph's edges:
``P[u, v] = Σ_r up[r, u] · down[r, v]`` for ``source(v) == target(u)`` (v drives u; row = receiver),
which is what lets :class:`graphs.operator.InteractionOperator` work without materialising P.

- ``weight``  — data-free ``|w_u| |w_v|`` (rank 1, never negative).
- ``chain``   — the first-order back-propagation coefficient: for ``u = W^A[i, j]`` and
  ``v = W^B[k, i]``, ``P = -Σ_r a_j σ'(z_i) δ_k`` over the probe batch rows r, with ``a`` the input of
  A, ``σ'`` the element-wise derivative between A's output and B's input and ``δ = ∂L/∂z^B``.
- ``hessian`` — the exact cross-layer Hessian, ``P = -∂²L/∂w_u∂w_v`` (gradient flow with unit
  learning rate): ``-Σ_r a_j σ'(z_i) [δ_k + a_i Σ_k' W^B[k', i] ∂δ_k'/∂z_k]``.

L is the mean loss over the probe batch, so both data-driven models are batch averages. Biases are
parameters fed by a constant unit (``a_j = 1``). The data-driven models need Linear layers joined
by element-wise single-use ops (activations, dropout); ``hessian`` also needs independent samples
(2-D layer inputs), since it uses the per-sample curvature ∂δ/∂z.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from graphs.linegraph import BIAS, ParameterGraph, UnsupportedModelError

MODELS = ("weight", "chain", "hessian")


@dataclass(frozen=True)
class Factors:
    """``P[u, v] = Σ_r up[r, u] · down[r, v]`` on the line graph's edges; ``up``/``down`` are
    (rank, n_nodes) tensors. ``nonnegative`` when every factor is ≥ 0 (then P ≥ 0 too)."""

    model: str
    up: torch.Tensor
    down: torch.Tensor
    nonnegative: bool

    @property
    def rank(self) -> int:
        return int(self.up.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Factors":
        return Factors(self.model, self.up.to(device=device, dtype=dtype), self.down.to(device=device, dtype=dtype),
                       self.nonnegative)


def parameter_values(model: nn.Module, graph: ParameterGraph) -> torch.Tensor:
    """The parameters' current values in node order (1-D, the model's dtype)."""
    return torch.cat([model.get_parameter(g.name).detach().reshape(-1) for g in graph.groups])


def weight_factors(model: nn.Module, graph: ParameterGraph) -> Factors:
    """Data-free ``P[u, v] = |w_u| |w_v|``."""
    w = parameter_values(model, graph).abs().unsqueeze(0)
    return Factors("weight", w, w, True)


def interaction(model: nn.Module, graph: ParameterGraph, kind: str = "weight", inputs: Any = None,
                targets: torch.Tensor | None = None,
                loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy) -> Factors:
    """Factors of P for interaction model ``kind`` (``weight``, ``chain`` or ``hessian``).

    The data-driven models run ``model`` in eval mode on the probe batch ``inputs`` with labels
    ``targets`` and the mean ``loss``; the model itself is not modified."""
    if kind == "weight":
        return weight_factors(model, graph)
    if kind not in MODELS:
        raise ValueError(f"interaction model must be one of {', '.join(MODELS)}, not {kind!r}")
    if inputs is None or targets is None:
        raise ValueError(f"the {kind!r} interaction model needs a probe batch (inputs and targets)")
    return _data_factors(model, graph, kind, inputs, targets, loss)


def _check_layers(graph: ParameterGraph, kind: str) -> None:
    targeted = np.zeros(graph.n_neurons, bool)
    targeted[graph.target] = True
    for g in graph.groups:
        if g.op != "Linear":
            raise UnsupportedModelError(f"the {kind!r} interaction model maps Linear layers only; "
                                        f"{g.name} belongs to a {g.op} (use the 'weight' model)")
        fed = g.source[g.source != BIAS]
        if g.role == "weight" and g.predecessor is None and targeted[fed].any():
            raise UnsupportedModelError(
                f"the {kind!r} interaction model needs Linear layers joined by element-wise, single-use ops; "
                f"the input of {g.module} is not (a residual, normalisation or reshape lies between); "
                "use the 'weight' model")


def _data_factors(model: nn.Module, graph: ParameterGraph, kind: str, inputs: Any, targets: torch.Tensor,
                  loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Factors:
    _check_layers(graph, kind)
    net = copy.deepcopy(model).eval()
    modules = sorted({g.module for g in graph.groups})
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if name in seen:
                raise UnsupportedModelError(f"{name} is called more than once (shared weights)")
            seen[name] = (inp[0], out)
        return record

    handles = [net.get_submodule(m).register_forward_hook(hook(m)) for m in modules]
    try:
        with torch.enable_grad():
            args = inputs if isinstance(inputs, tuple) else (inputs,)
            L = loss(net(*args), targets)
    finally:
        for h in handles:
            h.remove()
    rows = {m: seen[m][1].reshape(-1, seen[m][1].shape[-1]).shape[0] for m in modules}
    R = next(iter(rows.values()))
    if any(r != R for r in rows.values()):
        raise UnsupportedModelError("the Linear layers see different numbers of rows (samples × positions)")
    outs = [seen[m][1] for m in modules]
    deltas = dict(zip(modules, torch.autograd.grad(L, outs, create_graph=(kind == "hessian"), retain_graph=True,
                                                   allow_unused=True)))
    flat = {m: (seen[m][0].reshape(R, -1), seen[m][1].reshape(R, -1)) for m in modules}
    up, down = [], []
    for g in graph.groups:
        a_in, z = flat[g.module]
        n_out = z.shape[1]
        if g.role == "bias":
            up.append(torch.ones(R, g.size, dtype=z.dtype, device=z.device))
            down.append(torch.zeros(R, g.size, dtype=z.dtype, device=z.device))
            continue
        up.append(a_in.detach().unsqueeze(1).expand(R, n_out, a_in.shape[1]).reshape(R, -1))
        if g.predecessor is None:
            down.append(torch.zeros(R, g.size, dtype=z.dtype, device=z.device))
            continue
        z_prev = seen[g.predecessor][1]
        s = torch.autograd.grad(seen[g.module][0], z_prev, torch.ones_like(seen[g.module][0]),
                                retain_graph=True)[0].reshape(R, -1).detach()
        delta = _zero_if_none(deltas[g.module], z).reshape(R, -1)
        inner = delta.detach().unsqueeze(2)  # (R, k, 1)
        if kind == "hessian":
            if seen[g.module][1].dim() != 2:
                raise UnsupportedModelError(f"the 'hessian' model needs 2-D inputs (independent samples); "
                                            f"{g.module} sees shape {list(seen[g.module][1].shape)} (use 'chain')")
            W = net.get_submodule(g.module).weight
            curvature = _loss_curvature(deltas[g.module], seen[g.module][1])  # (k', R, k) = ∂δ_k'/∂z_k
            T = torch.einsum("ci,crk->rki", W.detach(), curvature)  # (R, k, i)
            inner = inner + a_in.detach().unsqueeze(1) * T
        down.append((-(inner * s.unsqueeze(1))).reshape(R, -1))
    return Factors(kind, torch.cat(up, 1), torch.cat(down, 1), False)


def _zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad


def _loss_curvature(delta: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
    """``C[k', r, k] = ∂δ[r, k'] / ∂z[r, k]`` for a layer output z of shape (R, k) whose rows do not
    interact (block-diagonal Hessian of the loss in z)."""
    k = z.shape[1]
    if delta is None or not delta.requires_grad:
        return torch.zeros(k, *z.shape, dtype=z.dtype, device=z.device)
    eye = torch.eye(k, dtype=z.dtype, device=z.device).unsqueeze(1).expand(k, *z.shape)
    (curv,) = torch.autograd.grad(delta, z, eye, retain_graph=True, is_grads_batched=True, allow_unused=True)
    return torch.zeros(k, *z.shape, dtype=z.dtype, device=z.device) if curv is None else curv
