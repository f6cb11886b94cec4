"""Line-graph structure of PyTorch models, interaction models against autograd, matrix-free = explicit."""

import numpy as np
import pytest
import torch
from torch import nn

from graphs.interaction import interaction, parameter_values
from graphs.linegraph import BIAS, UnsupportedModelError, trace
from graphs.meanfield import structure
from graphs.operator import InteractionOperator


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


def expected_edges(params):
    """Brute force: (u, v) for every pair with source(v) == target(u); params = [(target, source)]."""
    return {(u, v) for u, (tu, _) in enumerate(params) for v, (_, sv) in enumerate(params) if sv == tu}


def edge_set(graph):
    A = graph.adjacency().tocoo()
    return set(zip(A.row.tolist(), A.col.tolist()))


def mlp(*widths, act=nn.ReLU):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])


def test_mlp_structure_and_counts():
    g = trace(mlp(5, 4, 3, 2), torch.randn(2, 5))
    assert g.n_nodes == 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2
    # each hidden neuron joins its (fan-in + bias) upstream parameters with its fan-out
    assert g.n_edges == 4 * (5 + 1) * 3 + 3 * (4 + 1) * 2
    params = []
    neurons = {"in": range(0, 5), "h1": range(5, 9), "h2": range(9, 12), "out": range(12, 14)}
    for (a, b) in (("in", "h1"), ("h1", "h2"), ("h2", "out")):
        params += [(neurons[b][i], neurons[a][j]) for i in range(len(neurons[b])) for j in range(len(neurons[a]))]
        params += [(neurons[b][i], None) for i in range(len(neurons[b]))]
    assert edge_set(g) == expected_edges(params)
    assert [grp.predecessor for grp in g.groups] == [None, None, "0", "0", "2", "2"]
    assert (g.groups[1].source == BIAS).all()
    rows, cols = g.edges(0, g.n_nodes)
    assert np.array_equal(np.diff(g.indptr), np.bincount(rows, minlength=g.n_nodes))


def test_row_ranges_cover_rows_within_budget():
    g = trace(mlp(6, 5, 4, 3), torch.randn(2, 6))
    ranges = list(g.row_ranges(17))
    assert ranges[0][0] == 0 and ranges[-1][1] == g.n_nodes
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:]))
    for a, b in ranges:
        assert g.indptr[b] - g.indptr[a] <= 17 or b == a + 1


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)
        self.dw = nn.Conv2d(4, 4, 1, groups=4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.dw(self.c2(self.bn(self.c1(x))))))
        return self.fc(torch.flatten(x, 1))


def conv_params(w, in_ids, out_ids):
    o, per_group = w.shape[0], w.shape[1]
    groups = len(in_ids) // per_group
    out = []
    for oo in range(o):
        g = oo // (o // groups)
        for c in range(per_group):
            out += [(out_ids[oo], in_ids[g * per_group + c])] * int(np.prod(w.shape[2:]))
    return out


