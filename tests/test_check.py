"""`nncap check`: validation of a store and removal of partial writes."""

import numpy as np
import zarr

from graphs.graph import from_edges
from pipeline.check import check_store
from pipeline.store import Store
from tests.cli_helpers import nncap


def make_store(tmp_path):
    url = str(tmp_path / "s.zarr")
    store = Store(url)
    for i in range(3):
        g, _ = from_edges([0, 1, 2], [1, 2, 0], 4, weight=[1.0, 2.0, 3.0 + i])
        store.write_graph(f"g{i}", g)
    return url, store


def test_sound_store_and_corruptions(tmp_path):
    url, store = make_store(tmp_path)
    report = check_store(url)
    assert report.ok and report.checked == 3
    # corrupt published data: one weight changed, one index out of range
    zarr.open_array(store=store._zstore, path="graphs/g1/P/data", mode="r+")[0] = 99.0
    zarr.open_array(store=store._zstore, path="graphs/g2/P/indices", mode="r+")[0] = 7
    problems = dict(check_store(url).problems)
    assert set(problems) == {"g1", "g2"}
    assert "content hash" in problems["g1"] and "corrupt" not in problems["g1"]
    assert "range" in problems["g2"] or "index" in problems["g2"]


def test_partial_writes_are_found_and_repaired(tmp_path):
    url, store = make_store(tmp_path)
    partial = zarr.open_group(store=store._zstore, path="graphs/half-written", mode="w")
    partial.create_array("x", shape=(3,), dtype=np.float64)
    report = check_store(url)
    assert report.ok and report.unpublished == report.leftovers == ["half-written"]  # invisible: still valid
    p = nncap("check", url)
    assert "half-written" in p.stderr and "1 partial write(s) left" in p.stdout
    repaired = check_store(url, repair=True)
    assert repaired.ok and repaired.removed == ["half-written"] and not repaired.leftovers
    assert not check_store(url).unpublished and len(Store(url, mode="r").catalog()) == 3
    assert "partial" not in nncap("check", url).stdout


def test_stale_temporary_catalog_files_are_removed(tmp_path):
    import os

    url, store = make_store(tmp_path)
    entries = tmp_path / "s.zarr" / "catalog" / "entries"
    old, fresh = entries / ".0123.tmp", entries / ".4567.tmp"  # a killed writer's, a live writer's
    old.write_text("{")
    fresh.write_text("{")
    os.utime(old, (0, 0))
    assert [p.rsplit("/", 1)[-1] for p in check_store(url).temporaries] == [".0123.tmp"]
    assert "1 stale temporary" in nncap("check", url, "--repair").stderr
    assert not old.exists() and fresh.exists() and len(Store(url, mode="r").catalog()) == 3


def test_invalid_store_exits_1_and_other_schema_is_named(tmp_path):
    url, store = make_store(tmp_path)
    zarr.open_group(store=store._zstore, path="graphs/g0", mode="r+").attrs["schema_version"] = 99
    p = nncap("check", url, check=False)
    assert p.returncode == 1 and "g0" in p.stderr and "schema version 99" in p.stderr


def test_tables_are_checked_and_json_output(tmp_path):
    import json

    import pandas as pd

    url, store = make_store(tmp_path)
    store.write_table("t", pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    report = json.loads(nncap("check", url, "--json").stdout)
    assert report["ok"] and report["graphs_checked"] == 3 and report["tables_checked"] == 1
    (tmp_path / "s.zarr" / "results" / "t" / "a" / "c" / "0").write_bytes(b"garbage")  # a damaged chunk
    p = nncap("check", url, "--json", check=False)
    report = json.loads(p.stdout)
    assert p.returncode == 1 and not report["ok"]
    assert [x["item"] for x in report["problems"]] == ["results/t"]
    assert "unreadable" in report["problems"][0]["problem"]
