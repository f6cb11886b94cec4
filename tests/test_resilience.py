import os

import numpy as np
import pandas as pd
import pytest

from graphs.dynamics import get_dynamics
from graphs.graph import from_edges
from graphs.perturb import sweep
from graphs.resilience import analyse
from pipeline.importers import ImportOptions, import_source
from pipeline.resilience import SweepSpec, run_resilience
from pipeline.store import Store

from tests.cli_helpers import nncap


def er(n=200, k=6, seed=1):
    rng = np.random.default_rng(seed)
    m = n * k // 2
    g, _ = from_edges(rng.integers(0, n, m), rng.integers(0, n, m), n, weight=rng.uniform(0.5, 1.5, m),
                      directed=False, self_loops="drop", duplicates="max")
    return g


def test_homogeneous_network_far_from_tipping_point_is_predicted_within_a_few_percent():
    """papers.md C.3: ER, N=200, <k>=6, w ~ U(0.5, 1.5), mutualistic from the high state, weight
    scalings 0.1..1: the 1-D x_eff is within ~0.4% on average (a few % allowed, seed-dependent)."""
    d = get_dynamics("mutualistic")
    points = sweep(er().P, "weight-scaling", "uniform", np.linspace(0, 0.9, 10))
    rows = analyse(d, points, "high", device="cpu")
    assert all(r["converged"] for r in rows)
    err = np.mean([r["rel_error"] for r in rows])
    assert err < 0.02
    intact = rows[0]
    assert intact["beta_eff"] == pytest.approx(intact["mean_strength"] + intact["symmetry"] * intact["heterogeneity"])


def test_regulatory_network_tips_before_the_1d_critical_point():
    """papers.md C.3 item 10: lowering β_eff, the regulatory network collapses to 0 at a β_eff above
    the 1-D β_c = 2, where the 1-D equation still predicts the high state."""
    d = get_dynamics("regulatory")
    points = sweep(er().P, "weight-scaling", "uniform", np.linspace(0.6, 0.8, 21))  # β_eff 2.9 .. 1.4
    rows = analyse(d, points, "high", device="cpu")
    collapsed = [r for r in rows if r["x_eff_sim"] < 1e-3]
    assert collapsed, "the network should collapse within the sweep"
    first = max(r["beta_eff"] for r in collapsed)
    assert first > 2.0
    assert any(r["beta_eff"] > 2.0 and r["x_eff_1d"] > 1.0 and r["x_eff_sim"] < 1e-3 for r in rows)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("res") / "store.zarr")
    for name in ("karate", "dolphins"):
        import_source(url, f"gt:{name}", ImportOptions())
    return url


def test_stage_writes_table_summary_figures_and_store_results(small_store, tmp_path):
    spec = SweepSpec(points=4, strength=0.6, beta_target=10.0, device="cpu")
    result = run_resilience(small_store, spec, client=None, out=str(tmp_path / "out"))
    assert not result.failures
    table = pd.read_csv(tmp_path / "out" / f"{spec.name}.csv")
    assert len(table) == 2 * 2 * 4 and set(table["graph"]) == {"karate", "dolphins"}
    for col in ("beta_eff", "x_eff_sim", "x_eff_1d", "rel_error", "symmetry", "heterogeneity", "near_critical",
                "same_branch", "converged", "critical_distance"):
        assert col in table.columns
    assert table["converged"].all()
    assert np.allclose(table[table["t"] == 0]["beta_eff"], 10.0)
    for suffix in ("-collapse.png", "-error.png", "-summary.csv"):
        assert os.path.getsize(tmp_path / "out" / f"{spec.name}{suffix}") > 0
    stored, meta = Store(small_store).read_table(spec.name)
    assert len(stored) == len(table) and meta["dynamics"] == "mutualistic"
    assert set(result.table["graph"]) == {"karate", "dolphins"} and set(result.table["init"]) == {"high", "low"}


