"""Network dynamics dx_i/dt = F(x_i) + Σ_j P_ij G(x_i, x_j) (row = receiver), and their registry.

A :class:`Dynamics` is a name, F, G, default parameters and its source. F and G are written with
arithmetic and :func:`exp` only, so one definition serves numpy (the 1-D reduction), torch (the
network simulation, any device) and complex numbers (exact derivatives). Adding one is a few lines::

    register(Dynamics("logistic", F=lambda x, p: x * (1 - x / p["K"]), G=lambda xi, xj, p: xj,
                      params={"K": 1.0}, source="…", x_max=10.0))
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

from graphs.graph import InvalidGraphError

Params = Mapping[str, float]


def exp(x: Any) -> Any:
    """exp for numpy arrays, complex numbers and torch tensors alike."""
    if hasattr(x, "exp"):
        return x.exp()
    return np.exp(x)


@dataclass(frozen=True)
class Dynamics:
    """One family of network dynamics.

    ``F(x, p)`` is the self-dynamics, ``G(x_i, x_j, p)`` the effect of neighbour j on i, elementwise.
    ``x_max`` bounds the states searched by the 1-D reduction; ``high``/``low`` are the initial
    states of the high and low scenarios (Gao 2016 uses 6 and 0.001 for the mutualistic model).
    """

    name: str
    F: Callable[[Any, Params], Any]
    G: Callable[[Any, Any, Params], Any]
    params: Mapping[str, float]
    source: str
    x_max: float
    x_min: float = 0.0
    high: float = 6.0
    low: float = 1e-3
    description: str = ""

    def with_params(self, **overrides: float) -> "Dynamics":
        unknown = set(overrides) - set(self.params)
        if unknown:
            raise InvalidGraphError(f"dynamics {self.name!r} has no parameter(s) {sorted(unknown)}; "
                                    f"it has {sorted(self.params)}")
        return replace(self, params={**self.params, **overrides})

    def f1d(self, x: Any, beta: Any) -> Any:
        """Right-hand side of the 1-D reduced equation, F(x) + β G(x, x)."""
        return self.F(x, self.params) + beta * self.G(x, x, self.params)


DYNAMICS: dict[str, Dynamics] = {}


def register(dynamics: Dynamics) -> Dynamics:
    """Add a dynamics to the registry (replacing one of the same name)."""
    DYNAMICS[dynamics.name] = dynamics
    return dynamics


def get_dynamics(name: str, **overrides: float) -> Dynamics:
    """A registered dynamics, optionally with some parameters changed."""
    if name not in DYNAMICS:
        raise InvalidGraphError(f"unknown dynamics {name!r}; choose from {', '.join(sorted(DYNAMICS))}")
    return DYNAMICS[name].with_params(**overrides) if overrides else DYNAMICS[name]


register(Dynamics(
    "mutualistic",
    F=lambda x, p: p["B"] + x * (1 - x / p["K"]) * (x / p["C"] - 1),
    G=lambda xi, xj, p: xi * xj / (p["D"] + p["E"] * xi + p["H"] * xj),
    params={"B": 0.1, "K": 5.0, "C": 1.0, "D": 5.0, "E": 0.9, "H": 0.1},
    source="Gao, Barzel & Barabási, Nature 530, 307 (2016), ecological (plant-pollinator) model; "
           "parameters from Gao's M_system code",
    description="migration B, logistic growth to K with Allee threshold C, saturating mutualism",
    x_max=30.0, high=6.0, low=1e-3))

register(Dynamics(
    "regulatory",
    F=lambda x, p: -p["B"] * x ** p["f"],
    G=lambda xi, xj, p: xj ** p["h"] / (xj ** p["h"] + 1),
    params={"B": 1.0, "f": 1.0, "h": 2.0},
    source="Gao, Barzel & Barabási, Nature 530, 307 (2016), gene regulation (Michaelis-Menten); "
           "Barzel & Barabási, Nat. Phys. 9, 673 (2013)",
    description="degradation B x^f, Hill activation x^h/(1+x^h) by regulators",
    x_max=50.0, high=5.0, low=1e-3))

register(Dynamics(
    "epidemic",
    F=lambda x, p: -p["B"] * x,
    G=lambda xi, xj, p: (1 - xi) * xj,
    params={"B": 1.0},
    source="SIS epidemic mean field; Barzel & Barabási, Nat. Phys. 9, 673 (2013)",
    description="recovery B, infection by infected neighbours; x is the infected fraction",
    x_max=1.0, high=1.0, low=1e-3))

register(Dynamics(
    "biochemical",
    F=lambda x, p: p["F"] - p["B"] * x,
    G=lambda xi, xj, p: -p["R"] * xi * xj,
    params={"F": 1.0, "B": 1.0, "R": 1.0},
    source="protein-protein interaction (mass action); Barzel & Barabási, Nat. Phys. 9, 673 (2013)",
    description="synthesis F, degradation B, complex formation R x_i x_j consuming x_i",
    x_max=10.0, high=1.0, low=1e-3))

register(Dynamics(
    "birth-death",
    F=lambda x, p: -p["B"] * x ** p["b"],
    G=lambda xi, xj, p: xj ** p["a"],
    params={"B": 1.0, "b": 2.0, "a": 1.0},
    source="birth-death processes; Barzel & Barabási, Nat. Phys. 9, 673 (2013)",
    description="death B x^b, births from neighbours x_j^a",
    x_max=1000.0, high=5.0, low=1e-3))

register(Dynamics(
    "population",
    F=lambda x, p: p["B"] * x * (1 - x / p["K"]),
    G=lambda xi, xj, p: xi * xj / (1 + p["A"] * xj),
    params={"B": 1.0, "K": 1.0, "A": 1.0},
    source="logistic population growth with saturating (Holling type II) mutualism; the 'population "
           "dynamics' class of Barzel & Barabási, Nat. Phys. 9, 673 (2013); defaults are nncap's",
    description="logistic growth B to K, saturating benefit from neighbours",
    x_max=1000.0, high=5.0, low=1e-3))

register(Dynamics(
    "neuronal",
    F=lambda x, p: -x,
    G=lambda xi, xj, p: 1 / (1 + exp(-p["tau"] * (xj - p["mu"]))),
    params={"tau": 1.0, "mu": 3.0},
    source="Wilson-Cowan neuronal activity; Wilson & Cowan, Biophys. J. 12, 1 (1972); network form as "
           "in Laurence et al., PRX 9, 011042 (2019); defaults are nncap's",
    description="decay of activity, sigmoidal input from active neighbours",
    x_max=100.0, high=10.0, low=1e-3))
