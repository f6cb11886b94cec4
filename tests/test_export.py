"""`nncap export`: zoo manifests, safe checkpoint loading, explicit and implicit line graphs."""

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.cli_helpers import nncap
from graphs.meanfield import structure
from graphs.operator import InteractionOperator
from pipeline.errors import NncapError
from pipeline.export import ExportOptions, export_zoo, load_model, load_operator, model_line_graph, read_manifest
from pipeline.models import build
from pipeline.store import Store, StoreError

MLP = {"widths": [64, 12, 8, 10], "activation": "tanh"}


def write_zoo(root, n=2):
    root.mkdir(parents=True, exist_ok=True)
    lines = ['[zoo]\nname = "tiny"\ndataset = "digits"\n']
    for i in range(n):
        torch.manual_seed(i)
        model = build("mlp", MLP)
        if i % 2 == 0:
            name = f"m{i}.safetensors"
            save_file(model.state_dict(), str(root / name))
        else:
            name = f"m{i}.pt"
            torch.save(model.state_dict(), root / name)
        lines.append(f'[[models]]\nid = "m{i}"\ncheckpoint = "{name}"\narchitecture = "mlp"\n'
                     f'params = {{ widths = {MLP["widths"]}, activation = "tanh" }}\n'
                     f'metrics = {{ val_accuracy = 0.{i + 5} }}\n')
    (root / "manifest.toml").write_text("\n".join(lines))
    return root


@pytest.mark.parametrize("kind", ["weight", "chain", "hessian"])
def test_explicit_export_equals_operator_and_is_resumable(tmp_path, store_url, kind):
    zoo = write_zoo(tmp_path / "zoo")
    options = ExportOptions(interaction=kind, mode="explicit", probe_size=16, chunk_edges=500)
    result = export_zoo(store_url, zoo, client=None, options=options, show_progress=False)
    assert not result.failures and len(result.records) == 2
    store = Store(store_url, mode="r")
    name, entries = read_manifest(zoo)
    for entry in entries:
        rec = store.record(f"{name}.{entry.id}")
        P = store.read_graph(rec["id"]).P
        graph, factors = model_line_graph(load_model(entry), entry, options)
        expected = InteractionOperator(graph, factors).to_scipy()
        assert P.nnz == graph.n_edges == rec["n_edges"]
        assert np.array_equal(P.indices, expected.indices)
        np.testing.assert_allclose(P.data, expected.data, rtol=1e-12, atol=1e-15)
        ref = structure(P)
        if ref.well_defined and kind == "weight":
            assert rec["meta"]["beta_eff"] == pytest.approx(ref.beta_eff, rel=1e-9)
        assert rec["meta"]["metric_val_accuracy"] == entry.metrics["val_accuracy"]
        store.verify(rec["id"])
    again = export_zoo(store_url, zoo, client=None, options=options, show_progress=False)
    assert all(r.get("skipped") for r in again.records)
    with pytest.raises(NncapError, match="different checkpoint or options"):
        from pipeline.export import export_model
        export_model(store_url, name, entries[0], ExportOptions(interaction=kind, mode="explicit", probe_size=8))


def test_implicit_export_matches_explicit(tmp_path):
    zoo = write_zoo(tmp_path / "zoo", n=1)
    explicit, implicit = str(tmp_path / "e.zarr"), str(tmp_path / "i.zarr")
    for url, mode in ((explicit, "explicit"), (implicit, "implicit")):
        export_zoo(url, zoo, client=None, options=ExportOptions(interaction="chain", mode=mode, absolute=True,
                                                                probe_size=16), show_progress=False)
    P = Store(explicit, mode="r").read_graph("tiny.m0").P
    store = Store(implicit, mode="r")
    op = load_operator(store, "tiny.m0", device="cpu")
    assert op.beta_eff() == pytest.approx(structure(P).beta_eff, rel=1e-9)
    assert store.record("tiny.m0")["meta"]["beta_eff"] == pytest.approx(structure(P).beta_eff, rel=1e-9)
    with pytest.raises(StoreError, match="implicit line graph"):
        store.read_graph("tiny.m0")


