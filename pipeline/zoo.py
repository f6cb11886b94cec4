"""Train model zoos (``nncap zoo train SPEC.toml``): a grid or a random sample over architecture
family, depth, width, activation, learning rate, epochs and seed, on a bundled dataset, one Dask
task per model. Every epoch's weights are saved as safetensors with their train/validation
metrics, and the zoo's ``manifest.toml`` (read by ``nncap export``) lists them all.

A spec::

    [zoo]
    name = "digits-mlps"
    dataset = "digits"            # digits, fashion-mnist or mnist-5k
    out = "nncap-zoo/digits-mlps" # checkpoints and manifest
    batch_size = 64
    optimizer = "sgd"             # sgd (momentum 0.9) or adam
    train_size = 0                # 0: the whole train split; else a fixed random subset

    [grid]                        # every combination of these lists
    architecture = ["mlp"]        # mlp, cnn or resnet
    depth = [2, 3]                # hidden layers (mlp) or conv stages (cnn, resnet)
    width = [32, 64]              # units or channels per layer
    activation = ["relu", "tanh"]
    lr = [0.05]
    epochs = [5]
    seed = [0, 1]

    [sample]                      # optional: train n configurations drawn from the grid
    n = 8
    seed = 0

Validation metrics use the dataset's test split, which the probe batches of ``nncap export`` also
come from; the train split is never used for probing.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.cluster import run_tasks
from pipeline.datasets import DATASETS, load_dataset
from pipeline.errors import NncapError, read_toml
from pipeline.models import ACTIVATIONS, ARCHITECTURES, build
from pipeline.stages import StageResult, error_message
from pipeline.store import check_graph_id

GRID_KEYS = ("architecture", "depth", "width", "activation", "lr", "epochs", "seed")


@dataclass(frozen=True)
class RunConfig:
    """One model of the zoo: its hyper-parameters and training set-up."""

    architecture: str
    depth: int
    width: int
    activation: str
    lr: float
    epochs: int
    seed: int
    dataset: str
    batch_size: int
    optimizer: str
    train_size: int

    @property
    def run_id(self) -> str:
        lr = f"{self.lr:g}".replace("-", "m")
        return f"{self.architecture}-d{self.depth}-w{self.width}-{self.activation}-lr{lr}-s{self.seed}"

    def model_params(self) -> dict[str, Any]:
        """Hyper-parameters for :func:`pipeline.models.build`, from the dataset's shapes."""
        X, y = load_dataset(self.dataset, "test")
        classes = int(y.max()) + 1
        if self.architecture == "mlp":
            return {"widths": [int(np.prod(X.shape[1:]))] + [self.width] * self.depth + [classes],
                    "activation": self.activation}
        if X.dim() != 4:
            raise NncapError(f"architecture {self.architecture!r} needs image data; {self.dataset} is flat")
        if self.architecture == "cnn":
            return {"channels": [self.width] * self.depth, "classes": classes, "in_channels": int(X.shape[1]),
                    "activation": self.activation}
        return {"widths": [self.width] * self.depth, "classes": classes, "in_channels": int(X.shape[1]),
                "activation": self.activation}


@dataclass(frozen=True)
class ZooSpec:
    name: str
    out: Path
    runs: list[RunConfig]


