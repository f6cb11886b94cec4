"""Hostile input: fuzzed edge lists, graph files, checkpoints and stores. Every outcome is either a
correct result or a one-line user error (NncapError / InvalidGraphError); nothing else escapes and
nothing half-written becomes visible."""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from graphs.graph import from_edges
from pipeline.errors import USER_ERRORS
from pipeline.export import ZooModel, load_checkpoint, load_model
from pipeline.importers import ImportOptions, import_source, load_source
from pipeline.models import build
from pipeline.store import Store, StoreError

from tests.cli_helpers import nncap

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MLP = {"widths": [6, 5, 3], "activation": "tanh"}

edge_lines = st.lists(st.lists(st.sampled_from(["0", "1", "2", "17", "-1", "a", "b", "x y", "1.5", "-2.5", "1e400",
                                                "nan", "inf", "-inf", "", " ", "#", "%", "\t", "é", "\x00", "9" * 30]),
                               max_size=5), max_size=12)
options = st.builds(ImportOptions, directed=st.booleans(), weight=st.sampled_from(["auto", "none", "3", "weight"]),
                    duplicates=st.sampled_from(["sum", "max", "error"]),
                    self_loops=st.sampled_from(["keep", "drop", "error"]),
                    nonfinite=st.sampled_from(["error", "drop"]), signed=st.booleans(),
                    node_ids=st.sampled_from(["label", "index"]))


@FUZZ
@given(lines=edge_lines, opts=options, sep=st.sampled_from([" ", ",", "\t"]),
       suffix=st.sampled_from([".txt", ".csv", ".tsv"]))
