"""Neural-capacitance model selection (``nncap select SPEC.toml``; Jiang et al., Nat. Commun. 2024).

For every candidate backbone: remove its output layer, put the neural capacitance probe (an MLP of
ReLU layers with a fixed random initialisation) and a new output layer on top, train on the target
data, and after every epoch compute β_eff of the probe's parameter interaction graph on a fixed
probe batch (matrix-free). The early epochs predict the final accuracy (see
:mod:`pipeline.evaluate`): by default training stops there and the candidates are ranked by their
predictions. With ``full`` (``nncap select --full``) training goes on to early stopping to give the
true accuracy, and every predictor is scored against it; a full run continues from the epochs an
early run saved. A spec::

    [select]
    name = "capacitance-fmnist"
    target = "fashion-mnist"      # digits, fashion-mnist or mnist-5k
    train_size = 2000             # a fixed random subset of the target's train split
    eval_size = 2000              # test split examples: first half validation, second half test
    resolution = 32               # input side for backbones that take any resolution
    probe = [128, 64, 32]         # hidden widths of the NCP (ReLU)
    probe_seed = 0                # the same initialisation stream for every candidate
    probe_rows = 64               # probe batch for P (training examples)
    interaction = "hessian"       # weight, chain or hessian
    absolute = true               # β_eff of |P|
    early_epochs = 3              # epochs the predictors may see
    finetune = false              # true: train the backbone too (at backbone_lr = 1e-4)
    device = "auto"               # the GPU when there is one
    beta_every_steps = 0          # also record β_eff every k optimiser steps (0: per epoch only)
    full = false                  # true: also the ground truth, and scores of every method
    max_epochs = 30               # ground truth: train to early stopping on validation loss
    patience = 3
    lr = 0.001                    # Adam
    batch_size = 64
    out = "nncap-results/select-fmnist"

    [[candidates]]
    zoo = "workflows/zoos/pretrained"
    models = ["mnist-cnn", "mobilenet-v2", "efficientnet-lite0"]

    [[candidates]]
    zoo_spec = "workflows/zoos/digits-mlps.toml"   # source models: trained first if needed
    final_epoch_only = true       # one candidate per training run

By default the backbone is frozen and its features are computed once per candidate; with
``finetune = true`` it trains along with the probe (slower: every step runs the backbone).
Results: per-epoch trajectories, per-candidate predictions (and truth), per-method scores (full
runs), as CSV in ``out``, tables in the store and figures.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from graphs.formats import resolve_device
from graphs.interaction import MODELS, interaction
from graphs.linegraph import trace
from graphs.operator import InteractionOperator
from pipeline.backbones import load_backbone
from pipeline.cluster import run_tasks
from pipeline.datasets import DATASETS, load_dataset
from pipeline.errors import NncapError, read_toml
from pipeline.evaluate import alpha_hat, capacitance_prediction, curve_fit_prediction, logme, naswot, score_methods
from pipeline.export import ExportOptions, ZooModel, export_key, read_manifest
from pipeline.models import mlp
from pipeline.stages import StageResult, error_message
from pipeline.store import Store, check_graph_id
from pipeline.zoo import evaluate, read_spec, train_zoo

METHODS = ["capacitance", "early_accuracy", "curve_fit", "n_params", "logme", "naswot", "neg_alpha_hat"]
# Activation modules whose sign pattern (output > 0) gives NASWOT's binary codes.
CODED_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Hardswish, nn.Mish)


@dataclass(frozen=True)
class SelectSpec:
    """Settings of a selection study (see the module docstring for their meaning)."""

    name: str
    target: str
    out: str
    train_size: int = 2000
    eval_size: int = 2000
    resolution: int = 32
    probe: tuple[int, ...] = (128, 64, 32)
    probe_seed: int = 0
    probe_rows: int = 64
    interaction: str = "hessian"
    absolute: bool = True
    early_epochs: int = 3
    max_epochs: int = 30
    patience: int = 3
    lr: float = 1e-3
    finetune: bool = False
    backbone_lr: float = 1e-4
    beta_every_steps: int = 0
    batch_size: int = 64
    data_seed: int = 0
    device: str = "auto"
    full: bool = False
    sources: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.target not in DATASETS:
            raise NncapError(f"target must be one of {', '.join(DATASETS)}, not {self.target!r}")
        if self.interaction not in MODELS:
            raise NncapError(f"interaction must be one of {', '.join(MODELS)}, not {self.interaction!r}")
        if not 1 <= self.early_epochs <= self.max_epochs:
            raise NncapError("need 1 <= early_epochs <= max_epochs")
        if min(self.train_size, self.eval_size, self.probe_rows, self.batch_size, self.resolution) < 1 or \
                self.eval_size < 2 or not self.probe or min(self.probe) < 1 or self.lr <= 0:
            raise NncapError("sizes, probe widths and lr must be positive (eval_size at least 2)")

    def settings(self) -> dict[str, Any]:
        """What a candidate's training depends on (device and ``full`` do not change its epochs)."""
        return {k: v for k, v in asdict(self).items() if k not in ("sources", "device", "full")}


