"""kill -9 during import, export and select leaves a valid store that lists only complete graphs,
and a re-run does only the missing work."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.store import Store

from tests.cli_helpers import nncap
from tests.test_export import write_zoo
from tests.test_select import tiny_study

SOURCES = ["gt:karate", "gt:netscience", "gt:power", "gt:astro-ph", "gt:cond-mat-2005"]


def _kill_when(store_url, graph_id, delay):
    """Start an import and kill -9 it `delay` seconds after the group of `graph_id` appears."""
    cmd = [sys.executable, "-m", "pipeline.cli", "import", store_url, *SOURCES, "--scheduler", "sync",
           "--nonfinite", "drop"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    marker = os.path.join(store_url, "graphs", graph_id)
    deadline = time.monotonic() + 120
    while not os.path.exists(marker) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("graph_id,delay", [("karate", 0.0), ("power", 0.0), ("astro-ph", 0.0),
                                            ("astro-ph", 0.05), ("cond-mat-2005", 0.02)])
def test_kill_during_import(tmp_path, graph_id, delay):
    store_url = str(tmp_path / "store.zarr")
    _kill_when(store_url, graph_id, delay)
    store = Store(store_url)
    listed = list(store.catalog()["id"])
    assert set(listed) <= set(s[3:] for s in SOURCES)
    for gid in listed:  # everything listed is complete and intact
        store.verify(gid)
        store.read_graph(gid).validate()
    assert set(store.unpublished()).isdisjoint(listed)
    assert nncap("check", store_url).returncode == 0
    before = _published(store_url)
    nncap("import", store_url, *SOURCES, "--scheduler", "sync", "--nonfinite", "drop")
    store = Store(store_url)
    assert sorted(store.catalog()["id"]) == sorted(s[3:] for s in SOURCES)
    assert {gid: t for gid, t in _published(store_url).items() if gid in before} == before  # not rewritten
    assert store.unpublished() == []
    for gid in store.catalog()["id"]:
        store.verify(gid)


# -- kill points as a property: export and select ------------------------------------------------
# A kill point is "`delay` seconds after the k-th file of the run's output appears"; hypothesis
# draws them (derandomised, so CI sees the same points every time).
KILL_POINTS = settings(max_examples=5, deadline=None, database=None, derandomize=True,
                       suppress_health_check=[HealthCheck.too_slow])


def _files(roots):
    return sum(len(files) for root in roots for _, _, files in os.walk(root))


def _kill_after_files(args, roots, k, delay):
    """Run ``nncap ARGS`` and kill -9 it `delay` s after `k` files exist under `roots`; True if killed."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    deadline = time.monotonic() + 120
    while proc.poll() is None and _files(roots) < k and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def _published(url):
    """{id: publication time} of a store's graphs ({} when the run died before creating it)."""
    if not os.path.exists(os.path.join(url, "zarr.json")):
        return {}
    return {r["id"]: r["published"] for r in Store(url, mode="r").records()}


def _assert_valid(url):
    if os.path.exists(os.path.join(url, "zarr.json")):
        assert nncap("check", url).returncode == 0


@pytest.mark.slow
def test_kill_during_export_at_any_point(tmp_path):
    zoo = write_zoo(tmp_path / "zoo", n=5)
    args = ["export", zoo, "--interaction", "chain", "--mode", "explicit", "--scheduler", "sync"]
    clean = str(tmp_path / "clean.zarr")
    nncap(*args, "--store", clean)
    expected = {r["id"]: r["content_hash"] for r in Store(clean, mode="r").records()}

    @KILL_POINTS
    @given(k=st.integers(0, 60), delay=st.floats(0, 0.05))
    @example(k=8, delay=0.0)  # inside the first model's group
    def kill_at(k, delay):
        with tempfile.TemporaryDirectory() as d:
            url = os.path.join(d, "s.zarr")
            _kill_after_files([*args, "--store", url], [url], k, delay)
            _assert_valid(url)
            before = _published(url)
            p = nncap(*args, "--store", url)
            store = Store(url, mode="r")
            after = {r["id"]: r for r in store.records()}
            assert {i: r["content_hash"] for i, r in after.items()} == expected
            assert {i: after[i]["published"] for i in before} == before  # finished models were not redone
            if before:
                assert f"{len(before)} of 5 models were already in the store" in p.stderr
            assert nncap("check", url, "--repair").returncode == 0 and not Store(url, mode="r").unpublished()

    kill_at()


def _select_state(root):
    """What a selection run has finished: zoo runs and candidates (file bytes), and the saved
    trajectory of each interrupted candidate."""
    done = {p.name: p.read_bytes() for p in [*(root / "zoo").glob("*.json"), *(root / "out" / "candidates").glob("*.json")]}
    partial = {}
    for p in (root / "out" / "candidates").glob("*.partial.pt"):
        saved = torch.load(p, weights_only=True)
        partial[p.name.removesuffix(".partial.pt")] = json.loads(saved["progress"])["trajectory"]
    return done, partial


@pytest.mark.slow
def test_kill_during_select_at_any_point(tmp_path):
    (tmp_path / "clean").mkdir()
    clean = tiny_study(tmp_path / "clean")
    nncap("select", clean, "--store", tmp_path / "clean" / "s.zarr", "--scheduler", "sync")
    expected = pd.read_csv(tmp_path / "clean" / "out" / "tiny-select-trajectories.csv").drop(columns="seconds")

    @KILL_POINTS
    @given(k=st.integers(0, 24), delay=st.floats(0, 0.2))
    @example(k=2, delay=0.0)  # while the zoo trains
    def kill_at(k, delay):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            spec = tiny_study(root)
            url = str(root / "s.zarr")
            args = ["select", spec, "--store", url, "--scheduler", "sync"]
            (root / "zoo").mkdir()
            (root / "out" / "candidates").mkdir(parents=True)
            _kill_after_files(args, [root / "zoo", root / "out" / "candidates"], k, delay)
            _assert_valid(url)
            done, partial = _select_state(root)
            p = nncap(*args)
            for name, blob in done.items():  # finished zoo runs and candidates are reused as they are
                path = root / "zoo" / name if (root / "zoo" / name).exists() else root / "out" / "candidates" / name
                assert path.read_bytes() == blob, name
            n_done = sum(1 for name in done if name.startswith("tiny."))
            assert f"select: {n_done} of 3 candidates reused" in p.stderr
            for cid, saved in partial.items():  # interrupted candidates keep their finished epochs
                final = json.loads((root / "out" / "candidates" / f"{cid}.json").read_text())["trajectory"]
                assert final[:len(saved)] == saved, cid
            got = pd.read_csv(root / "out" / "tiny-select-trajectories.csv").drop(columns="seconds")
            pd.testing.assert_frame_equal(got, expected)
            assert Store(url, mode="r").tables() == Store(str(tmp_path / "clean" / "s.zarr"), mode="r").tables()

    kill_at()
