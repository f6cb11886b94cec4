"""Bundled datasets: shapes, ranges, fixed splits, deterministic probe batches."""

import numpy as np
import pytest
import torch

from pipeline.datasets import DATASETS, load_dataset, probe_batch
from pipeline.errors import NncapError

SHAPES = {"digits": (64,), "fashion-mnist": (1, 28, 28), "mnist-5k": (1, 28, 28)}
SIZES = {"digits": (1437, 360), "fashion-mnist": (60000, 10000), "mnist-5k": (4000, 1000)}


@pytest.mark.parametrize("name", DATASETS)
def test_dataset_shapes_ranges_and_splits(name):
    (X, y), (Xt, yt) = load_dataset(name, "train"), load_dataset(name, "test")
    assert (len(y), len(yt)) == SIZES[name]
    assert tuple(X.shape[1:]) == SHAPES[name] and X.dtype == torch.float32 and y.dtype == torch.int64
    assert float(X.min()) >= 0 and float(X.max()) == 1.0
    assert set(np.unique(y.numpy())) == set(range(10)) == set(np.unique(yt.numpy()))
    if name != "fashion-mnist":  # fixed 80/20 split of one pool: no example in both halves
        rows = {bytes(r) for r in X.reshape(len(y), -1).numpy()}
        shared = sum(bytes(r) in rows for r in Xt.reshape(len(yt), -1).numpy())
        assert shared <= 0.01 * len(yt)  # only true duplicates of the source data


def test_probe_batches_are_fixed_test_examples():
    a, b = probe_batch("digits", 32, seed=1), probe_batch("digits", 32, seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], probe_batch("digits", 32, seed=2)[0])
    with pytest.raises(NncapError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(NncapError, match="split must be"):
        load_dataset("digits", "val")