class Evil:
    def __reduce__(self):
        return (open, ("/tmp/nncap-pwned", "w"))


def test_checkpoints_are_never_unpickled(tmp_path):
    zoo = write_zoo(tmp_path / "zoo", n=2)
    with open(zoo / "m1.pt", "wb") as f:
        pickle.dump({"0.weight": Evil()}, f)
    _, entries = read_manifest(zoo)
    with pytest.raises(NncapError, match="not a plain tensor state_dict"):
        load_model(entries[1])
    wrong = build("mlp", {"widths": [64, 5, 10]})
    save_file(wrong.state_dict(), str(zoo / "m0.safetensors"))
    with pytest.raises(NncapError, match="does not fit architecture mlp"):
        load_model(entries[0])


def test_manifest_errors_are_one_line(tmp_path):
    root = tmp_path / "z"
    root.mkdir()
    with pytest.raises(NncapError, match="no zoo manifest"):
        read_manifest(root)
    (root / "manifest.toml").write_text('[zoo]\nname = "z"\n[[models]]\nid = "a"\ncheckpoint = "a.pt"\n')
    with pytest.raises(NncapError, match="lacks architecture"):
        read_manifest(root)
    (root / "manifest.toml").write_text('[zoo]\nname = "z"\n[[models]]\nid = "a"\ncheckpoint = "a.pt"\n'
                                        'architecture = "mlp"\n')
    with pytest.raises(NncapError, match="no dataset"):
        read_manifest(root)
    with pytest.raises(NncapError, match="unknown architecture 'vit'"):
        build("vit", {})
    with pytest.raises(NncapError, match="has no parameter"):
        build("mlp", {"widths": [2, 2], "depth": 3})


def test_cli_export(tmp_path):
    zoo = write_zoo(tmp_path / "zoo")
    url = tmp_path / "s.zarr"
    out = nncap("export", zoo, "--store", url, "--interaction", "hessian", "--absolute", "--probe-size", "8",
                "--scheduler", "sync")
    assert "tiny.m0" in out.stdout and "beta_eff" in out.stdout
    bad = nncap("export", zoo, "--store", url, "--interaction", "fisher", check=False)
    assert bad.returncode == 2 and "--interaction must be one of" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_model_families_trace():
    from graphs.linegraph import trace

    for arch, params, shape in [("cnn", {"channels": [4, 6], "hidden": 5}, (2, 1, 8, 8)),
                                ("resnet", {"widths": [4, 6], "blocks": 1}, (2, 1, 8, 8))]:
        model = build(arch, params)
        g = trace(model, torch.randn(*shape))
        params = dict(model.named_parameters())
        excluded = sum(params[name].numel() for name in g.excluded)
        assert excluded > 0 if arch == "resnet" else excluded == 0
        assert g.n_nodes == sum(p.numel() for p in params.values()) - excluded
        assert g.n_edges > 0


def test_pretrained_backbones_export_implicitly(tmp_path):
    """The pretrained workflow: MNIST CNN, MobileNetV2, EfficientNet-Lite0 and VGG16-BN load strictly from
    their packages and export implicitly; β_eff from the stored factors equals the catalog's."""
    url = str(tmp_path / "p.zarr")
    p = nncap("run", "workflows/pretrained.toml", "--store", url, "--scheduler", "sync")
    assert "pretrained.efficientnet-lite0" in p.stdout and "pretrained.vgg16-bn-craft" in p.stdout
    store = Store(url, mode="r")
    catalog = store.catalog().set_index("id")
    assert catalog.loc["pretrained.mobilenet-v2", "n_nodes"] == 3470760  # 3,504,872 minus BatchNorm gains
    assert catalog.loc["pretrained.efficientnet-lite0", "n_edges_implicit"] > 5e9
    op = load_operator(store, "pretrained.mnist-cnn", device="cpu")
    assert op.beta_eff() == pytest.approx(catalog.loc["pretrained.mnist-cnn", "beta_eff"], rel=1e-12)