def test_conv_groups_flatten_and_exclusions():
    net = ConvNet()
    g = trace(net, torch.randn(1, 2, 4, 4))
    inp, h1, h2, h3, out = range(0, 2), range(2, 6), range(6, 10), range(10, 14), range(14, 17)
    params = conv_params(net.c1.weight, inp, h1) + [(n, None) for n in h1]
    params += conv_params(net.c2.weight, h1, h2)
    params += conv_params(net.dw.weight, h2, h3) + [(n, None) for n in h3]
    flat_src = [h3[f // 4] for f in range(16)]  # flatten: 4 channels x 2x2 positions
    params += [(out[k], flat_src[f]) for k in range(3) for f in range(16)] + [(n, None) for n in out]
    assert g.n_nodes == len(params) == sum(p.numel() for p in net.parameters()) - 8  # BN gains excluded
    assert edge_set(g) == expected_edges(params)
    assert g.excluded == ["bn.bias", "bn.weight"]


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(8, 2)

    def forward(self, x):
        y = torch.relu(self.fc1(x))
        z = self.fc2(y) + y
        return self.fc3(torch.cat([z, y], dim=1))


def test_residual_merges_and_concat_splits_neurons():
    net = Residual()
    g = trace(net, torch.randn(2, 3))
    inp, h, out = range(0, 3), range(3, 7), range(7, 9)  # fc2's outputs merge with fc1's
    params = [(h[i], inp[j]) for i in range(4) for j in range(3)] + [(n, None) for n in h]
    params += [(h[i], h[j]) for i in range(4) for j in range(4)] + [(n, None) for n in h]
    cat_src = list(h) + list(h)
    params += [(out[k], cat_src[f]) for k in range(2) for f in range(8)] + [(n, None) for n in out]
    assert edge_set(g) == expected_edges(params)
    assert g.n_neurons == 9
    assert g.group("fc3.weight").predecessor is None
    assert g.n_self_loops == int(g.adjacency().diagonal().sum()) == 4  # fc2's diagonal: output is input


class Block(nn.Module):
    """A transformer block: attention (not mappable) and a feed-forward sublayer."""

    def __init__(self, d=4, hidden=6):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = x + torch.softmax(q @ k.transpose(1, 2), -1) @ v
        return x + self.ffn(self.norm(x))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.block, self.head = Block(), nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.block(x).mean(1))


def test_transformer_ffn_submodule_and_clear_errors():
    net = Classifier()
    x = torch.randn(2, 5, 4)
    with pytest.raises(UnsupportedModelError, match="chunk|getitem|matmul"):
        trace(net, x)
    g = trace(net, x, module="block.ffn")
    assert [grp.name for grp in g.groups] == ["block.ffn.0.weight", "block.ffn.0.bias",
                                              "block.ffn.2.weight", "block.ffn.2.bias"]
    assert g.n_edges == 6 * (4 + 1) * 4
    with pytest.raises(UnsupportedModelError, match="no sub-module 'nope'"):
        trace(net, x, module="nope")
    # chain works on token inputs (rows = samples x positions); hessian needs independent rows
    y = torch.tensor([0, 2])
    op = InteractionOperator(g, interaction(net, g, "chain", x, y))
    assert np.allclose(op.in_strength().numpy(), op.to_scipy().sum(1), rtol=1e-12, atol=1e-15)
    with pytest.raises(UnsupportedModelError, match="2-D inputs"):
        interaction(net, g, "hessian", x, y)


def test_unsupported_modules_are_named():
    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.emb(x))

    with pytest.raises(UnsupportedModelError, match=r"emb \(Embedding\)"):
        trace(Recurrent(), torch.tensor([[1, 2]]))
    with pytest.raises(UnsupportedModelError, match="Linear layers only"):
        net = ConvNet()
        interaction(net, trace(net, torch.randn(1, 2, 4, 4)), "chain", torch.randn(3, 2, 4, 4), torch.tensor([0, 1, 2]))
    net = Residual()
    with pytest.raises(UnsupportedModelError, match="input of fc2"):
        interaction(net, trace(net, torch.randn(2, 3)), "hessian", torch.randn(3, 3), torch.tensor([0, 1, 1]))


def full_hessian(net, graph, x, y):
    def loss_of(vec):
        params, offset = {}, 0
        for grp in graph.groups:
            params[grp.name] = vec[offset:offset + grp.size].reshape(grp.shape)
            offset += grp.size
        return nn.functional.cross_entropy(torch.func.functional_call(net, params, (x,)), y)

    return torch.autograd.functional.hessian(loss_of, parameter_values(net, graph)).numpy()


@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU, nn.GELU])
def test_hessian_entries_match_autograd(act):
    net = nn.Sequential(nn.Linear(5, 4), act(), nn.Dropout(0.3), nn.Linear(4, 4), act(), nn.Linear(4, 3))
    x, y = torch.randn(9, 5), torch.randint(0, 3, (9,))
    g = trace(net, x)
    P = InteractionOperator(g, interaction(net, g, "hessian", x, y)).to_scipy().tocoo()
    H = full_hessian(net.eval(), g, x, y)  # P is taken in eval mode (dropout off)
    assert P.nnz == g.n_edges
    np.testing.assert_allclose(P.data, -H[P.row, P.col], rtol=0, atol=1e-8 * np.abs(H).max())
    assert np.abs(P.data).max() > 1e-3  # non-trivial
    # the chain model is the Hessian without the curvature term: equal on the output-side block only
    C = InteractionOperator(g, interaction(net, g, "chain", x, y)).to_scipy().tocoo()
    assert not np.allclose(C.data, P.data)


def test_chain_matches_backprop_coefficient():
    net = mlp(3, 4, 2, act=nn.Tanh)
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    g = trace(net, x)
    P = InteractionOperator(g, interaction(net, g, "chain", x, y)).to_scipy()
    a = x
    z1 = net[0](a)
    s = 1 - torch.tanh(z1) ** 2
    out = net(x)
    delta = torch.autograd.grad(nn.functional.cross_entropy(out, y), out)[0]  # includes the 1/N of the mean
    W1, W2 = g.group("0.weight"), g.group("2.weight")
    for i, j, k in [(0, 0, 0), (3, 2, 1), (2, 1, 0)]:
        u = W1.offset + i * 3 + j
        v = W2.offset + k * 4 + i
        expected = -(a[:, j] * s[:, i] * delta[:, k]).sum()
        assert P[u, v] == pytest.approx(float(expected.detach()), rel=1e-12)