def read_select_spec(path: str | Path, out: str | None = None, budget: float = 1.0, full: bool = False) -> SelectSpec:
    """Parse a selection spec; every problem is a one-line NncapError. ``budget`` scales the
    training and evaluation subset sizes (capped by the dataset's splits); ``full`` overrides the
    spec's ``full`` when true."""
    path = Path(path)
    doc = read_toml(path, "selection spec")
    head = dict(doc.get("select", {}))
    allowed = {f for f in SelectSpec.__dataclass_fields__ if f != "sources"}
    unknown = sorted(set(head) - allowed)
    if unknown:
        raise NncapError(f"{path}: unknown [select] key(s) {', '.join(unknown)}")
    head.setdefault("name", path.stem)
    check_graph_id(head["name"])
    head.setdefault("out", f"nncap-results/{head['name']}")
    if out:
        head["out"] = out
    if full:
        head["full"] = True
    if not isinstance(head.get("full", False), bool):
        raise NncapError(f"{path}: full must be true or false")
    if "probe" in head:
        head["probe"] = tuple(int(w) for w in head["probe"])
    if budget <= 0:
        raise NncapError(f"budget must be positive, not {budget}")
    for key in ("train_size", "eval_size"):
        head[key] = max(2, int(round(head.get(key, SelectSpec.__dataclass_fields__[key].default) * budget)))
    sources = []
    for i, c in enumerate(doc.get("candidates", [])):
        unknown = sorted(set(c) - {"zoo", "zoo_spec", "models", "final_epoch_only"})
        if unknown or ("zoo" in c) == ("zoo_spec" in c):
            raise NncapError(f"{path}: candidates[{i}] needs exactly one of zoo (a manifest) or zoo_spec (a zoo "
                             f"to train first){'; unknown key(s) ' + ', '.join(unknown) if unknown else ''}")
        sources.append(dict(c))
    if not sources:
        raise NncapError(f"{path}: no [[candidates]]")
    return SelectSpec(**head, sources=tuple(sources))


def resolve_candidates(spec: SelectSpec) -> list[tuple[str, ZooModel]]:
    """(candidate id, manifest entry) for every model the spec's candidate sources name."""
    candidates: list[tuple[str, ZooModel]] = []
    for c in spec.sources:
        zoo_name, entries = read_manifest(c["zoo"] if "zoo" in c else read_spec(c["zoo_spec"]).out)
        wanted = c.get("models")
        if wanted:
            missing = sorted(set(wanted) - {e.id for e in entries})
            if missing:
                raise NncapError(f"zoo {zoo_name!r} has no model(s) {', '.join(missing)}")
            entries = [e for e in entries if e.id in set(wanted)]
        if c.get("final_epoch_only"):
            last: dict[str, ZooModel] = {}
            for e in entries:
                run = str(e.metrics.get("run", e.id))
                if run not in last or e.metrics.get("epoch", 0) > last[run].metrics.get("epoch", 0):
                    last[run] = e
            entries = list(last.values())
        candidates += [(f"{zoo_name}.{e.id}", e) for e in entries]
    if len(candidates) < 2:
        raise NncapError("model selection needs at least two candidates")
    return candidates


