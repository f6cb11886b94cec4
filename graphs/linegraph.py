"""Parameter interaction line graphs of PyTorch models (Jiang et al., Nat. Commun. 2024).

A model's neurons are the units of its activations (a Linear layer's features, a convolution's
channels). Every trainable connection parameter joins a *source* neuron to a *target* neuron; a
bias is fed by a constant bias unit (source :data:`BIAS`). The line graph has one node per
parameter, and an edge ``v → u`` whenever ``source(v) == target(u)``: the two parameters share a
neuron in adjacent layers, and ``v`` (downstream) drives ``u`` (upstream) in back-propagation.
Stored as ``P[u, v]`` = effect of v on u (row = receiver = upstream parameter).

:func:`trace` reads the structure from any ``torch.nn.Module`` that ``torch.fx`` can trace: Linear
and Conv1d/2d/3d layers (each kernel tap its own node, groups respected) are the parameters;
activations, dropout, pooling, normalisation and flattening keep neuron identity; residual
additions merge neurons and concatenations split them. Normalisation gains and biases are per-neuron
rescalings, not connections, and are left out (listed in ``ParameterGraph.excluded``).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.fx as fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from graphs.graph import InvalidGraphError

BIAS = -1  # source neuron of a bias: the constant unit, which no parameter targets


class UnsupportedModelError(InvalidGraphError):
    """The model contains an op or module whose neurons nncap cannot map."""


@dataclass(frozen=True)
class ParameterGroup:
    """One parameter tensor as a contiguous range of line-graph nodes (flattened in C order).

    ``target``/``source`` give each parameter's neurons (``source`` is :data:`BIAS` for biases);
    ``predecessor`` is the Linear module whose output reaches this module's input through
    element-wise single-use ops only (needed by the data-driven interaction models), else None."""

    name: str
    module: str
    op: str
    role: str
    shape: tuple[int, ...]
    offset: int
    layer: int
    target: np.ndarray
    source: np.ndarray
    predecessor: str | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nodes(self) -> slice:
        return slice(self.offset, self.offset + self.size)


@dataclass
class ParameterGraph:
    """The structure of a model's parameter line graph: nodes are parameters, edges shared neurons.

    Edges are never stored; rows (upstream parameters) are enumerated on demand, in chunks, from
    the per-neuron lists of downstream parameters."""

    groups: list[ParameterGroup]
    n_neurons: int
    excluded: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.target = np.concatenate([g.target for g in self.groups]) if self.groups else np.zeros(0, np.int64)
        self.source = np.concatenate([g.source for g in self.groups]) if self.groups else np.zeros(0, np.int64)
        fed = self.source != BIAS
        order = np.argsort(self.source, kind="stable")
        self._down_order = order[fed[order]]  # parameters sorted by source neuron, then by index
        counts = np.bincount(self.source[fed], minlength=self.n_neurons).astype(np.int64)
        self._down_ptr = np.concatenate([[0], np.cumsum(counts)])
        self.row_lengths = counts[self.target]
        self.indptr = np.concatenate([[0], np.cumsum(self.row_lengths)]).astype(np.int64)

    @property
    def n_nodes(self) -> int:
        return int(self.target.size)

    @property
    def n_edges(self) -> int:
        return int(self.indptr[-1])

    def group(self, name: str) -> ParameterGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def row_ranges(self, max_edges: int) -> Iterator[tuple[int, int]]:
        """Consecutive row ranges with at most ``max_edges`` edges each (a longer single row alone)."""
        start, n = 0, self.n_nodes
        while start < n:
            stop = int(np.searchsorted(self.indptr, self.indptr[start] + max_edges, side="right")) - 1
            stop = min(n, max(stop, start + 1))
            yield start, stop
            start = stop

    @property
    def n_self_loops(self) -> int:
        """Parameters whose source is their own target (only where a residual merges neurons)."""
        return int(np.count_nonzero(self.source == self.target))

    def columns(self, neuron: int) -> np.ndarray:
        """The downstream parameters fed by ``neuron`` (sorted): the columns of every row targeting it."""
        return self._down_order[self._down_ptr[neuron]:self._down_ptr[neuron + 1]]

    def runs(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """``(first, last + 1, neuron)`` for the maximal runs of consecutive rows in ``start:stop`` with
        the same target neuron; rows of a run share one column list (a weight row of a Linear layer,
        an output channel of a convolution)."""
        t = self.target[start:stop]
        if not t.size:
            return []
        bounds = np.concatenate([[0], np.flatnonzero(t[1:] != t[:-1]) + 1, [t.size]])
        return [(start + int(a), start + int(b), int(t[a])) for a, b in zip(bounds[:-1], bounds[1:])]

    def edges(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of every edge in rows ``start:stop``, row-major with sorted columns."""
        rows = np.repeat(np.arange(start, stop, dtype=np.int64), self.row_lengths[start:stop])
        parts = [np.tile(self.columns(n), b - a) for a, b, n in self.runs(start, stop)]
        cols = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return rows, cols

    def adjacency(self) -> sp.csr_array:
        """The 0/1 structure as a scipy CSR (materialises every edge: small graphs only)."""
        _, cols = self.edges(0, self.n_nodes)
        return sp.csr_array((np.ones(cols.size), cols, self.indptr), shape=(self.n_nodes, self.n_nodes))

    def node_arrays(self, values: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per-node properties: layer, module, parameter (name), index (within its tensor), source
        and target neuron, and the parameter's value when given."""
        out = {
            "layer": np.concatenate([np.full(g.size, g.layer, np.int32) for g in self.groups]),
            "group": np.concatenate([np.full(g.size, i, np.int32) for i, g in enumerate(self.groups)]),
            "index": np.concatenate([np.arange(g.size, dtype=np.int64) for g in self.groups]),
            "source": self.source.astype(np.int64),
            "target": self.target.astype(np.int64),
        }
        if values is not None:
            out["weight"] = np.asarray(values)
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary: parameter tensors with their node ranges, neurons, exclusions."""
        return {"n_neurons": self.n_neurons, "excluded": list(self.excluded), "groups": [
            {"name": g.name, "module": g.module, "op": g.op, "role": g.role, "shape": list(g.shape),
             "offset": g.offset, "layer": g.layer, "predecessor": g.predecessor} for g in self.groups]}


# -- tracing -----------------------------------------------------------------------------------

_ELEMENTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
    nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Tanhshrink,
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
)
_NORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
                 nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm)
_POOL_MODULES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
                 nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
                 nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)
_PAD_MODULES = (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
                nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_LEAF_TYPES = (nn.Linear, *_CONV, *_NORM_MODULES, *_POOL_MODULES, *_ELEMENTWISE_MODULES, *_SOFTMAX_MODULES,
               *_PAD_MODULES)

_F = torch.nn.functional
_ELEMENTWISE_FUNCTIONS = {
    torch.relu, _F.relu, _F.relu6, _F.gelu, _F.silu, _F.mish, _F.elu, _F.selu, _F.leaky_relu,
    _F.hardtanh, _F.hardswish, _F.hardsigmoid, _F.softplus, torch.sigmoid, _F.sigmoid, torch.tanh,
    _F.tanh, _F.dropout, torch.clamp, torch.clip, torch.abs, torch.exp, torch.square,
}
_ELEMENTWISE_METHODS = {"relu", "sigmoid", "tanh", "clamp", "clip", "abs", "exp", "square", "contiguous",
                        "float", "double", "to", "clone", "detach"}
_POOL_FUNCTIONS = {_F.max_pool1d, _F.max_pool2d, _F.max_pool3d, _F.avg_pool1d, _F.avg_pool2d, _F.avg_pool3d,
                   _F.adaptive_avg_pool1d, _F.adaptive_avg_pool2d, _F.adaptive_avg_pool3d,
                   _F.adaptive_max_pool1d, _F.adaptive_max_pool2d}
_MERGE_FUNCTIONS = {operator.add, operator.iadd, operator.sub, operator.isub, operator.mul, operator.imul,
                    operator.truediv, torch.add, torch.sub, torch.mul}
_MERGE_METHODS = {"add", "add_", "sub", "mul", "mul_"}
_SHAPE_METHODS = {"size", "dim"}


@dataclass(frozen=True)
class _Neurons:
    """Neuron identity of a traced tensor: ``ids[k]`` is the neuron of index k along ``axis``.
    ``axis`` None means "not yet assigned" (a model input: its neurons appear where it is used).
    ``origin`` is the Linear module this value comes from through element-wise single-use ops."""

    axis: int | None
    ids: np.ndarray | None
    origin: str | None = None


def trace(model: nn.Module, example: torch.Tensor | tuple[Any, ...], module: str | None = None) -> ParameterGraph:
    """Map ``model`` (or its sub-module ``module``, fed by its input in a forward pass of ``model``
    on ``example``) to its parameter line graph structure. Raises UnsupportedModelError naming the
    first module or op that cannot be mapped."""
    args = example if isinstance(example, tuple) else (example,)
    target = model
    if module:
        try:
            target = model.get_submodule(module)
        except AttributeError:
            raise UnsupportedModelError(f"model has no sub-module {module!r}") from None
        args = _submodule_inputs(model, target, args)
    return _Tracer(target, args, prefix=f"{module}." if module else "").run()


def _submodule_inputs(model: nn.Module, sub: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: list[tuple[Any, ...]] = []
    handle = sub.register_forward_pre_hook(lambda _m, inp: seen.append(inp))
    try:
        with torch.no_grad():
            model(*args)
    finally:
        handle.remove()
    if not seen:
        raise UnsupportedModelError("the requested sub-module is not called in the model's forward pass")
    if len(seen) > 1:
        raise UnsupportedModelError("the requested sub-module is called more than once (shared weights)")
    return tuple(seen[0])


class _LeafTracer(fx.Tracer):
    """Keeps subclasses of the mapped layer types (e.g. 'same'-padding convolutions) as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAF_TYPES) or super().is_leaf_module(m, qualname)


