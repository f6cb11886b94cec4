import json
import os
import threading
import uuid

import numpy as np
import pytest
import zarr

from graphs.graph import from_edges
from pipeline.store import SCHEMA_VERSION, Store, StoreError, check_graph_id

from tests.conftest import sample_graphs


@pytest.fixture(params=["local", "memory", "s3"])
def any_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "s.zarr")
    if request.param == "s3":
        request.getfixturevalue("s3_env")
        return f"s3://nncap/{uuid.uuid4().hex}/s.zarr"
    return f"memory://nncap-{uuid.uuid4().hex}/s.zarr"


def test_roundtrip_every_sample(any_url):
    store = Store(any_url, chunk=4)  # tiny chunks: many chunks per array
    for name, g in sample_graphs().items():
        store.write_graph(name, g, meta={"family": name.split("_")[0]})
    reader = Store(any_url, mode="r")
    assert sorted(reader.catalog()["id"]) == sorted(sample_graphs())
    for name, g in sample_graphs().items():
        back = reader.read_graph(name)
        assert back.equals(g), name
        reader.verify(name)


def test_layout_is_anndata_csr(store_url):
    g = sample_graphs()["directed_weighted_loops"]
    Store(store_url, chunk=3).write_graph("g", g, source="test")
    root = zarr.open_group(store_url, mode="r")
    assert root.attrs["schema_version"] == SCHEMA_VERSION and root.metadata.zarr_format == 3
    P = root["graphs/g/P"]
    assert P.attrs["encoding-type"] == "csr_matrix" and P.attrs["encoding-version"] == "0.1.0"
    assert P.attrs["shape"] == [5, 5]
    assert P["indptr"].dtype == np.int64 and P["indptr"].chunks == (3,)
    attrs = root["graphs/g"].attrs
    for key in ("kind", "directed", "weighted", "n_nodes", "n_edges", "source", "provenance",
                "content_hash", "schema_version", "created"):
        assert key in attrs
    assert root["graphs/g/nodes/pos"].shape == (5, 2)
    assert root["graphs/g/edges/kind"].shape == (g.nnz,)


def test_idempotent_and_overwrite(store_url):
    store = Store(store_url)
    g1, g2 = sample_graphs()["directed_unweighted"], sample_graphs()["undirected_weighted"]
    r1 = store.write_graph("x", g1)
    assert store.write_graph("x", g1)["published"] == r1["published"]  # nothing rewritten
    with pytest.raises(StoreError, match="already exists with different content"):
        store.write_graph("x", g2)
    store.write_graph("x", g2, overwrite=True)
    assert store.read_graph("x").equals(g2)
    assert len(store.catalog()) == 1


def test_delete_and_missing(store_url):
    store = Store(store_url)
    store.write_graph("x", sample_graphs()["isolated"])
    store.delete("x")
    assert "x" not in store and store.catalog().empty
    with pytest.raises(StoreError, match="no graph 'x'"):
        store.read_graph("x")


@pytest.mark.parametrize("bad", ["../etc", "a/b", ".hidden", "", "a..b", "x" * 201, "sp ace"])
def test_invalid_ids(bad):
    with pytest.raises(StoreError, match="invalid graph id"):
        check_graph_id(bad)


def test_read_only_mode_and_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no nncap store"):
        Store(str(tmp_path / "nope"), mode="r")
    assert not (tmp_path / "nope").exists()
    Store(str(tmp_path / "s"))
    ro = Store(str(tmp_path / "s"), mode="r")
    with pytest.raises(StoreError, match="read-only"):
        ro.write_graph("x", sample_graphs()["isolated"])


def test_refuses_foreign_directory_and_other_schema(tmp_path):
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "file.txt").write_text("hi")
    with pytest.raises(StoreError, match="not an nncap store"):
        Store(str(tmp_path / "occupied"))
    url = str(tmp_path / "s")
    Store(url)
    meta = tmp_path / "s" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["schema_version"] = 99
    meta.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="schema version 99"):
        Store(url)


def test_partial_write_is_invisible_and_replaced(store_url):
    store = Store(store_url)
    g = sample_graphs()["random_directed"]
    # a crashed writer: data written, never published
    grp = zarr.open_group(store_url, path="graphs/half", mode="w")
    grp.create_array("junk", shape=(3,), dtype="int64")
    assert store.unpublished() == ["half"] and store.catalog().empty
    store.write_graph("half", g)
    assert store.unpublished() == [] and store.read_graph("half").equals(g)


def test_verify_detects_corruption(store_url):
    store = Store(store_url)
    store.write_graph("g", sample_graphs()["random_directed"])
    arr = zarr.open_array(store_url, path="graphs/g/P/data", mode="a")
    arr[0] = arr[0] + 1
    with pytest.raises(StoreError, match="does not match its content hash"):
        store.verify("g")