def _target_data(spec: SelectSpec) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    X, y = load_dataset(spec.target, "train")
    Xe, ye = load_dataset(spec.target, "test")
    rng = np.random.default_rng(spec.data_seed)
    tr = torch.from_numpy(rng.permutation(len(y))[:spec.train_size])
    ev = torch.from_numpy(rng.permutation(len(ye))[:spec.eval_size])
    half = len(ev) // 2
    return {"train": (X[tr], y[tr]), "val": (Xe[ev[:half]], ye[ev[:half]]), "test": (Xe[ev[half:]], ye[ev[half:]])}


def make_probe(in_features: int, widths: tuple[int, ...], classes: int, seed: int) -> nn.Module:
    """The neural capacitance probe and output layer: Linear–ReLU blocks, then a Linear head,
    initialised from ``seed``."""
    torch.manual_seed(seed)
    return mlp([in_features, *widths, classes], activation="relu")


def activation_codes(backbone: Any, images: torch.Tensor, resolution: int) -> np.ndarray:
    """Binary codes (output > 0) of every activation module of the backbone on ``images``."""
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).reshape(len(out), -1)))
             for m in backbone.module.modules() if isinstance(m, CODED_ACTIVATIONS)]
    try:
        backbone.features(images, resolution)
    finally:
        for h in hooks:
            h.remove()
    if not codes:
        return np.zeros((len(images), 0))
    return torch.cat(codes, 1).numpy()


