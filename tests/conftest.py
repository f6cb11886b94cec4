import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np
import pytest

from graphs.graph import SparseGraph, from_edges


def sample_graphs() -> dict[str, SparseGraph]:
    """Small graphs covering the corner cases every format must carry losslessly."""
    rng = np.random.default_rng(0)
    out = {}
    out["empty"], _ = from_edges([], [], 0)
    out["isolated"], _ = from_edges([], [], 5)
    out["directed_unweighted"], _ = from_edges([0, 1, 2, 3], [1, 2, 0, 0], 6)
    out["directed_weighted_loops"], _ = from_edges(
        [0, 1, 2, 2, 4], [1, 2, 2, 0, 4], 5, weight=[0.5, 2.0, 3.0, 0.0, 1.5],
        node_props={"name": np.array(list("abcde")), "size": np.arange(5.0),
                    "pos": rng.normal(size=(5, 2))},
        edge_props={"kind": np.array([1, 2, 3, 4, 5])})
    out["undirected_weighted"], _ = from_edges(
        [0, 1, 2, 3, 3], [1, 2, 0, 3, 4], 6, weight=[1.0, 2.0, 3.0, 4.0, 5.0], directed=False,
        node_props={"group": np.array([0, 0, 1, 1, 2, 2])})
    src, dst = rng.integers(0, 40, 200), rng.integers(0, 40, 200)
    out["random_directed"], _ = from_edges(src, dst, 40, weight=rng.random(200), duplicates="max")
    out["random_undirected"], _ = from_edges(src, dst, 40, directed=False, self_loops="drop")
    out["signed"], _ = from_edges([0, 1], [1, 0], 2, weight=[-1.0, 2.0], signed=True)
    return out


@pytest.fixture(params=list(sample_graphs()))
def sample_graph(request) -> SparseGraph:
    return sample_graphs()[request.param]


@pytest.fixture
def store_url(tmp_path) -> str:
    return str(tmp_path / "store.zarr")