def test_fuzzed_edge_lists_import_or_fail_cleanly(tmp_path, lines, opts, sep, suffix):
    text = "\n".join(sep.join(fields) for fields in lines)
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        path = os.path.join(d, f"edges{suffix}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        url = os.path.join(d, "s.zarr")
        try:
            record = import_source(url, path, opts)
        except USER_ERRORS as e:
            assert "\n" not in str(e).strip() and str(e)
            if os.path.exists(url):  # nothing half-written
                assert Store(url, mode="r").catalog().empty and not Store(url, mode="r").unpublished()
            return
        store = Store(url, mode="r")
        graph = store.read_graph(record["id"])
        graph.validate()
        assert np.all(np.isfinite(graph.P.data))
        if not opts.signed:
            assert np.all(graph.P.data >= 0)


def _valid_graph_files(root: Path) -> dict[str, bytes]:
    from graphs.formats import to_graph_tool

    g, _ = from_edges([0, 1, 2, 3], [1, 2, 0, 1], 5, weight=[1.0, 2.0, 0.5, 3.0])
    gt_graph = to_graph_tool(g)
    out = {}
    for fmt in ("gt", "graphml", "gml"):
        path = root / f"g.{fmt}"
        gt_graph.save(str(path), fmt=fmt)
        out[fmt] = path.read_bytes()
    return out


@FUZZ
@given(fmt=st.sampled_from(["gt", "graphml", "gml"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
def test_fuzzed_graph_tool_files_load_or_fail_cleanly(tmp_path, fmt, cut, flips):
    raw = bytearray(_valid_graph_files(tmp_path)[fmt])
    for where, value in flips:
        raw[int(where * (len(raw) - 1))] = value
    raw = raw[:max(1, int(cut * len(raw))) if cut < 1 else len(raw)]
    path = tmp_path / f"fuzz.{fmt}"
    path.write_bytes(bytes(raw))
    try:
        loaded = load_source(str(path), ImportOptions(nonfinite="drop", signed=True))
    except USER_ERRORS as e:
        assert str(e)
        return
    loaded.graph.validate()


@pytest.fixture(scope="module")
def checkpoint_bytes():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        save_file(build("mlp", MLP).state_dict(), path)
        return Path(path).read_bytes()


@FUZZ
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3))
def test_fuzzed_safetensors_load_or_fail_cleanly(tmp_path, checkpoint_bytes, cut, flips):
    raw = bytearray(checkpoint_bytes)
    for where, value in flips:
        raw[int(where * (len(raw) - 1))] = value
    raw = raw[:int(cut * len(raw))] if cut < 1 else raw
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(bytes(raw))
    entry = ZooModel(id="m", checkpoint=path, architecture="mlp", params=MLP, dataset=None)
    try:
        model = load_model(entry)
    except USER_ERRORS as e:
        assert "\n" not in str(e).strip()
        return
    assert all(torch.isfinite(p).all() for p in model.state_dict().values())


def test_truncated_checkpoint_and_nonfinite_weights_are_named(tmp_path, checkpoint_bytes):
    path = tmp_path / "t.safetensors"
    path.write_bytes(checkpoint_bytes[:len(checkpoint_bytes) // 2])
    with pytest.raises(USER_ERRORS, match="t.safetensors"):
        load_checkpoint(path)
    state = build("mlp", MLP).state_dict()
    state["1.weight"][1, 2] = float("nan")
    state["3.bias"][0] = float("inf")
    save_file(state, str(tmp_path / "nan.safetensors"))
    entry = ZooModel(id="m", checkpoint=tmp_path / "nan.safetensors", architecture="mlp", params=MLP, dataset=None)
    with pytest.raises(USER_ERRORS, match=r"non-finite.*1\.weight \(1 NaN\).*3\.bias \(1 inf\)"):
        load_model(entry)


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("pristine") / "s.zarr")
    store = Store(url, chunk=8)
    rng = np.random.default_rng(0)
    graphs = {}
    for i in range(3):
        src, dst = rng.integers(0, 20, 40), rng.integers(0, 20, 40)
        g, _ = from_edges(src, dst, 20, weight=rng.random(40), duplicates="max",
                          node_props={"name": np.array([f"n{j}" for j in range(20)])})
        store.write_graph(f"g{i}", g)
        graphs[f"g{i}"] = g
    return url, graphs


def _store_files(url):
    return sorted(os.path.relpath(os.path.join(d, f), url) for d, _, files in os.walk(url) for f in files)


@FUZZ
@given(pick=st.floats(0, 1), how=st.sampled_from(["flip", "truncate", "delete", "garbage", "json"]),
       where=st.floats(0, 1), value=st.integers(0, 255))
def test_corrupted_store_reads_correctly_or_fails_cleanly(tmp_path, pristine_store, pick, how, where, value):
    """Whatever single file of a store is damaged, reading and verifying either give the original
    graphs or raise StoreError: corruption never passes as data."""
    src, graphs = pristine_store
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        url = os.path.join(d, "s.zarr")
        shutil.copytree(src, url)
        files = _store_files(url)
        path = Path(url) / files[min(int(pick * len(files)), len(files) - 1)]
        raw = bytearray(path.read_bytes())
        if how == "flip" and raw:
            raw[int(where * (len(raw) - 1))] ^= value or 1
        elif how == "truncate":
            raw = raw[:int(where * len(raw))]
        elif how == "garbage":
            raw = bytearray(os.urandom(1 + int(where * 64)))
        elif how == "json":
            raw = bytearray(b'{"zarr_format": 3, "node_type": "array"}' if value % 2 else b"[1, 2]")
        if how == "delete":
            path.unlink()
        else:
            path.write_bytes(bytes(raw))
        try:
            store = Store(url, mode="r")
            ids = list(store.catalog()["id"])
        except StoreError:
            return
        for gid in ids:
            try:
                graph = store.read_graph(gid)
                store.verify(gid)
            except StoreError as e:
                assert str(e)
                continue
            assert graph.equals(graphs[gid]), (gid, files)


def test_hostile_cli_inputs_are_one_line(tmp_path):
    url = str(tmp_path / "s.zarr")
    for args, msg in [
        (["import", url, "nx:karate", "--id", "../escape"], "invalid graph id"),
        (["import", url, "nx:karate", "--id", "a/b"], "invalid graph id"),
    ]:
        p = nncap(*args, check=False)
        assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    assert not os.path.exists(url) and not (tmp_path / "escape").exists()  # nothing written
    nncap("import", url, "nx:karate")
    p = nncap("show", url, "../../etc/passwd", check=False)
    assert p.returncode == 2 and "invalid graph id" in p.stderr
    other = tmp_path / "other.zarr"
    Store(str(other))
    import zarr

    zarr.open_group(str(other), mode="r+").attrs["schema_version"] = 2
    p = nncap("query", other, check=False)
    assert p.returncode == 2 and "schema version 2" in p.stderr and "Traceback" not in p.stderr


def test_unsorted_or_out_of_range_csr_is_refused(tmp_path):
    import zarr

    url = str(tmp_path / "s.zarr")
    store = Store(url)
    g, _ = from_edges([0, 0, 1], [1, 2, 2], 3, weight=[1.0, 2.0, 3.0])
    store.write_graph("g", g)
    indices = zarr.open_array(store=store._zstore, path="graphs/g/P/indices", mode="r+")
    indices[:2] = [2, 1]  # row 0 no longer sorted
    with pytest.raises(StoreError, match="corrupt CSR.*sorted"):
        Store(url, mode="r").read_graph("g")
    indices[:2] = [1, 5]  # out of range
    with pytest.raises(StoreError, match="corrupt CSR"):
        Store(url, mode="r").read_graph("g")
    p = nncap("check", url, check=False)
    assert p.returncode == 1 and "invalid" in p.stderr
    p = nncap("show", url, "g", check=False)
    assert p.returncode == 2 and "corrupt CSR" in p.stderr and "Traceback" not in p.stderr


class _Evil:
    """Unpickling this runs code: it creates the file named in ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_zoo_exports_only_its_sound_models(tmp_path):
    """A zoo with a code-executing pickle, a truncated and a NaN checkpoint: one line per bad model,
    exit status 1, nothing of them written, the sound model exported, no code run."""
    import pickle

    from tests.test_export import write_zoo

    zoo = write_zoo(tmp_path / "zoo", n=4)  # m0, m2: safetensors; m1, m3: torch files
    marker = tmp_path / "pwned"
    with open(zoo / "m1.pt", "wb") as f:
        pickle.dump({"0.weight": _Evil(str(marker))}, f)
    (zoo / "m2.safetensors").write_bytes((zoo / "m2.safetensors").read_bytes()[:100])
    state = torch.load(zoo / "m3.pt", weights_only=True)
    next(iter(state.values())).view(-1)[0] = float("nan")
    torch.save(state, zoo / "m3.pt")
    url = str(tmp_path / "s.zarr")
    p = nncap("export", zoo, "--store", url, "--scheduler", "sync", check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr and not marker.exists()
    errors = [line for line in p.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 3
    assert "m1" in errors[0] and "not a plain tensor state_dict" in errors[0]
    assert "m2" in errors[1] and "safetensors" in errors[1]
    assert "m3" in errors[2] and "non-finite" in errors[2]
    store = Store(url, mode="r")
    assert list(store.catalog()["id"]) == ["tiny.m0"] and store.unpublished() == []
