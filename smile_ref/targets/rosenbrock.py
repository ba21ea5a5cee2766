"""The SMILE paper's banana / Rosenbrock target.

With ``h = d/2``, ``X = (x_0..x_{h-1})`` and ``Y = (x_h..x_{d-1})`` (the pairs are
``(X_i, Y_i) = (x_i, x_{h+i})``), the paper's density is

.. math::

    \\log\\pi(x) = -\\tfrac12 \\sum_{i<h} \\Big[(X_i - a)^2 + \\frac{(X_i^2 - Y_i)^2}{Q}\\Big]
                  - \\tfrac{h}{2}\\log(2\\pi) - \\tfrac{h}{2}\\log(2\\pi Q),

i.e. ``X_i ~ N(a, 1)`` and ``Y_i | X_i ~ N(X_i^2, Q)`` independently over ``i`` (we
add the normalising constant, which the paper omits; it does not change any
sampler).  Score:

.. math::

    \\partial_{X_i}\\log\\pi = -(X_i - a) - \\frac{2 X_i (X_i^2 - Y_i)}{Q}, \\qquad
    \\partial_{Y_i}\\log\\pi = \\frac{X_i^2 - Y_i}{Q}.

Exact moments (derived in ``smile_ref.theory.targets_sympy.rosenbrock_moments``):

* ``E[X] = a``, ``Var[X] = 1``, ``E[X^2] = 1 + a^2``, ``Var[X^2] = 4a^2 + 2``;
* ``E[Y] = 1 + a^2``, ``Var[Y] = Q + 4a^2 + 2``, ``Cov(X_i, Y_i) = 2a`` (all other
  pairs independent);
* ``E[Y^2] = Q + a^4 + 6a^2 + 3``;
* ``Var[Y^2] = 16a^6 + 168a^4 + 384a^2 + 96 + 4Q(a^4 + 6a^2 + 3) + 2Q^2``.

The paper starts chains at ``(1, ..., 1, 2, ..., 2)`` (= ``(a, ..., 1 + a^2, ...)``
for ``a = 1``), available as :attr:`paper_initial_point`; :meth:`initial_position`
keeps the package default (standard normal draws).
Reference: SMILE (arXiv 2602.06500) experiments section (``a = 1``, ``Q = 0.1``,
``d = 10``).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend.validate import check_positive_float, check_positive_int, check_real
from .base import Target

__all__ = ["Rosenbrock"]


class Rosenbrock(Target):
    """Banana target in even ``dim`` with location ``a`` and curvature width ``Q``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import Rosenbrock
    >>> t = Rosenbrock(2)
    >>> t.mean  # E[X] = a, E[Y] = 1 + a^2
    array([1., 2.])
    >>> t.logdensity_and_grad(np.array([[1.0, 1.0]]))[1]  # the crest of the banana
    array([[-0.,  0.]])
    """

    name = "rosenbrock"

    def __init__(self, dim: int = 10, a: float = 1.0, Q: float = 0.1):
        dim = check_positive_int(dim, "dim")
        if dim % 2 != 0:
            raise ValueError(f"dim must be even for the Rosenbrock target (pairs (X_i, Y_i)), got {dim}")
        a = check_real(a, "a")
        self.dim = dim
        self.half = dim // 2
        self.a = float(a)
        self.Q = check_positive_float(Q, "Q")
        h, a, Q = self.half, self.a, self.Q
        self._const = -0.5 * h * math.log(2.0 * math.pi) - 0.5 * h * math.log(2.0 * math.pi * Q)
        ex2 = 1.0 + a * a
        vy = Q + 4.0 * a * a + 2.0
        self.mean = np.concatenate([np.full(h, a), np.full(h, ex2)])
        cov = np.diag(np.concatenate([np.ones(h), np.full(h, vy)]))
        idx = np.arange(h)
        cov[idx, h + idx] = 2.0 * a
        cov[h + idx, idx] = 2.0 * a
        self.cov = cov

    def _logdensity_and_grad(self, xp, x):
        h, a, Q = self.half, self.a, self.Q
        X = x[:, :h]
        Y = x[:, h:]
        dx = X - a
        r = X * X - Y
        logp = -0.5 * xp.sum(dx * dx + (r * r) / Q, axis=1) + self._const
        gX = -dx - (2.0 / Q) * X * r
        gY = r / Q
        return logp, xp.concat([gX, gY], axis=1)

    @property
    def second_moment(self) -> np.ndarray:
        """``E[X^2] = 1 + a^2``; ``E[Y^2] = Q + a^4 + 6a^2 + 3``."""
        a, Q, h = self.a, self.Q, self.half
        return np.concatenate([np.full(h, 1.0 + a**2), np.full(h, Q + a**4 + 6 * a**2 + 3)])

    @property
    def second_moment_var(self) -> np.ndarray:
        """``Var[X^2] = 4a^2 + 2``; ``Var[Y^2] = 16a^6+168a^4+384a^2+96 + 4Q(a^4+6a^2+3) + 2Q^2``."""
        a, Q, h = self.a, self.Q, self.half
        vy2 = 16 * a**6 + 168 * a**4 + 384 * a**2 + 96 + 4 * Q * (a**4 + 6 * a**2 + 3) + 2 * Q**2
        return np.concatenate([np.full(h, 4 * a**2 + 2.0), np.full(h, vy2)])

    @property
    def paper_initial_point(self) -> np.ndarray:
        """Host vector ``(a, ..., a, 1 + a^2, ..., 1 + a^2)`` (the paper's start for ``a = 1``)."""
        return np.concatenate([np.full(self.half, self.a), np.full(self.half, 1.0 + self.a**2)])

    def exact_sample(self, generator: np.random.Generator, n: int) -> np.ndarray:
        """``n`` i.i.d. host draws ``X = a + z``, ``Y = X^2 + sqrt(Q) z'``; shape ``(n, d)``."""
        n = check_positive_int(n, "n")
        z = generator.standard_normal((n, self.dim))
        X = self.a + z[:, : self.half]
        Y = X * X + math.sqrt(self.Q) * z[:, self.half :]
        return np.concatenate([X, Y], axis=1)

    def describe(self) -> dict:
        return {"name": self.name, "dim": int(self.dim), "a": self.a, "Q": self.Q}

    def __repr__(self) -> str:
        return f"Rosenbrock(dim={self.dim}, a={self.a}, Q={self.Q})"
