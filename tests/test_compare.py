"""Comparative studies: group effects and randomisation z-scores."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from graphs.formats import from_networkx
from pipeline.compare import compare_groups, measures_table, randomisation_zscores
from pipeline.errors import NncapError
from pipeline.stages import mean_field
from pipeline.store import Store
from pipeline.topology import run_topology
from tests.cli_helpers import nncap


def test_group_effects():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"family": ["a"] * 20 + ["b"] * 20,
                          "beta_eff": np.r_[rng.normal(1, 0.1, 20), rng.normal(2, 0.1, 20)],
                          "noise": rng.normal(0, 1, 40)})
    t = compare_groups(frame, "family").set_index("measure")
    assert t.loc["beta_eff", "difference"] == pytest.approx(1, abs=0.1)
    assert t.loc["beta_eff", "ci_lo"] > 0.8 and t.loc["beta_eff", "cohens_d"] > 5
    assert t.loc["noise", "ci_lo"] < 0 < t.loc["noise", "ci_hi"]
    with pytest.raises(NncapError, match="no catalog column 'epoch'"):
        compare_groups(frame, "epoch")
    with pytest.raises(NncapError, match="need at least two"):
        compare_groups(frame[frame.family == "a"], "family")


def test_randomisations_and_measures_table(tmp_path):
    url = str(tmp_path / "s.zarr")
    store = Store(url)
    with pytest.raises(NncapError, match="run `nncap topology`"):
        measures_table(store)
    g, _ = from_networkx(nx.watts_strogatz_graph(60, 6, 0.05, seed=1), weight=None)
    store.write_graph("lattice", g, meta={"family": "small-world"})
    g2, _ = from_networkx(nx.florentine_families_graph(), weight=None)
    store.write_graph("florentine", g2, meta={"family": "historic"})
    run_topology(url, client=None, show_progress=False)
    mean_field(url, client=None, show_progress=False)
    frame = measures_table(store)
    assert {"clustering_global", "beta_eff", "H", "family"} <= set(frame.columns)
    result = randomisation_zscores(url, client=None, where="id == 'lattice'", n=5, show_progress=False)
    z = result.table.set_index("measure")
    assert z.loc["clustering_global", "z"] > 5  # a near-lattice is far more clustered than its randomisations
    assert np.isnan(z.loc["k_max", "z"]) and z.loc["k_max", "random_sd"] == 0  # degrees are kept
    stored, attrs = store.read_table("randomisation")
    assert attrs["randomisations"] == 5 and len(stored) == len(result.table)


def test_cli_compare(tmp_path):
    url = tmp_path / "s.zarr"
    nncap("import", url, "gt:karate", "gt:dolphins", "gt:lesmis", "--scheduler", "sync")
    nncap("topology", url, "--scheduler", "sync")
    p = nncap("compare", url, "--by", "weighted")
    assert "clustering_global" in p.stdout and "cohens_d" in p.stdout
    bad = nncap("compare", url, check=False)
    assert bad.returncode != 0 and "--by" in bad.stderr
