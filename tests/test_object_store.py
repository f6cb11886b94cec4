"""The pipeline against an S3-compatible object store (moto's server on loopback): import →
resilience → export → query at ``s3://`` gives the same graphs, tables and answers as a local store."""

import json
import uuid

import pandas as pd
import pytest

from pipeline.store import Store

from tests.cli_helpers import nncap
from tests.test_export import write_zoo

RESULT = "resilience-mutualistic-node-removal-random"
# Catalog fields that record when, not what.
WHEN = ("created", "published")


def _catalog(url, env):
    out = json.loads(nncap("query", url, "--json", env=env).stdout)
    return [{k: v for k, v in rec.items() if k not in WHEN} for rec in out]


@pytest.mark.slow
def test_pipeline_on_s3_equals_local(tmp_path, s3_env):
    zoo = write_zoo(tmp_path / "zoo", n=2)
    prefix = f"s3://nncap/{uuid.uuid4().hex}"
    runs = {"local": (str(tmp_path / "local.zarr"), str(tmp_path / "results")),
            "s3": (f"{prefix}/store.zarr", f"{prefix}/results")}
    for where, (url, out) in runs.items():
        # the S3 import runs on a local Dask cluster: worker processes reach the store too
        scheduler = "local" if where == "s3" else "sync"
        nncap("import", url, "gt:karate", "gt:dolphins", "--scheduler", scheduler, env=s3_env)
        nncap("resilience", url, "--all", "--points", "4", "--beta-target", "9", "--device", "cpu",
              "--scheduler", "sync", "--out", out, env=s3_env)
        nncap("export", zoo, "--store", url, "--mode", "explicit", "--scheduler", "sync", env=s3_env)
        nncap("check", url, env=s3_env)

    local, remote = (Store(runs[k][0], mode="r") for k in ("local", "s3"))
    assert _catalog(runs["s3"][0], s3_env) == _catalog(runs["local"][0], s3_env)
    assert sorted(remote.catalog()["id"]) == ["dolphins", "karate", "tiny.m0", "tiny.m1"]
    for gid in remote.catalog()["id"]:
        assert remote.read_graph(gid).equals(local.read_graph(gid)), gid
        remote.verify(gid)
    assert remote.tables() == local.tables() and RESULT in remote.tables()
    for name in remote.tables():
        pd.testing.assert_frame_equal(remote.read_table(name)[0], local.read_table(name)[0])
    # the CSV results went to the bucket as well
    import fsspec

    with fsspec.open(f"{runs['s3'][1]}/{RESULT}.csv") as f:
        pd.testing.assert_frame_equal(pd.read_csv(f), pd.read_csv(f"{runs['local'][1]}/{RESULT}.csv"))
    # and a filtered query is answered the same way
    where = ["--where", "n_nodes > 40", "--json"]
    assert (json.loads(nncap("query", runs["s3"][0], *where, env=s3_env).stdout)[0]["id"]
            == json.loads(nncap("query", runs["local"][0], *where).stdout)[0]["id"])


def test_store_errors_on_s3(s3_env):
    url = f"s3://nncap/{uuid.uuid4().hex}/store.zarr"
    p = nncap("query", url, check=False, env=s3_env)
    assert p.returncode == 2 and "no nncap store" in p.stderr and "Traceback" not in p.stderr
    p = nncap("import", "s3://no-such-bucket-nncap/x.zarr", "nx:karate", check=False, env=s3_env)
    assert p.returncode == 2 and "bucket does not exist" in p.stderr and "Traceback" not in p.stderr
    p = nncap("query", url, check=False, env={**s3_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert p.returncode == 2 and "cannot open store" in p.stderr and "Traceback" not in p.stderr
