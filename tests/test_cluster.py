"""Stages run on an existing dask.distributed cluster started by the test, and survive losing a
worker process mid-stage."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline.store import Store

from tests.cli_helpers import nncap
from tests.conftest import free_port
from tests.test_export import write_zoo


@pytest.fixture
def scheduler():
    port = free_port()
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
    port = free_port()
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


def _run_and_kill_a_worker(address, args):
    """Run ``nncap ARGS --scheduler ADDRESS`` and kill -9 the first worker process seen running one
    of its tasks (the nanny starts a fresh one); returns the finished CLI process."""
    from dask.distributed import Client

    cmd = [sys.executable, "-m", "pipeline.cli", *map(str, args), "--scheduler", address]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    killed = None
    try:
        with Client(address, timeout="30s") as client:
            pids = client.run(os.getpid)
            deadline = time.monotonic() + 120
            while killed is None and proc.poll() is None and time.monotonic() < deadline:
                busy = sorted(w for w, keys in client.processing().items() if keys)
                if busy:
                    killed = pids[busy[0]]
                    os.kill(killed, signal.SIGKILL)
                time.sleep(0.005)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert killed is not None, "the stage finished before a worker could be killed"
    assert proc.returncode == 0, err
    return out


def _records(url):
    return {r["id"]: {k: v for k, v in r.items() if k not in ("created", "published")}
            for r in Store(url, mode="r").records()}


@pytest.mark.slow
def test_export_survives_a_killed_worker(scheduler, tmp_path):
    zoo = write_zoo(tmp_path / "zoo", n=6)
    clean, killed = str(tmp_path / "clean.zarr"), str(tmp_path / "killed.zarr")
    nncap("export", zoo, "--store", clean, "--interaction", "chain", "--scheduler", "sync")
    _run_and_kill_a_worker(scheduler, ["export", zoo, "--store", killed, "--interaction", "chain"])
    assert _records(killed) == _records(clean)
    store = Store(killed, mode="r")
    assert store.unpublished() == [] and len(store.catalog()) == 6  # nothing duplicated or left over
    for gid in store.catalog()["id"]:
        assert store.read_graph(gid).equals(Store(clean, mode="r").read_graph(gid))
    nncap("check", killed)


@pytest.mark.slow
def test_resilience_survives_a_killed_worker(scheduler, tmp_path):
    urls = {k: str(tmp_path / f"{k}.zarr") for k in ("clean", "killed")}
    args = ["--all", "--points", "6", "--beta-target", "9", "--device", "cpu"]
    for url in urls.values():
        nncap("import", url, "gt:karate", "gt:dolphins", "gt:lesmis", "gt:polbooks", "--scheduler", "sync")
    nncap("resilience", urls["clean"], *args, "--scheduler", "sync", "--out", tmp_path / "clean")
    _run_and_kill_a_worker(scheduler, ["resilience", urls["killed"], *args, "--out", tmp_path / "killed"])
    import pandas as pd

    for name in ("resilience-mutualistic-node-removal-random", "resilience-mutualistic-node-removal-random-summary"):
        a, b = (Store(urls[k], mode="r").read_table(name)[0] for k in ("clean", "killed"))
        pd.testing.assert_frame_equal(a, b)  # same rows: none lost, none twice
