import json

import pytest

from pipeline.store import Store

from tests.cli_helpers import nncap


def test_help_teaches():
    out = nncap("--help").stdout
    for cmd in ("import", "query", "show", "run", "sources"):
        assert cmd in out
    assert "--scheduler" in nncap("import", "--help").stdout


def test_import_query_show(tmp_path, store_url):
    edges = tmp_path / "road.csv"
    edges.write_text("# tiny road network\na,b,1.5\nb,c,2\nc,a,1\n")
    p = nncap("import", store_url, "gt:karate", "nx:florentine", str(edges), "--undirected", "--scheduler", "sync")
    assert "karate" in p.stdout and "road" in p.stdout
    rows = json.loads(nncap("query", store_url, "--where", "n_nodes > 10", "--json").stdout)
    assert sorted(r["id"] for r in rows) == ["florentine", "karate"]
    table = nncap("query", store_url, "--columns", "id,n_edges").stdout
    assert "road" in table and "n_edges" in table
    info = json.loads(nncap("show", store_url, "road", "--json").stdout)
    assert info["n_nodes"] == 3 and info["weighted"] and info["stats"]["components"] == 1
    assert info["node_properties"]["name"] == "string [3]"
    assert "karate" in nncap("show", store_url, "karate").stdout


@pytest.mark.parametrize("args,msg", [
    (["query", "{store}", "--where", "n_nodez > 1"], "unknown graph field 'n_nodez'"),
    (["show", "{store}", "nope"], "no graph 'nope'"),
    (["show", "{store}", "../x"], "invalid graph id"),
    (["query", "{missing}"], "no nncap store"),
    (["run", "{missing}"], "no such workflow file"),
    (["import", "{store}", "gt:karate", "--scheduler", "bogus"], "scheduler must be"),
])
def test_user_errors_are_one_line(tmp_path, store_url, args, msg):
    nncap("import", store_url, "nx:karate", "--scheduler", "sync")
    args = [a.format(store=store_url, missing=tmp_path / "missing") for a in args]
    p = nncap(*args, check=False)
    assert p.returncode == 2, p.stderr
    assert msg in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_bad_file_reports_line_and_writes_nothing(tmp_path, store_url):
    bad = tmp_path / "bad.txt"
    bad.write_text("a b 1\nb c 2\nc d two\n")
    p = nncap("import", store_url, str(bad), "--scheduler", "sync", check=False)
    assert p.returncode == 1 and "bad.txt:3: weight 'two' is not a number" in p.stderr
    assert "Traceback" not in p.stderr
    store = Store(store_url, mode="r")
    assert store.catalog().empty and store.unpublished() == []


def test_one_bad_source_does_not_stop_the_others(tmp_path, store_url):
    bad = tmp_path / "bad.txt"
    bad.write_text("a\n")
    p = nncap("import", store_url, "nx:karate", str(bad), "nx:florentine", "--scheduler", "sync", check=False)
    assert p.returncode == 1 and "bad.txt:1" in p.stderr
    assert sorted(Store(store_url).catalog()["id"]) == ["florentine", "karate"]


def test_sources_lists_bundled_networks():
    rows = json.loads(nncap("sources", "--json").stdout)
    assert any(r["source"] == "gt:celegansneural" and r["directed"] for r in rows)


def test_workflow_validation(tmp_path):
    wf = tmp_path / "w.toml"
    wf.write_text('[[step]]\nstage = "import"\nsource = ["nx:karate"]\n')
    p = nncap("run", wf, check=False)
    assert p.returncode == 2 and "unknown parameter(s) ['source']" in p.stderr
    wf.write_text('[[step]]\nstage = "teleport"\n')
    assert "stage must be one of" in nncap("run", wf, check=False).stderr
    wf.write_text('[[step]\n')
    assert "invalid TOML" in nncap("run", wf, check=False).stderr


def test_quickstart_workflow_on_local_cluster(store_url):
    """What `make run` does, against a temporary store, on the default local Dask cluster."""
    p = nncap("run", "workflows/quickstart.toml", "--store", store_url, env={"NNCAP_SCHEDULER": ""})
    assert "scheduler: local" in p.stderr and "workflow finished" in p.stderr
    assert "celegansneural" in p.stdout and "giant_fraction" in p.stdout
    assert "wrote nncap-report/index.html" in p.stderr
    store = Store(store_url)
    catalog = store.catalog()
    assert (catalog.kind == "network").sum() == 3 and (catalog.kind == "linegraph").sum() == 18  # 6 MLPs x 3 epochs
    assert {"structure", "topology", "comparison", "capacitance-quickstart-scores"} <= set(store.tables())
    published = store.pending_entries()
    again = nncap("run", "workflows/quickstart.toml", "--store", store_url, "--scheduler", "sync")
    assert "workflow finished" in again.stderr
    assert len(Store(store_url).catalog()) == 21 and Store(store_url).pending_entries() == published  # nothing rewritten