def run_candidate(spec: SelectSpec, item: tuple[str, ZooModel]) -> dict[str, Any]:
    """Train the probe on one candidate's features; β_eff and metrics after every epoch, through the
    early epochs or, with ``spec.full``, to early stopping. Resumable: a candidate whose result file
    matches the settings and checkpoint is not run again, and an interrupted (or early-only) one
    continues from its last finished epoch (``<id>.partial.pt``)."""
    cid, entry = item
    cache = Path(spec.out) / "candidates" / f"{cid}.json"
    source = export_key(entry, ExportOptions())  # the checkpoint's bytes and architecture
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("settings") == json.loads(json.dumps(spec.settings())) and saved.get("source") == source:
            return {**saved, "work": {"reused": True, "resumed_at_epoch": None, "epochs_trained": 0}}
    t0 = time.perf_counter()
    device = resolve_device(spec.device)
    backbone = load_backbone(entry, cid)
    data = _target_data(spec)
    # training-free scores, on the backbone as it comes (CPU)
    naswot_score = naswot(activation_codes(backbone, data["train"][0][:spec.probe_rows], spec.resolution))
    alpha = alpha_hat([p.detach().numpy() for p in backbone.module.parameters() if p.dim() >= 2])
    backbone.module.to(device)
    inputs = {k: backbone.adapt(x, spec.resolution).to(device) for k, (x, _) in data.items()}
    labels = {k: y.to(device) for k, (_, y) in data.items()}
    feats = {k: backbone.embed(x) for k, x in inputs.items()}
    feature_s = time.perf_counter() - t0
    logme_score = logme(feats["train"].cpu().numpy(), labels["train"].cpu().numpy())
    classes = int(max(int(y.max()) for y in labels.values())) + 1
    probe = make_probe(feats["train"].shape[1], spec.probe, classes, spec.probe_seed).to(device)
    rows_y = labels["train"][:spec.probe_rows]
    graph = trace(copy.deepcopy(probe).double(), feats["train"][:2].double())
    params = [{"params": probe.parameters(), "lr": spec.lr}]
    if spec.finetune:
        for p in backbone.module.parameters():
            p.requires_grad_(True)
        params.append({"params": backbone.module.parameters(), "lr": spec.backbone_lr})
    opt = torch.optim.Adam(params)
    gen = torch.Generator().manual_seed(spec.probe_seed)

    def capacitance() -> float:
        rows_x = feats["train"][:spec.probe_rows].double()  # the probe's inputs as the backbone now sees them
        factors = interaction(copy.deepcopy(probe).double(), graph, spec.interaction, rows_x, rows_y)
        return InteractionOperator(graph, factors, absolute=spec.absolute, device=device).beta_eff()

    trajectory, steps = [], []
    best, since_best, step, start = math.inf, 0, 0, 0
    partial_path = cache.with_suffix(".partial.pt")
    key = json.dumps({"settings": spec.settings(), "source": source, "probe": list(probe.state_dict())},
                     sort_keys=True, default=str)
    if partial_path.exists():
        saved = torch.load(partial_path, map_location=device, weights_only=True)
        progress = json.loads(saved["progress"])
        if progress["key"] == key:
            probe.load_state_dict(saved["probe"])
            opt.load_state_dict(saved["optimizer"])
            gen.set_state(saved["generator"].cpu())  # a CPU generator, whatever the device
            if spec.finetune:
                backbone.module.load_state_dict(saved["backbone"])
                feats = {k: backbone.embed(x) for k, x in inputs.items()}
            trajectory, steps = progress["trajectory"], progress["steps"]
            best, since_best, step = progress["best"], progress["since_best"], progress["step"]
            start = progress["epoch"] + 1

    def save_progress(epoch: int) -> None:
        state = {"probe": probe.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                 "backbone": backbone.module.state_dict() if spec.finetune else {},
                 "progress": json.dumps({"key": key, "epoch": epoch, "trajectory": trajectory, "steps": steps,
                                         "best": best, "since_best": since_best, "step": step})}
        partial_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = partial_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(partial_path)

    stopped = bool(trajectory) and _should_stop(spec, trajectory[-1]["epoch"], since_best)
    work = {"reused": False, "resumed_at_epoch": start if start else None, "epochs_trained": 0}
    last = spec.max_epochs if spec.full else spec.early_epochs
    for epoch in range(start, 0 if stopped else last + 1):
        t = time.perf_counter()
        work["epochs_trained"] += 1
        if epoch:
            probe.train()
            backbone.module.train(spec.finetune)
            for batch in torch.randperm(len(labels["train"]), generator=gen).to(device).split(spec.batch_size):
                opt.zero_grad()
                x = backbone.module(inputs["train"][batch]).flatten(1) if spec.finetune else feats["train"][batch]
                loss = nn.functional.cross_entropy(probe(x), labels["train"][batch])
                loss.backward()
                opt.step()
                step += 1
                if spec.beta_every_steps and step % spec.beta_every_steps == 0:
                    if spec.finetune:  # the probe batch's features as the backbone now sees them
                        feats["train"][:spec.probe_rows] = backbone.embed(inputs["train"][:spec.probe_rows])
                    steps.append({"step": step, "epoch": epoch, "beta_eff": capacitance(),
                                  "batch_loss": float(loss.detach())})
                    probe.train()
                    backbone.module.train(spec.finetune)
            if spec.finetune:
                feats = {k: backbone.embed(x) for k, x in inputs.items()}
        train_loss, train_acc = evaluate(probe, feats["train"], labels["train"])
        val_loss, val_acc = evaluate(probe, feats["val"], labels["val"])
        _, test_acc = evaluate(probe, feats["test"], labels["test"])
        beta = capacitance()
        trajectory.append({"epoch": epoch, "beta_eff": beta, "train_loss": train_loss, "train_accuracy": train_acc,
                           "val_loss": val_loss, "val_accuracy": val_acc, "test_accuracy": test_acc,
                           "seconds": time.perf_counter() - t})
        if epoch:
            if val_loss < best - 1e-4:
                best, since_best = val_loss, 0
            else:
                since_best += 1
        save_progress(epoch)
        if _should_stop(spec, epoch, since_best):
            break
    backbone.module.eval()
    result = {"candidate": cid, "settings": spec.settings(), "source": source, "n_params": backbone.n_params,
              "feature_dim": int(feats["train"].shape[1]), "feature_seconds": feature_s,
              "logme": logme_score,
              "naswot": naswot_score, "alpha_hat": alpha,
              "trajectory": trajectory, "steps": steps,
              "metrics": entry.metrics}
    if not spec.full:  # the partial file stays: a full run continues from it
        return {**result, "work": work}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(cache)
    partial_path.unlink(missing_ok=True)
    return {**result, "work": work}


def _should_stop(spec: SelectSpec, epoch: int, since_best: int) -> bool:
    """Early stopping on validation loss, never before the early epochs are done."""
    return epoch > 0 and since_best >= spec.patience and epoch >= spec.early_epochs


