import numpy as np
import pytest

from graphs.dynamics import DYNAMICS, Dynamics, get_dynamics, register
from graphs.graph import InvalidGraphError
from graphs.reduction import critical_points, fixed_points, resilience_function, settle


def test_regulatory_critical_point_and_branch():
    d = get_dynamics("regulatory")
    (cp,) = critical_points(d, 0, 20)
    assert cp.beta == pytest.approx(2.0, abs=1e-8) and cp.x == pytest.approx(1.0, abs=1e-6)
    assert cp.kind == "saddle-node" and (cp.before, cp.after) == ("S", "SUS")
    for beta, xh in [(3, 2.6180), (5, 4.7913), (10, 9.8990)]:
        pts = fixed_points(d, beta)
        assert pts[0].x == 0 and pts[0].stable
        assert pts[-1].x == pytest.approx((beta + np.sqrt(beta ** 2 - 4)) / 2, rel=1e-10)
        assert pts[-1].x == pytest.approx(xh, abs=1e-4) and pts[-1].stable and not pts[1].stable


def test_mutualistic_low_state_vanishes_at_6_9725():
    d = get_dynamics("mutualistic")
    (cp,) = critical_points(d, 0, 20)
    assert cp.beta == pytest.approx(6.9725, abs=1e-4) and cp.x == pytest.approx(0.2039, abs=1e-3)
    assert (cp.before, cp.after) == ("SUS", "S")
    table = {0: (5.0247, 0.1158), 5: (7.3530, 0.1451), 10: (9.0185, None), 20: (11.5976, None)}
    for beta, (xh, xl) in table.items():
        pts = fixed_points(d, beta)
        assert settle(d, beta, d.high, pts) == pytest.approx(xh, abs=1e-4)
        if xl is not None:
            assert settle(d, beta, d.low, pts) == pytest.approx(xl, abs=1e-4)
        else:
            assert settle(d, beta, d.low, pts) == pytest.approx(xh, abs=1e-4)


@pytest.mark.parametrize("B", [0.5, 1.0, 2.5])
def test_sis_transcritical_at_B(B):
    d = get_dynamics("epidemic", B=B)
    (cp,) = critical_points(d, 0, 10)
    assert cp.beta == pytest.approx(B, rel=1e-8) and cp.kind == "transcritical" and abs(cp.x) < 1e-8
    assert settle(d, 2 * B, 1.0) == pytest.approx(1 - B / (2 * B), rel=1e-10)


def test_resilience_function_branches_are_continuous():
    d = get_dynamics("mutualistic")
    rf = resilience_function(d, np.linspace(0, 10, 101))
    for b in np.unique(rf["branch"]):
        sel = rf["branch"] == b
        assert len(set(rf["stable"][sel])) == 1
        assert np.all(np.abs(np.diff(rf["x"][sel])) < 0.5)  # no jumps inside a branch
    # low stable, middle unstable and high stable branches below β_c; only high above
    assert len(np.unique(rf["branch"])) == 3
    assert set(rf["beta"][~rf["stable"]]) <= set(np.linspace(0, 10, 101)[np.linspace(0, 10, 101) < 6.98])


def test_every_registered_dynamics_is_documented_and_evaluates():
    for name, d in DYNAMICS.items():
        assert d.source and d.params and d.x_max > d.x_min
        x = np.linspace(0.01, 1, 5)
        assert np.all(np.isfinite(d.f1d(x, 1.0))), name


def test_user_dynamics_in_a_few_lines():
    register(Dynamics("logistic-test", F=lambda x, p: x * (1 - x / p["K"]), G=lambda xi, xj, p: -p["c"] * xi * xj,
                      params={"K": 2.0, "c": 0.5}, source="test", x_max=10.0))
    d = get_dynamics("logistic-test", K=3.0)
    assert d.params["K"] == 3.0
    # x(1 - x/3) - 0.5 β x^2 = 0 -> x = 1 / (1/3 + 0.5 β)
    assert fixed_points(d, 1.0)[-1].x == pytest.approx(1 / (1 / 3 + 0.5), rel=1e-10)
    with pytest.raises(InvalidGraphError, match="no parameter"):
        get_dynamics("logistic-test", Q=1.0)
    with pytest.raises(InvalidGraphError, match="unknown dynamics"):
        get_dynamics("nope")
    del DYNAMICS["logistic-test"]
