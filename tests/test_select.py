"""Model selection: a tiny study end to end, the predictors and the scores."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.backbones import drop_output_layer
from pipeline.errors import NncapError
from pipeline.evaluate import (alpha_hat, capacitance_prediction, curve_fit_prediction, layer_alpha, logme, naswot,
                               score_methods)
from pipeline.models import build
from pipeline.select import read_select_spec, run_select
from pipeline.store import Store
from tests.cli_helpers import nncap
from tests.test_zoo import SPEC


def tiny_study(tmp_path, extra="", full=True):
    zoo_spec = tmp_path / "zoo.toml"
    zoo_spec.write_text(SPEC.replace('name = "tiny"', f'name = "tiny"\nout = "{tmp_path / "zoo"}"')
                        .replace("width = [8, 12]", "width = [6, 8, 12]"))
    spec = tmp_path / "select.toml"
    spec.write_text(f"""
[select]
name = "tiny-select"
target = "digits"
train_size = 300
eval_size = 200
probe = [12, 8, 8]
probe_rows = 16
early_epochs = 2
max_epochs = 6
lr = 0.01
out = "{tmp_path / 'out'}"
full = {str(full).lower()}
{extra}
[[candidates]]
zoo_spec = "{zoo_spec}"
final_epoch_only = true
""")
    return spec


@pytest.mark.parametrize("interaction", ["hessian", "weight"])
def test_tiny_selection_study(tmp_path, interaction):
    spec = tiny_study(tmp_path, f'interaction = "{interaction}"\nbeta_every_steps = 2')
    url = str(tmp_path / "s.zarr")
    result = run_select(spec, url, client=None, show_progress=False)
    assert not result.failures
    table = pd.DataFrame(result.records)
    assert len(table) == 3 and table.true_accuracy.between(0, 1).all()
    assert np.isfinite(table.capacitance).all() and np.isfinite(table.logme).all()
    scores = result.table.set_index("method")
    assert set(scores.index) == {"capacitance", "early_accuracy", "curve_fit", "n_params", "logme", "naswot",
                                 "neg_alpha_hat"}
    ranked = scores.dropna(subset=["kendall_tau_lo"])
    assert len(ranked) >= 6 and (ranked.kendall_tau_lo <= ranked.kendall_tau_hi).all()
    store = Store(url, mode="r")
    traj, attrs = store.read_table("tiny-select-trajectories")
    assert attrs["settings"]["interaction"] == interaction
    assert (traj.groupby("candidate").epoch.min() == 0).all() and (traj.beta_eff > 0).all()
    steps, _ = store.read_table("tiny-select-steps")  # 300 examples / 64 per batch = 5 steps per epoch
    assert (steps.step % 2 == 0).all()
    for cid, epochs in traj.groupby("candidate").epoch.max().items():
        assert (steps.candidate == cid).sum() == 5 * epochs // 2
    for name in ("trajectories", "predicted", "kendall"):
        assert (tmp_path / "out" / f"tiny-select-{name}.png").stat().st_size > 0
    # resumable: results are read back, not recomputed
    cache = tmp_path / "out" / "candidates" / f"{table.candidate[0]}.json"
    stamp = cache.stat().st_mtime_ns
    run_select(spec, url, client=None, show_progress=False)
    assert cache.stat().st_mtime_ns == stamp and json.loads(cache.read_text())["trajectory"]


def test_spec_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[select]\ntarget = "cifar"\n[[candidates]]\nzoo = "x"\n')
    with pytest.raises(NncapError, match="target must be one of"):
        read_select_spec(bad)
    with pytest.raises(NncapError, match="no selection spec"):
        read_select_spec(tmp_path / "missing.toml")
    bad.write_text('[select]\ntarget = "digits"\nwidth = 3\n[[candidates]]\nzoo = "x"\n')
    with pytest.raises(NncapError, match="unknown \\[select\\] key"):
        read_select_spec(bad)
    bad.write_text('[select]\ntarget = "digits"\nearly_epochs = 5\nmax_epochs = 2\n[[candidates]]\nzoo = "x"\n')
    with pytest.raises(NncapError, match="early_epochs"):
        read_select_spec(bad)
    bad.write_text('[select]\ntarget = "digits"\n[[candidates]]\nzoo = "x"\nzoo_spec = "y"\n')
    with pytest.raises(NncapError, match="exactly one of zoo"):
        read_select_spec(bad)


def test_predictors():
    # accuracy rising linearly as β_eff falls: extrapolation to β_eff = 0 recovers the intercept
    beta = np.array([0.5, 0.4, 0.3])
    pred, std = capacitance_prediction(beta, 0.9 - 0.5 * beta)
    assert pred == pytest.approx(0.9, abs=0.02) and std > 0
    t = np.arange(1, 6)
    assert curve_fit_prediction(t, 0.95 - 0.4 * t ** -1.0) == pytest.approx(0.95, abs=0.01)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    informative = np.eye(3)[y] + 0.1 * rng.normal(size=(300, 3))
    noise = rng.normal(size=(300, 3))
    assert logme(informative, y) > logme(noise, y)


def test_scores_against_truth():
    table = pd.DataFrame({"true_accuracy": [0.5, 0.6, 0.7, 0.8], "capacitance": [0.52, 0.61, 0.69, 0.83],
                          "n_params": [4.0, 3.0, 2.0, 1.0]})
    s = score_methods(table, ["capacitance", "n_params"]).set_index("method")
    assert s.loc["capacitance", "kendall_tau"] == pytest.approx(1.0)
    assert s.loc["n_params", "kendall_tau"] == pytest.approx(-1.0)
    assert s.loc["n_params", "top1_regret"] == pytest.approx(0.3)
    assert s.loc["capacitance", "mae"] == pytest.approx(0.0175)
    assert np.isnan(s.loc["n_params", "mae"])


def test_drop_output_layer():
    net = build("mlp", {"widths": [4, 3, 2]})
    feats = drop_output_layer(net)(torch.randn(5, 4))
    assert feats.shape == (5, 3)


def test_naswot_and_alpha_hat():
    codes = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]])
    assert naswot(codes) > naswot(np.ones((3, 4)))  # identical codes: singular kernel
    assert naswot(np.ones((3, 4))) == -np.inf
    rng = np.random.default_rng(0)
    # a heavy-tailed spectrum has a smaller power-law exponent than a Marchenko–Pastur-like one
    gaussian = rng.normal(size=(200, 100))
    heavy = rng.standard_t(1.5, size=(200, 100))
    assert layer_alpha(heavy)[0] < layer_alpha(gaussian)[0]
    assert np.isnan(layer_alpha(np.ones((2, 2)))[0])
    assert np.isfinite(alpha_hat([gaussian, heavy]))


def test_finetuning_changes_the_backbone(tmp_path):
    spec = tiny_study(tmp_path, "finetune = true\nbackbone_lr = 0.01")
    result = run_select(spec, str(tmp_path / "s.zarr"), client=None, show_progress=False)
    assert not result.failures and len(result.records) == 3
    (tmp_path / "f").mkdir()
    frozen = tiny_study(tmp_path / "f")
    base = run_select(frozen, str(tmp_path / "f.zarr"), client=None, show_progress=False)
    tuned = pd.DataFrame(result.records).set_index("candidate").true_accuracy
    fixed = pd.DataFrame(base.records).set_index("candidate").true_accuracy
    assert not np.allclose(tuned.sort_index(), fixed.sort_index())


def test_interrupted_candidate_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    import pipeline.select as select

    spec_path = tiny_study(tmp_path, "beta_every_steps = 3")
    spec = read_select_spec(spec_path)
    run_select(spec_path, str(tmp_path / "warm.zarr"), client=None, show_progress=False)  # trains the zoo
    item = select.resolve_candidates(spec)[0]
    clean = select.run_candidate(spec, item)  # reads the finished result back
    (tmp_path / "out" / "candidates" / f"{item[0]}.json").unlink()
    real, calls = select.interaction, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("worker lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(select, "interaction", failing)
    with pytest.raises(RuntimeError, match="worker lost"):
        select.run_candidate(spec, item)
    partial = tmp_path / "out" / "candidates" / f"{item[0]}.partial.pt"
    assert partial.exists()
    monkeypatch.setattr(select, "interaction", real)
    resumed = select.run_candidate(spec, item)
    assert not partial.exists()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(resumed["trajectory"]) == strip(clean["trajectory"])
    assert resumed["steps"] == clean["steps"]


def test_early_budget_ranks_and_full_run_continues(tmp_path):
    """Without full, candidates train for the early epochs only and are ranked by prediction; a
    later --full run continues each from its saved epochs to the same result as a full run."""
    spec = tiny_study(tmp_path, full=False)
    url = str(tmp_path / "s.zarr")
    early = run_select(spec, url, client=None, show_progress=False)
    assert not early.failures and early.table is None
    table = pd.DataFrame(early.records)
    assert "true_accuracy" not in table and table["rank"].min() == 1  # ties share a rank
    assert table.sort_values("rank").capacitance.is_monotonic_decreasing
    assert "9 epochs trained now" in early.notes[0]  # epochs 0, 1, 2 of three candidates
    store = Store(url, mode="r")
    assert "tiny-select-scores" not in store.tables()
    assert store.read_table("tiny-select-trajectories")[0].epoch.max() == 2
    full = run_select(spec, url, client=None, full=True, show_progress=False)
    assert "0 of 3 candidates reused from an earlier run, 3 resumed" in full.notes[0]
    assert full.table is not None and "tiny-select-scores" in Store(url, mode="r").tables()
    (tmp_path / "ref").mkdir()
    reference = run_select(tiny_study(tmp_path / "ref"), str(tmp_path / "ref.zarr"), client=None, show_progress=False)
    drop = ["feature_seconds"]
    pd.testing.assert_frame_equal(pd.DataFrame(full.records).drop(columns=drop),
                                  pd.DataFrame(reference.records).drop(columns=drop))
    p = nncap("select", spec, "--store", url, "--scheduler", "sync")  # early again: the full results are reused
    assert "rank" in p.stdout and "true_accuracy" not in p.stdout and "--full trains on" in p.stderr