def test_softmax_identity_zeroes_signed_beta_through_output_layer():
    net = mlp(6, 5, 4, 3)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    g = trace(net, x)
    for kind in ("chain", "hessian"):
        op = InteractionOperator(g, interaction(net, g, kind, x, y))
        out_rows = np.r_[g.group("2.weight").nodes, g.group("2.bias").nodes]
        # Σ over output classes of P vanishes: middle-layer parameters get no in-strength
        assert np.abs(op.in_strength().numpy()[g.group("2.weight").nodes]).max() < 1e-15
        assert abs(op.beta_eff()) < 1e-12
        assert out_rows.size


ARCHS = {
    "mlp": (lambda: mlp(5, 4, 3, 3, act=nn.Tanh), (7, 5)),
    "conv": (ConvNet, (3, 2, 4, 4)),
    "residual": (Residual, (4, 3)),
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("kind", ["weight", "chain", "hessian"])
@pytest.mark.parametrize("absolute", [False, True])
def test_matrix_free_equals_explicit(arch, kind, absolute):
    make, shape = ARCHS[arch]
    net = make()
    x = torch.randn(*shape)
    y = torch.randint(0, 3, (shape[0],))
    g = trace(net, x)
    if kind != "weight" and arch != "mlp":
        with pytest.raises(UnsupportedModelError):
            interaction(net, g, kind, x, y)
        return
    op = InteractionOperator(g, interaction(net, g, kind, x, y), absolute=absolute, max_elements=50)
    P = op.to_scipy()
    assert P.nnz == g.n_edges
    if absolute:
        assert (P.data >= 0).all()
    ref = structure(P)
    got = op.structure()
    z = np.random.default_rng(1).normal(size=g.n_nodes)
    rel = lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(np.asarray(b)).max(), 1e-300)  # noqa: E731
    assert rel(op.in_strength().numpy(), P.sum(1)) < 1e-9
    assert rel(op.out_strength().numpy(), P.sum(0)) < 1e-9
    assert rel(op.matvec(z).numpy(), P @ z) < 1e-9
    assert rel(op.rmatvec(z).numpy(), P.T @ z) < 1e-9
    assert got.total == pytest.approx(ref.total, rel=1e-9, abs=1e-15 * ref.abs_total)
    if ref.well_defined and abs(ref.beta_eff) > 1e-12:
        assert got.beta_eff == pytest.approx(ref.beta_eff, rel=1e-9)
        assert op.x_eff(z) == pytest.approx(float(P.sum(0) @ z / P.sum()), rel=1e-9)
    assert got.abs_total >= ref.abs_total * (1 - 1e-12)


def test_conv1d_structure():
    net = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv1d(3, 2, 1), nn.Flatten(), nn.Linear(2 * 5, 2))
    g = trace(net, torch.randn(1, 2, 5))
    inp, h1, h2, out = range(0, 2), range(2, 5), range(5, 7), range(7, 9)
    params = conv_params(net[0].weight, inp, h1) + [(n, None) for n in h1]
    params += conv_params(net[2].weight, h1, h2) + [(n, None) for n in h2]
    flat_src = [h2[f // 5] for f in range(10)]  # flatten: 2 channels x 5 positions
    params += [(out[k], flat_src[f]) for k in range(2) for f in range(10)] + [(n, None) for n in out]
    assert edge_set(g) == expected_edges(params)


def test_operator_spectral_radius_matches_scipy():
    from graphs.topology import spectral_radius

    net = Residual()  # merged neurons give the line graph cycles (self-loops on fc2's diagonal)
    g = trace(net, torch.randn(2, 3))
    op = InteractionOperator(g, interaction(net, g, "weight"))
    rho = spectral_radius(op.to_scipy())
    assert rho > 0 and op.spectral_radius(iterations=2000) == pytest.approx(rho, rel=1e-6)
    feed_forward = mlp(4, 3, 2)
    g2 = trace(feed_forward, torch.randn(2, 4))
    assert InteractionOperator(g2, interaction(feed_forward, g2, "weight")).spectral_radius() == 0.0
    signed = InteractionOperator(g2, interaction(feed_forward, g2, "chain", torch.randn(5, 4),
                                                 torch.tensor([0, 1, 0, 1, 1])))
    assert np.isnan(signed.spectral_radius())
