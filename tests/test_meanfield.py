import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphs import formats
from graphs.graph import from_edges
from graphs.meanfield import beta_eff, spectral_reduction, strengths, structure, x_eff

GOLDEN = sp.csr_array(np.array([[0, 1.0, 0], [0, 0, 2.0], [3.0, 0, 0]]))


def test_golden_example():
    s_in, s_out = strengths(GOLDEN, "cpu")
    assert s_in.tolist() == [1, 2, 3] and s_out.tolist() == [3, 1, 2]
    st = structure(GOLDEN, "cpu")
    assert st.total == 6 and st.well_defined
    assert st.beta_eff == pytest.approx(11 / 6, rel=1e-15)
    assert st.mean_strength == pytest.approx(2) and st.symmetry == pytest.approx(-0.5)
    assert st.heterogeneity == pytest.approx(1 / 3)
    assert float(x_eff(GOLDEN, [1.0, 0, 0], "cpu")) == pytest.approx(0.5)


def _random(directed=True, seed=0, n=300, m=2000, signed=False):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 2.0, m) * (rng.choice([-1, 1], m) if signed else 1)
    g, _ = from_edges(rng.integers(0, n, m), rng.integers(0, n, m), n, weight=w, directed=directed,
                      duplicates="sum", signed=signed)
    return g


def test_beta_eff_matches_dense_definition_and_decomposition():
    g = _random()
    A = g.P.toarray()
    one = np.ones(len(A))
    st = structure(g, "cpu")
    assert st.beta_eff == pytest.approx(one @ A @ A @ one / (one @ A @ one), rel=1e-12)
    assert st.beta_eff == pytest.approx(st.mean_strength + st.symmetry * st.heterogeneity, rel=1e-12)


def test_transpose_and_scaling_identities():
    g = _random(seed=1)
    b = beta_eff(g.P, "cpu")
    assert beta_eff(g.P.T.tocsr(), "cpu") == pytest.approx(b, rel=1e-12)
    assert beta_eff(3.5 * g.P, "cpu") == pytest.approx(3.5 * b, rel=1e-12)


def test_undirected_symmetry_is_one():
    g = _random(directed=False, seed=2)
    st = structure(g, "cpu")
    s = g.P.sum(axis=1)
    assert st.symmetry == pytest.approx(1.0, rel=1e-12)
    assert st.beta_eff == pytest.approx((s ** 2).mean() / s.mean(), rel=1e-12)


def test_x_eff_batched_and_weighted_by_out_strength():
    g = _random(seed=3)
    X = np.random.default_rng(0).random((g.n_nodes, 4))
    out = x_eff(g, X, "cpu").numpy()
    s_out = np.asarray(g.P.sum(axis=0)).ravel()
    assert np.allclose(out, s_out @ X / s_out.sum(), rtol=1e-13)


def test_torch_inputs_agree():
    g = _random(seed=4)
    ref = structure(g.P, "cpu")
    t_csr = formats.to_torch(g, "cpu")
    assert structure(t_csr, "cpu").beta_eff == pytest.approx(ref.beta_eff, rel=1e-13)
    assert structure(t_csr.to_sparse_coo(), "cpu").beta_eff == pytest.approx(ref.beta_eff, rel=1e-13)


def test_mixed_sign_cancellation_is_reported_not_printed():
    A = sp.csr_array(np.array([[0, 1.0, 0], [0, 0, -1.0], [0, 0, 0]]))
    st = structure(A, "cpu")
    assert not st.well_defined and math.isnan(st.beta_eff) and "cancels" in st.reason
    assert torch.isnan(x_eff(A, [1.0, 1.0, 1.0], "cpu"))
    signed = _random(seed=5, signed=True)
    st = structure(signed, "cpu")
    assert st.well_defined  # random signs do not cancel exactly: the value is reported


def test_regular_graph_symmetry_undefined_but_identity_holds():
    n = 10
    g, _ = from_edges(np.arange(n), (np.arange(n) + 1) % n, n)  # directed ring: all strengths 1
    st = structure(g, "cpu")
    assert math.isnan(st.symmetry) and st.heterogeneity == 0 and st.beta_eff == pytest.approx(1.0)


def test_empty_graph():
    st = structure(sp.csr_array((0, 0)), "cpu")
    assert not st.well_defined and st.reason == "empty graph"


def test_spectral_reduction_left_perron_vector():
    g = _random(seed=6, n=200, m=1500)
    sr = spectral_reduction(g)
    A = g.P.toarray()
    vals, vecs = np.linalg.eig(A.T)
    k = np.argmax(vals.real)
    assert sr.eigenvalue == pytest.approx(vals[k].real, rel=1e-8)
    assert np.allclose(sr.left_vector @ A, sr.eigenvalue * sr.left_vector, atol=1e-8)
    assert sr.left_vector.sum() == pytest.approx(1.0)
    assert float(sr.x_eff(np.ones(200))) == pytest.approx(1.0)