def test_large_graphs_split_into_several_tasks(small_store, tmp_path, monkeypatch):
    import pipeline.resilience as res
    monkeypatch.setattr(res, "MAX_BATCH_NODES", 70)  # karate (34 nodes): 2 points per task
    spec = SweepSpec(points=5, inits=("high",), device="cpu", beta_target=8.0)
    split = run_resilience(small_store, spec, client=None, ids=["karate"], out=str(tmp_path / "a"), name="split")
    monkeypatch.setattr(res, "MAX_BATCH_NODES", 10**6)
    whole = run_resilience(small_store, spec, client=None, ids=["karate"], out=str(tmp_path / "b"), name="whole")
    a = pd.DataFrame(split.records).sort_values("point")
    b = pd.DataFrame(whole.records).sort_values("point")
    assert np.allclose(a["x_eff_sim"], b["x_eff_sim"], rtol=1e-9, equal_nan=True) and list(a["t"]) == list(b["t"])


def test_cli_resilience(small_store, tmp_path):
    out = tmp_path / "out"
    p = nncap("resilience", small_store, "--graph", "karate", "--points", "3", "--init", "high", "--dynamics",
              "regulatory", "--perturb", "link-removal", "--mode", "targeted", "--beta-target", "4",
              "--scheduler", "sync", "--device", "cpu", "--out", out)
    assert "karate" in p.stdout and "resilience-regulatory-link-removal-targeted-collapse.png" in p.stderr
    assert (out / "resilience-regulatory-link-removal-targeted.csv").exists()


@pytest.mark.parametrize("args,msg", [
    (["--perturb", "weight-scaling", "--mode", "targeted"], "supports modes uniform, random"),
    (["--dynamics", "chaotic"], "unknown dynamics 'chaotic'"),
    (["--param", "B"], "--param expects NAME=NUMBER"),
    (["--param", "Q=1"], "has no parameter(s) ['Q']"),
    (["--init", "middle"], "--init must be high, low or both"),
    (["--graph", "nope"], "no graph(s) ['nope']"),
])
def test_cli_resilience_errors(small_store, tmp_path, args, msg):
    if "--graph" not in args:
        args = ["--graph", "karate", *args]
    p = nncap("resilience", small_store, *args, "--scheduler", "sync", "--out", tmp_path, check=False)
    assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not any(tmp_path.iterdir())


def test_cli_resilience_needs_a_selection(small_store):
    p = nncap("resilience", small_store, check=False)
    assert p.returncode == 2 and "--graph ID, --where EXPR or --all" in p.stderr


def test_structure_command_reports_undefined_values(tmp_path, store_url):
    edges = tmp_path / "signed.txt"
    edges.write_text("a b 1\nb c -1\n")
    nncap("import", store_url, str(edges), "nx:karate", "--signed", "--scheduler", "sync")
    p = nncap("structure", store_url, "--spectral", "--scheduler", "sync")
    assert "karate" in p.stdout and "lambda_max" in p.stdout
    assert "signed: 1ᵀP1 = 0 cancels to ~0" in p.stderr
    table, _ = Store(store_url).read_table("structure")
    assert set(table["id"]) == {"signed", "karate"}


def test_workflow_with_resilience_step(tmp_path):
    wf = tmp_path / "w.toml"
    out = tmp_path / "out"
    wf.write_text(f"""
[workflow]
name = "mini-gao"
store = "{tmp_path / 'w.zarr'}"

[[step]]
stage = "import"
sources = ["gt:karate", "gt:lesmis"]

[[step]]
stage = "structure"

[[step]]
stage = "resilience"
dynamics = "epidemic"
perturbation = "weight-scaling"
mode = "uniform"
points = 4
beta_target = 3.0
init = "high"
device = "cpu"
out = "{out}"
""")
    p = nncap("run", wf, "--scheduler", "sync")
    assert "workflow finished" in p.stderr and "lesmis" in p.stdout
    assert (out / "resilience-epidemic-weight-scaling-uniform-collapse.png").exists()


def test_spectral_reduction_columns():
    d = get_dynamics("mutualistic")
    points = sweep(er(n=120).P, "weight-scaling", "uniform", [0.0, 0.5])
    rows = analyse(d, points, "high", device="cpu", spectral=True)
    for r in rows:
        assert r["lambda_max"] > 0 and np.isfinite(r["x_spec_sim"]) and r["rel_error_spec"] < 0.05
    # symmetric P: the Rayleigh quotient of the all-ones vector bounds λ_max from below by ⟨s⟩
    assert rows[0]["lambda_max"] >= rows[0]["mean_strength"]