def read_spec(path: str | Path, out: str | Path | None = None) -> ZooSpec:
    """Parse and validate a zoo spec; every problem is a one-line NncapError."""
    path = Path(path)
    doc = read_toml(path, "zoo spec")
    head, grid = doc.get("zoo", {}), doc.get("grid")
    name = str(head.get("name", path.stem))
    check_graph_id(name)
    dataset = head.get("dataset")
    if dataset not in DATASETS:
        raise NncapError(f"{path}: [zoo] dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    optimizer = head.get("optimizer", "sgd")
    if optimizer not in ("sgd", "adam"):
        raise NncapError(f"{path}: optimizer must be sgd or adam, not {optimizer!r}")
    if not isinstance(grid, dict):
        raise NncapError(f"{path}: no [grid] table")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise NncapError(f"{path}: unknown [grid] key(s) {', '.join(unknown)}; use {', '.join(GRID_KEYS)}")
    missing = [k for k in GRID_KEYS if k not in grid]
    if missing:
        raise NncapError(f"{path}: [grid] lacks {', '.join(missing)}")
    values = {k: grid[k] if isinstance(grid[k], list) else [grid[k]] for k in GRID_KEYS}
    for arch in values["architecture"]:
        if arch not in ARCHITECTURES:
            raise NncapError(f"{path}: unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    for act in values["activation"]:
        if act not in ACTIVATIONS:
            raise NncapError(f"{path}: unknown activation {act!r}; choose from {', '.join(ACTIVATIONS)}")
    for key in ("depth", "width", "epochs"):
        if any(not isinstance(v, int) or v < 1 for v in values[key]):
            raise NncapError(f"{path}: [grid] {key} must list positive integers")
    if any(not isinstance(v, (int, float)) or v <= 0 for v in values["lr"]):
        raise NncapError(f"{path}: [grid] lr must list positive numbers")
    if len(values["epochs"]) > 1:
        raise NncapError(f"{path}: [grid] epochs lists several values; every epoch is saved anyway, "
                         "so give only the largest")
    combos = list(itertools.product(*(values[k] for k in GRID_KEYS)))
    sample = doc.get("sample")
    if sample:
        n = int(sample.get("n", 0))
        if not 1 <= n <= len(combos):
            raise NncapError(f"{path}: [sample] n must be between 1 and the grid size {len(combos)}")
        pick = np.random.default_rng(int(sample.get("seed", 0))).choice(len(combos), n, replace=False)
        combos = [combos[i] for i in sorted(pick)]
    batch = int(head.get("batch_size", 64))
    train_size = int(head.get("train_size", 0))
    if batch < 1 or train_size < 0:
        raise NncapError(f"{path}: batch_size must be positive and train_size non-negative")
    runs = [RunConfig(*c, dataset=dataset, batch_size=batch, optimizer=optimizer, train_size=train_size)
            for c in combos]
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise NncapError(f"{path}: [grid] lists a value twice")
    return ZooSpec(name, Path(out or head.get("out", f"nncap-zoo/{name}")), runs)


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of a classifier on (X, y), in eval mode and batches."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for a in range(0, len(y), batch):
            out = model(X[a:a + batch])
            loss += float(nn.functional.cross_entropy(out, y[a:a + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[a:a + batch]).sum())
    return loss / len(y), correct / len(y)


def train_run(out: str, config: RunConfig) -> dict[str, Any]:
    """Train one configuration, saving ``<run>-e<epoch>.safetensors`` after every epoch and the
    per-epoch metrics to ``<run>.json``. A run whose metrics file exists is not trained again."""
    from safetensors.torch import save_file

    root = Path(out)
    done = root / f"{config.run_id}.json"
    if done.exists():
        return json.loads(done.read_text())
    torch.manual_seed(config.seed)
    X, y = load_dataset(config.dataset, "train")
    Xv, yv = load_dataset(config.dataset, "test")
    if config.train_size:
        idx = torch.from_numpy(np.random.default_rng(config.seed).permutation(len(y))[:config.train_size])
        X, y = X[idx], y[idx]
    params = config.model_params()
    model = build(config.architecture, params)
    opt = (torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9) if config.optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=config.lr))
    gen = torch.Generator().manual_seed(config.seed)
    epochs = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        for batch in torch.randperm(len(y), generator=gen).split(config.batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
            opt.step()
        train_loss, train_acc = evaluate(model, X, y)
        val_loss, val_acc = evaluate(model, Xv, yv)
        if not np.isfinite(train_loss):
            raise NncapError(f"run {config.run_id} diverged at epoch {epoch} (loss {train_loss}); lower its lr")
        checkpoint = f"{config.run_id}-e{epoch}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / checkpoint))
        epochs.append({"epoch": epoch, "checkpoint": checkpoint, "train_loss": train_loss,
                       "train_accuracy": train_acc, "val_loss": val_loss, "val_accuracy": val_acc})
    record = {"run": config.run_id, "config": asdict(config), "params": params, "epochs": epochs}
    tmp = done.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(done)  # the metrics file appears only once every checkpoint is written
    return record


def write_manifest(spec: ZooSpec, records: Sequence[dict[str, Any]]) -> Path:
    """The zoo manifest for ``nncap export``: one model per run and epoch, metrics included."""
    lines = ["# Written by `nncap zoo train`; read by `nncap export`.", "[zoo]",
             f"name = {json.dumps(spec.name)}", f"dataset = {json.dumps(spec.runs[0].dataset)}", ""]
    for rec in sorted(records, key=lambda r: r["run"]):
        final = rec["epochs"][-1]["val_accuracy"]
        cfg = rec["config"]
        for ep in rec["epochs"]:
            metrics = {k: ep[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")}
            metrics.update(final_val_accuracy=final, lr=cfg["lr"], seed=cfg["seed"], depth=cfg["depth"],
                           width=cfg["width"], activation=cfg["activation"], run=rec["run"])
            model_id = f"{rec['run']}-e{ep['epoch']}"
            lines += ["[[models]]", f"id = {json.dumps(model_id)}"]
            lines += [f"checkpoint = {json.dumps(ep['checkpoint'])}",
                      f"architecture = {json.dumps(cfg['architecture'])}",
                      f"params = {_toml_inline(rec['params'])}", f"metrics = {_toml_inline(metrics)}", ""]
    path = spec.out / "manifest.toml"
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path


def _toml_inline(d: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"


def train_zoo(spec_path: str | Path, *, client: Any, out: str | Path | None = None,
              show_progress: bool | None = None) -> tuple[StageResult, Path | None]:
    """Train every run of the spec (skipping finished ones) and write the manifest."""
    spec = read_spec(spec_path, out)
    spec.out.mkdir(parents=True, exist_ok=True)
    result = StageResult()
    task = partial(train_run, str(spec.out))
    for config, record, error in run_tasks(client, task, spec.runs, label="train", show_progress=show_progress):
        if error is None:
            result.records.append(record)
        else:
            result.failures.append((config.run_id, error_message(error)))
    manifest = write_manifest(spec, result.records) if result.records else None
    if manifest:
        result.outputs.append(str(manifest))
        result.table = pd.DataFrame([{"run": r["run"], "epochs": len(r["epochs"]),
                                      "train_accuracy": r["epochs"][-1]["train_accuracy"],
                                      "val_accuracy": r["epochs"][-1]["val_accuracy"]} for r in result.records])
    return result, manifest