def test_compaction_keeps_everything_and_tombstones(store_url):
    store = Store(store_url)
    for i in range(20):
        store.write_graph(f"g{i}", sample_graphs()["isolated"])
    store.delete("g3")
    assert store.pending_entries() == 21
    before = set(store.catalog()["id"])
    assert store.compact() == 21 and store.pending_entries() == 0
    assert set(store.catalog()["id"]) == before and "g3" not in before
    store.write_graph("g3", sample_graphs()["isolated"])
    store.compact()
    assert "g3" in store and len(store.catalog()) == 20


def test_concurrent_writers_and_compaction_lose_nothing(store_url):
    Store(store_url)
    g = sample_graphs()["directed_unweighted"]
    errors = []

    def writer(prefix):
        try:
            s = Store(store_url)
            for i in range(15):
                s.write_graph(f"{prefix}{i}", g)
        except Exception as e:  # surfaced below
            errors.append(e)

    def compactor():
        s = Store(store_url)
        for _ in range(10):
            s.compact()

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"] + [threading.Thread(target=compactor)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads[:2]):
        seen.append(len(Store(store_url, mode="r").catalog()))
    for t in threads:
        t.join()
    assert not errors
    assert sorted(Store(store_url).catalog()["id"]) == sorted(f"{p}{i}" for p in "ab" for i in range(15))
    assert seen == sorted(seen)  # a reader never sees the catalog shrink


def test_meta_must_be_scalar(store_url):
    with pytest.raises(StoreError, match="must be a scalar"):
        Store(store_url).write_graph("g", sample_graphs()["isolated"], meta={"x": [1, 2]})
    with pytest.raises(StoreError, match="clashes"):
        Store(store_url).write_graph("g", sample_graphs()["isolated"], meta={"n_nodes": 3})
    assert Store(store_url).unpublished() == []


def test_invalid_graph_writes_nothing(store_url):
    g, _ = from_edges([0], [1], 2)
    g.P.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Store(store_url).write_graph("bad", g)
    assert Store(store_url).unpublished() == [] and Store(store_url).catalog().empty


def _write_many(url, prefix, n, env):
    """A writer process: n graphs ``<prefix><i>`` (distinct weights), compacting now and then."""
    os.environ.update(env)
    store = Store(url)
    for i in range(n):
        store.write_graph(f"{prefix}{i}", _numbered_graph(prefix, i))
        if i % 7 == 6:
            store.compact()


def _numbered_graph(prefix, i):
    g, _ = from_edges([0, 1, 2, 3], [1, 2, 3, 0], 5, weight=[1.0, 2.0, 3.0, float(i + 1)],
                      node_props={"tag": np.array([f"{prefix}{i}"] * 5)})
    return g


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_writer_processes_and_a_reader(tmp_path, request, where):
    """Two processes create one store and write different graphs into it while this one reads: the
    reader only ever sees complete graphs, never a shrinking catalog, and in the end every graph is
    there once."""
    import multiprocessing

    env = request.getfixturevalue("s3_env") if where == "s3" else {}
    url = str(tmp_path / "s.zarr") if where == "local" else f"s3://nncap/{uuid.uuid4().hex}/s.zarr"
    n = 25 if where == "local" else 12
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(url, p, n, env)) for p in ("a", "b")]
    for w in writers:
        w.start()
    sizes, reads = [], 0
    while any(w.is_alive() for w in writers):
        try:
            reader = Store(url, mode="r")
        except StoreError as e:  # the writers create the store: until then there is none
            assert "no nncap store" in str(e)
            continue
        ids = list(reader.catalog()["id"])
        assert len(ids) == len(set(ids))  # nothing listed twice
        sizes.append(len(ids))
        for gid in ids[-3:]:  # the newest graphs: complete as soon as they are listed
            assert reader.read_graph(gid).equals(_numbered_graph(gid[0], int(gid[1:])))
            reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert sizes == sorted(sizes) and reads > 0
    final = Store(url, mode="r")
    assert sorted(final.catalog()["id"]) == sorted(f"{p}{i}" for p in "ab" for i in range(n))
    assert final.unpublished() == []
    for gid in final.catalog()["id"]:
        final.verify(gid)


def test_snapshots_are_parsed_once_per_process(store_url, monkeypatch):
    """Every task of a stage opens its own Store and looks up one record: the compacted snapshot must
    come from the process's cache, not be read and parsed again (that would make stages O(n²))."""
    store = Store(store_url)
    for i in range(3):
        store.write_graph(f"g{i}", _numbered_graph("g", i))
    store.compact()
    assert Store(store_url, mode="r").record("g0")["id"] == "g0"
    reads = []
    real = type(store.fs).cat_file
    monkeypatch.setattr(type(store.fs), "cat_file", lambda self, path, *a, **k: reads.append(path) or real(self, path, *a, **k))
    for i in range(3):
        assert Store(store_url, mode="r").record(f"g{i}")["content_hash"] == _numbered_graph("g", i).content_hash()
    assert not [p for p in reads if "/snapshots/" in p]