class _Tracer:
    def __init__(self, model: nn.Module, args: tuple[Any, ...], prefix: str):
        self.prefix = prefix
        try:
            self.gm = fx.GraphModule(model, _LeafTracer().trace(model))
        except Exception as e:  # torch.fx raises many types for untraceable control flow
            raise UnsupportedModelError(f"torch.fx cannot trace {type(model).__name__}: {e}") from None
        was_training = self.gm.training
        self.gm.eval()
        try:
            with torch.no_grad():
                ShapeProp(self.gm).propagate(*args)
        finally:
            self.gm.train(was_training)
        self.modules = dict(self.gm.named_modules())
        self.n_neurons = 0
        self.merges: list[tuple[np.ndarray, np.ndarray]] = []
        self.groups: list[dict[str, Any]] = []
        self.excluded: list[str] = []
        self.called: set[str] = set()

    # neuron bookkeeping
    def fresh(self, n: int) -> np.ndarray:
        ids = np.arange(self.n_neurons, self.n_neurons + n, dtype=np.int64)
        self.n_neurons += n
        return ids

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise UnsupportedModelError(f"{self.where(node)} does not produce a single tensor")
        return tuple(meta.shape)

    def where(self, node: fx.Node) -> str:
        if node.op == "call_module":
            mod = self.modules[node.target]
            return f"module {self.prefix}{node.target} ({type(mod).__name__})"
        name = getattr(node.target, "__name__", str(node.target))
        return f"op {name!r} at node {node.name!r}"

    def assign(self, node: fx.Node, value: _Neurons, axis: int) -> _Neurons:
        """The neurons of ``value`` along ``axis`` (model inputs get fresh neurons on first use)."""
        shape = self.shape(node)
        axis = axis % len(shape)
        if value.axis is None:
            return _Neurons(axis, self.fresh(shape[axis]), value.origin)
        if value.axis != axis:
            raise UnsupportedModelError(f"{self.where(node)}: its neurons lie on axis {value.axis}, "
                                        f"but the next layer reads axis {axis}")
        return value

    def run(self) -> ParameterGraph:
        env: dict[fx.Node, Any] = {}
        for node in self.gm.graph.nodes:
            env[node] = self.visit(node, env)
        return self.finish()

    def tensor_users(self, node: fx.Node) -> int:
        return sum(1 for u in node.users if not (u.op == "call_method" and u.target in _SHAPE_METHODS))

    def visit(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        def arg(i: int) -> Any:
            a = node.args[i] if i < len(node.args) else None
            return env.get(a) if isinstance(a, fx.Node) else None

        if node.op == "placeholder":
            return _Neurons(None, None)
        if node.op == "output":
            return None
        if node.op == "get_attr":
            raise UnsupportedModelError(f"{self.where(node)} reads a tensor attribute {node.target!r} directly; "
                                        "only parameters inside Linear/Conv modules can be mapped")
        if node.op == "call_module":
            return self.visit_module(node, arg(0))
        if node.op == "call_method" and node.target in _SHAPE_METHODS:
            return None
        inputs = [env[a] for a in node.all_input_nodes if isinstance(env.get(a), _Neurons)]
        if not inputs:
            return None  # shape arithmetic and other non-tensor values
        fn = node.target
        if fn in _ELEMENTWISE_FUNCTIONS or (node.op == "call_method" and fn in _ELEMENTWISE_METHODS):
            return self.passthrough(node, arg(0), elementwise=True)
        if fn in _POOL_FUNCTIONS or fn is _F.pad:
            return self.pool(node, arg(0))
        if fn in (_F.softmax, _F.log_softmax) or (node.op == "call_method" and fn in ("softmax", "log_softmax")):
            return self.passthrough(node, arg(0))
        if fn in _MERGE_FUNCTIONS or (node.op == "call_method" and fn in _MERGE_METHODS):
            return self.merge(node, inputs)
        if fn is torch.cat:
            return self.concat(node, env)
        if fn is torch.flatten or (node.op == "call_method" and fn == "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return self.flatten(node, arg(0), start, end)
        if node.op == "call_method" and fn in ("view", "reshape") or fn is torch.reshape:
            return self.reshape(node, arg(0))
        if fn is torch.mean or (node.op == "call_method" and fn in ("mean", "sum", "amax")):
            return self.reduce(node, arg(0))
        raise UnsupportedModelError(f"cannot map {self.where(node)} to neurons")

    def visit_module(self, node: fx.Node, value: _Neurons | None) -> Any:
        mod = self.modules[node.target]
        name = str(node.target)
        if value is None:
            raise UnsupportedModelError(f"{self.where(node)} is not applied to a traced tensor")
        if isinstance(mod, nn.Linear):
            return self.layer(node, mod, name, self.assign(node.args[0], value, -1), kind="Linear")
        if isinstance(mod, _CONV):
            return self.layer(node, mod, name, self.assign(node.args[0], value, 1), kind=type(mod).__name__)
        if isinstance(mod, _ELEMENTWISE_MODULES):
            return self.passthrough(node, value, elementwise=True)
        if isinstance(mod, _NORM_MODULES):
            self.excluded.extend(f"{self.prefix}{name}.{p}" for p, t in mod.named_parameters() if t.requires_grad)
            return self.passthrough(node, value)
        if isinstance(mod, _POOL_MODULES) or isinstance(mod, _PAD_MODULES):
            return self.pool(node, value)
        if isinstance(mod, _SOFTMAX_MODULES):
            return self.passthrough(node, value)
        if isinstance(mod, nn.Flatten):
            return self.flatten(node, value, mod.start_dim, mod.end_dim)
        raise UnsupportedModelError(f"cannot map {self.where(node)}: nncap maps Linear and Conv layers, "
                                    "activations, dropout, pooling, normalisation, flatten, add and cat")

    def layer(self, node: fx.Node, mod: nn.Module, name: str, inp: _Neurons, kind: str) -> _Neurons:
        if name in self.called:
            raise UnsupportedModelError(f"{self.where(node)} is called more than once (shared weights)")
        self.called.add(name)
        out_shape = self.shape(node)
        assert inp.ids is not None and inp.axis is not None
        w = mod.weight
        n_out = w.shape[0]
        out_ids = self.fresh(n_out)
        taps = int(np.prod(w.shape[2:])) if w.ndim > 2 else 1
        if kind == "Linear":
            sources = np.tile(inp.ids, n_out)
        else:
            groups = mod.groups
            per_group = w.shape[1]
            group_of = np.arange(n_out) // (n_out // groups)
            channel = group_of[:, None] * per_group + np.arange(per_group)[None, :]
            sources = np.repeat(inp.ids[channel].reshape(-1), taps)
        targets = np.repeat(out_ids, w[0].numel())
        layer = len({g["module"] for g in self.groups})
        if w.requires_grad:
            self.groups.append(dict(name=f"{name}.weight", module=name, op=kind, role="weight",
                                    shape=tuple(w.shape), layer=layer, target=targets, source=sources,
                                    predecessor=inp.origin))
        bias = getattr(mod, "bias", None)
        if bias is not None and bias.requires_grad:
            self.groups.append(dict(name=f"{name}.bias", module=name, op=kind, role="bias",
                                    shape=tuple(bias.shape), layer=layer, target=out_ids,
                                    source=np.full(n_out, BIAS, np.int64), predecessor=inp.origin))
        axis = len(out_shape) - 1 if kind == "Linear" else 1
        origin = name if kind == "Linear" and self.tensor_users(node) == 1 else None
        return _Neurons(axis, out_ids, origin)

    def passthrough(self, node: fx.Node, value: _Neurons | None, elementwise: bool = False) -> _Neurons:
        if value is None:
            raise UnsupportedModelError(f"cannot map {self.where(node)}: its first input is not a traced tensor")
        keep = elementwise and value.origin is not None and self.tensor_users(node) == 1
        return _Neurons(value.axis, value.ids, value.origin if keep else None)

    def pool(self, node: fx.Node, value: _Neurons | None) -> _Neurons:
        """Pooling and padding act on the spatial axes: channels (axis 1) keep their identity."""
        value = self.passthrough(node, value)
        if value.axis is not None and value.axis != 1:
            raise UnsupportedModelError(f"{self.where(node)} pools or pads axis {value.axis}, which holds neurons")
        return value

    def merge(self, node: fx.Node, inputs: list[_Neurons]) -> _Neurons:
        """Residual additions (and gating products): operands' neurons at the same index are one."""
        shape = self.shape(node)
        full = [v for a, v in zip(node.all_input_nodes, inputs) if self.shape(a) == shape]
        if not full:
            raise UnsupportedModelError(f"cannot map {self.where(node)}: no operand has the result's shape")
        if len(inputs) == 1:
            return self.passthrough(node, full[0], elementwise=True)
        assigned = [v for v in full if v.axis is not None]
        if not assigned:
            return _Neurons(None, None)
        first = assigned[0]
        for other in assigned[1:]:
            if other.axis != first.axis:
                raise UnsupportedModelError(f"{self.where(node)} adds tensors whose neurons lie on different axes")
            self.merges.append((first.ids, other.ids))
        return _Neurons(first.axis, first.ids)

    def concat(self, node: fx.Node, env: dict[fx.Node, Any]) -> _Neurons:
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        values = [env.get(t) for t in tensors]
        if any(not isinstance(v, _Neurons) or v.axis is None for v in values):
            raise UnsupportedModelError(f"cannot map {self.where(node)}: every operand needs known neurons")
        axis = values[0].axis
        ndim = len(self.shape(node))
        if any(v.axis != axis for v in values):
            raise UnsupportedModelError(f"{self.where(node)} joins tensors whose neurons lie on different axes")
        if dim % ndim == axis:
            return _Neurons(axis, np.concatenate([v.ids for v in values]))
        for other in values[1:]:
            self.merges.append((values[0].ids, other.ids))
        return _Neurons(axis, values[0].ids)

    def flatten(self, node: fx.Node, value: _Neurons | None, start: int, end: int) -> _Neurons:
        value = self.passthrough(node, value)
        if value.axis is None:
            return value
        in_shape = self.shape(node.args[0])
        ndim = len(in_shape)
        start, end = start % ndim, end % ndim
        if value.axis < start:
            return value
        if value.axis > end:
            return _Neurons(value.axis - (end - start), value.ids)
        block = in_shape[start:end + 1]
        index = np.broadcast_to(
            np.arange(in_shape[value.axis]).reshape([-1 if d == value.axis else 1 for d in range(start, end + 1)]),
            block).reshape(-1)
        return _Neurons(start, value.ids[index])

    def reshape(self, node: fx.Node, value: _Neurons | None) -> _Neurons:
        in_shape, out_shape = self.shape(node.args[0]), self.shape(node)
        if len(out_shape) == 2 and out_shape[0] == in_shape[0] and out_shape[1] == math.prod(in_shape[1:]):
            return self.flatten(node, value, 1, -1)
        if out_shape == in_shape:
            return self.passthrough(node, value)
        raise UnsupportedModelError(f"cannot map {self.where(node)}: only reshapes that flatten all but the "
                                    f"batch axis are supported ({list(in_shape)} -> {list(out_shape)})")

    def reduce(self, node: fx.Node, value: _Neurons | None) -> _Neurons:
        value = self.passthrough(node, value)
        in_shape = self.shape(node.args[0])
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        if dims is None:
            raise UnsupportedModelError(f"{self.where(node)} reduces every axis, neurons included")
        dims = [d % len(in_shape) for d in ((dims,) if isinstance(dims, int) else dims)]
        if value.axis is None:
            return value
        if value.axis in dims:
            raise UnsupportedModelError(f"{self.where(node)} reduces axis {value.axis}, which holds neurons")
        shift = 0 if keepdim else sum(d < value.axis for d in dims)
        return _Neurons(value.axis - shift, value.ids)

    def finish(self) -> ParameterGraph:
        if not self.groups:
            raise UnsupportedModelError("the model has no trainable Linear or Conv parameters to map")
        labels = np.arange(self.n_neurons)
        if self.merges:
            a = np.concatenate([m[0] for m in self.merges])
            b = np.concatenate([m[1] for m in self.merges])
            adj = sp.coo_array((np.ones(a.size), (a, b)), shape=(self.n_neurons, self.n_neurons))
            _, labels = sp.csgraph.connected_components(adj, directed=False)
        used = np.unique(np.concatenate([labels[g["target"]] for g in self.groups]
                                        + [labels[g["source"][g["source"] != BIAS]] for g in self.groups]))
        compact = np.full(int(labels.max()) + 1 if labels.size else 0, -1, np.int64)
        compact[used] = np.arange(used.size)
        groups, offset = [], 0
        for g in self.groups:
            src = g["source"]
            g = dict(g, name=self.prefix + g["name"], module=self.prefix + g["module"],
                     predecessor=self.prefix + g["predecessor"] if g["predecessor"] else None,
                     target=compact[labels[g["target"]]],
                     source=np.where(src == BIAS, BIAS, compact[labels[np.maximum(src, 0)]]), offset=offset)
            groups.append(ParameterGroup(**g))
            offset += groups[-1].size
        return ParameterGraph(groups, int(used.size), sorted(set(self.excluded)))
