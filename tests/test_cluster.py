"""Stages run on an existing dask.distributed cluster started by the test."""

import os
import socket
import subprocess
import sys
import time

import pytest

from pipeline.store import Store

from tests.cli_helpers import nncap


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler():
    port = _free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    bin_dir = os.path.dirname(sys.executable)
    procs = [subprocess.Popen([os.path.join(bin_dir, "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=env, stderr=subprocess.DEVNULL)]
    address = f"tcp://127.0.0.1:{port}"
    for _ in range(2):
        procs.append(subprocess.Popen([os.path.join(bin_dir, "dask"), "worker", address, "--nthreads", "1",
                                       "--no-dashboard"], env=env, stderr=subprocess.DEVNULL))
    from dask.distributed import Client
    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=60)
    try:
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@pytest.mark.slow
def test_import_and_summary_on_external_cluster(scheduler, store_url):
    p = nncap("import", store_url, "gt:karate", "gt:dolphins", "gt:celegansneural", "--scheduler", scheduler)
    assert "celegansneural" in p.stdout
    assert sorted(Store(store_url).catalog()["id"]) == ["celegansneural", "dolphins", "karate"]
    # the environment variable selects the same cluster
    wf = os.path.join(os.path.dirname(store_url), "w.toml")
    with open(wf, "w") as f:
        f.write('[[step]]\nstage = "summary"\n')
    out = nncap("run", wf, "--store", store_url, env={"NNCAP_SCHEDULER": scheduler})
    assert f"scheduler: {scheduler}" in out.stderr and "celegansneural" in out.stdout


def test_unreachable_scheduler_is_a_clear_error(store_url):
    port = _free_port()
    t0 = time.monotonic()
    p = nncap("import", store_url, "nx:karate", "--scheduler", f"tcp://127.0.0.1:{port}", check=False)
    assert p.returncode == 2 and "cannot reach Dask scheduler" in p.stderr
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_resilience_on_external_cluster_equals_sync(scheduler, store_url, tmp_path):
    nncap("import", store_url, "gt:karate", "gt:dolphins", "--scheduler", "sync")
    args = ["resilience", store_url, "--all", "--points", "4", "--beta-target", "9", "--device", "cpu"]
    nncap(*args, "--scheduler", scheduler, "--out", tmp_path / "dist")
    nncap(*args, "--scheduler", "sync", "--out", tmp_path / "sync")
    import pandas as pd
    name = "resilience-mutualistic-node-removal-random.csv"
    a, b = pd.read_csv(tmp_path / "dist" / name), pd.read_csv(tmp_path / "sync" / name)
    pd.testing.assert_frame_equal(a, b)
