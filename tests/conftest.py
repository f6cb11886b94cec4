import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np
import pytest

from graphs.graph import SparseGraph, from_edges


def sample_graphs() -> dict[str, SparseGraph]:
    """Small graphs covering the corner cases every format must carry losslessly."""
    rng = np.random.default_rng(0)
    out = {}
    out["empty"], _ = from_edges([], [], 0)
    out["isolated"], _ = from_edges([], [], 5)
    out["directed_unweighted"], _ = from_edges([0, 1, 2, 3], [1, 2, 0, 0], 6)
    out["directed_weighted_loops"], _ = from_edges(
        [0, 1, 2, 2, 4], [1, 2, 2, 0, 4], 5, weight=[0.5, 2.0, 3.0, 0.0, 1.5],
        node_props={"name": np.array(list("abcde")), "size": np.arange(5.0),
                    "pos": rng.normal(size=(5, 2))},
        edge_props={"kind": np.array([1, 2, 3, 4, 5])})
    out["undirected_weighted"], _ = from_edges(
        [0, 1, 2, 3, 3], [1, 2, 0, 3, 4], 6, weight=[1.0, 2.0, 3.0, 4.0, 5.0], directed=False,
        node_props={"group": np.array([0, 0, 1, 1, 2, 2])})
    src, dst = rng.integers(0, 40, 200), rng.integers(0, 40, 200)
    out["random_directed"], _ = from_edges(src, dst, 40, weight=rng.random(200), duplicates="max")
    out["random_undirected"], _ = from_edges(src, dst, 40, directed=False, self_loops="drop")
    out["signed"], _ = from_edges([0, 1], [1, 0], 2, weight=[-1.0, 2.0], signed=True)
    return out


@pytest.fixture(params=list(sample_graphs()))
def sample_graph(request) -> SparseGraph:
    return sample_graphs()[request.param]


@pytest.fixture
def store_url(tmp_path) -> str:
    return str(tmp_path / "store.zarr")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_env():
    """A local S3 endpoint (moto's server mode on loopback) with one bucket, ``nncap``; yields the
    environment variables that point boto/s3fs at it (set here and for CLI subprocesses)."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "nncap-test", "AWS_SECRET_ACCESS_KEY": "nncap-test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto server did not start")
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True).mkdir("nncap")
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