def summarise(spec: SelectSpec, results: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(per-epoch trajectories, per-candidate predictions, per-method scores). Predictions use the
    early epochs only; the truth (``true_accuracy``, ``best_epoch``) and the scores come with
    ``spec.full``. Candidates are ranked by the capacitance prediction (``rank`` 1 = best)."""
    traj = pd.DataFrame([{"candidate": r["candidate"], **step} for r in results for step in r["trajectory"]
                         if spec.full or step["epoch"] <= spec.early_epochs])
    rows = []
    for r in results:
        t = pd.DataFrame(r["trajectory"])
        early = t[(t.epoch >= 1) & (t.epoch <= spec.early_epochs)]
        pred, std = capacitance_prediction(early.beta_eff.to_numpy(), early.val_accuracy.to_numpy())
        row = {"candidate": r["candidate"]}
        if spec.full:
            trained = t[t.epoch >= 1]
            best = trained.loc[trained.val_loss.idxmin()]
            row.update(true_accuracy=float(best.test_accuracy), best_epoch=int(best.epoch))
        row.update({"capacitance": pred, "capacitance_std": std,
                    "early_accuracy": float(early.val_accuracy.iloc[-1]),
                    "curve_fit": curve_fit_prediction(early.epoch.to_numpy(), early.val_accuracy.to_numpy()),
                    "n_params": float(r["n_params"]), "logme": r["logme"], "naswot": r["naswot"],
                    "neg_alpha_hat": -r["alpha_hat"], "beta_eff_first": float(early.beta_eff.iloc[0]),
                    "beta_eff_last": float((t if spec.full else early).beta_eff.iloc[-1]),
                    "feature_dim": r["feature_dim"], "feature_seconds": r["feature_seconds"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    table.insert(1, "rank", table["capacitance"].rank(ascending=False, method="min", na_option="bottom").astype(int))
    return traj, table, score_methods(table, METHODS) if spec.full else None


def run_select(spec_path: str | Path, store_url: str, *, client: Any, out: str | None = None,
               budget: float = 1.0, full: bool = False, show_progress: bool | None = None) -> StageResult:
    """Run (or resume) a selection study and write its tables and figures; ``full`` (or the spec's
    ``full``) adds the ground truth and the scores of every method."""
    from pipeline.figures import capacitance_figures

    spec = read_select_spec(spec_path, out, budget, full)
    Path(spec.out).mkdir(parents=True, exist_ok=True)
    result = StageResult()
    for source in spec.sources:
        if "zoo_spec" in source:  # source models to train first (finished runs are skipped)
            trained, _ = train_zoo(source["zoo_spec"], client=client, show_progress=show_progress)
            result.failures += trained.failures
    results = []
    for (cid, _), record, error in run_tasks(client, partial(run_candidate, spec), resolve_candidates(spec),
                                             label="select", show_progress=show_progress):
        if error is None:
            results.append(record)
        else:
            result.failures.append((cid, error_message(error)))
    if results:
        works = [r["work"] for r in results]
        resumed = sum(w["resumed_at_epoch"] is not None for w in works)
        result.notes.append(f"select: {sum(w['reused'] for w in works)} of {len(works)} candidates reused from an "
                            f"earlier run, {resumed} resumed from a saved epoch; "
                            f"{sum(w['epochs_trained'] for w in works)} epochs trained now")
    if len(results) < 2:
        return result
    if not spec.full:
        result.notes.append(f"select: ranked by predictions from the first {spec.early_epochs} epochs; --full "
                            "trains on to early stopping and scores every method against the true accuracy")
    traj, table, scores = summarise(spec, results)
    store = Store(store_url)
    attrs = {"settings": json.loads(json.dumps(spec.settings())), "full": spec.full}
    tables = [("trajectories", traj), ("candidates", table)] + ([("scores", scores)] if scores is not None else [])
    steps = pd.DataFrame([{"candidate": r["candidate"], **s} for r in results for s in r.get("steps", [])])
    if not steps.empty:
        tables.append(("steps", steps))
    for name, frame in tables:
        path = Path(spec.out) / f"{spec.name}-{name}.csv"
        frame.to_csv(path, index=False)
        store.write_table(f"{spec.name}-{name}", frame, attrs)
        result.outputs.append(str(path))
    result.outputs += capacitance_figures(traj, table, scores, spec.out, spec.name, spec.early_epochs)
    result.table = scores
    result.records = table.to_dict("records")
    return result
