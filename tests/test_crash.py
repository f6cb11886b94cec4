"""kill -9 during an import leaves a store that lists only complete graphs; re-running completes it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.store import Store

from tests.cli_helpers import nncap

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
    nncap("import", store_url, *SOURCES, "--scheduler", "sync", "--nonfinite", "drop")
    store = Store(store_url)
    assert sorted(store.catalog()["id"]) == sorted(s[3:] for s in SOURCES)
    assert store.unpublished() == []
    for gid in store.catalog()["id"]:
        store.verify(gid)
