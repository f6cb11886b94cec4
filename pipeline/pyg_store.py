"""PyG remote-backend adapters over the Zarr store: ``torch_geometric.data.FeatureStore`` for node
properties and ``GraphStore`` for edges, so PyG code reads stored graphs without copying them whole.

Each published graph is one node type named by its graph id; its edges are the edge type
``(graph_id, "to", graph_id)``. The stored CSR of P (row = receiver) is, in PyG's terms, the CSC
layout of ``edge_index = [source, target]``: ``colptr = P.indptr`` and ``row = P.indices``, so
``csc``/``coo`` reads need no sorting. Both adapters are read-only: write graphs with ``nncap import``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch_geometric.data import EdgeAttr, FeatureStore, GraphStore, TensorAttr
from torch_geometric.data.graph_store import EdgeLayout

from pipeline.store import Store, StoreError

RELATION = "to"


class _ReadOnly:
    def _refuse(self, *_: Any) -> bool:
        raise PermissionError("nncap's PyG adapters are read-only; write graphs with `nncap import`")


class ZarrFeatureStore(_ReadOnly, FeatureStore):
    """Node properties as tensors: ``group_name`` = graph id, ``attr_name`` = node property;
    ``index`` reads only the requested rows."""

    def __init__(self, store: Store):
        super().__init__()
        self.store = store

    _put_tensor = _ReadOnly._refuse
    _remove_tensor = _ReadOnly._refuse

    def _array(self, attr: TensorAttr) -> Any:
        group = self.store.group(attr.group_name)
        if "nodes" not in group or attr.attr_name not in group["nodes"]:
            raise KeyError(f"graph {attr.group_name!r} has no node property {attr.attr_name!r}")
        return group["nodes"][attr.attr_name]

    def _get_tensor(self, attr: TensorAttr) -> torch.Tensor | None:
        arr = self._array(attr)
        index = attr.index
        if index is None or (isinstance(index, slice) and index == slice(None)):
            values = np.asarray(arr[...])
        elif isinstance(index, slice):
            values = np.asarray(arr[index])
        else:
            idx = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
            values = np.asarray(arr.oindex[idx.astype(np.int64)])
        if values.dtype.kind not in "biuf":
            raise TypeError(f"node property {attr.attr_name!r} of graph {attr.group_name!r} is not numeric")
        return torch.from_numpy(np.ascontiguousarray(values))

    def _get_tensor_size(self, attr: TensorAttr) -> tuple[int, ...] | None:
        return tuple(self._array(attr).shape)

    def get_all_tensor_attrs(self) -> list[TensorAttr]:
        out = []
        for rec in self.store.records():
            group = self.store.group(rec["id"])
            if "nodes" in group:
                for name, arr in sorted(group["nodes"].arrays()):
                    if np.dtype(arr.dtype).kind in "biuf":
                        out.append(TensorAttr(group_name=rec["id"], attr_name=name))
        return out


class ZarrGraphStore(_ReadOnly, GraphStore):
    """Edges of every stored graph; CSC and COO come straight from storage, CSR is a transpose."""

    def __init__(self, store: Store):
        super().__init__()
        self.store = store

    _put_edge_index = _ReadOnly._refuse
    _remove_edge_index = _ReadOnly._refuse

    def _get_edge_index(self, edge_attr: EdgeAttr) -> tuple[torch.Tensor, torch.Tensor] | None:
        src_type, rel, dst_type = edge_attr.edge_type
        if rel != RELATION or src_type != dst_type:
            raise KeyError(f"no edge type {edge_attr.edge_type}; use (graph_id, {RELATION!r}, graph_id)")
        try:
            indptr, indices, _, shape = Store.csr_arrays(self.store.group(src_type))
        except StoreError as e:
            raise KeyError(str(e)) from None
        colptr = torch.from_numpy(np.asarray(indptr[:], dtype=np.int64))
        row = torch.from_numpy(np.asarray(indices[:], dtype=np.int64))
        layout = EdgeLayout(edge_attr.layout)
        if layout == EdgeLayout.CSC:
            return row, colptr
        col = torch.repeat_interleave(torch.arange(shape[0]), colptr.diff())
        if layout == EdgeLayout.COO:
            return row, col
        order = torch.argsort(row * shape[0] + col)  # CSR: sort by source, then target
        rowptr = torch.zeros(shape[1] + 1, dtype=torch.long)
        rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=shape[1]), 0)
        return rowptr, col[order]

    def get_all_edge_attrs(self) -> list[EdgeAttr]:
        return [EdgeAttr((r["id"], RELATION, r["id"]), EdgeLayout.CSC, size=(r["n_nodes"], r["n_nodes"]))
                for r in self.store.records()]
