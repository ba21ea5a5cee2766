"""Neal's funnel, as used in the SMILE experiments.

``theta = x_0 ~ N(0, s^2)`` (``s = theta_scale``, 3 in the paper) and
``x_i | theta ~ N(0, e^theta)`` for ``i = 1..d-1``.  Normalised log-density and score:

.. math::

    \\log\\pi(x) = -\\frac{\\theta^2}{2 s^2} - \\tfrac12\\log(2\\pi s^2)
        - \\tfrac12 e^{-\\theta} \\sum_{i\\ge1} x_i^2 - \\frac{d-1}{2}\\theta - \\frac{d-1}{2}\\log 2\\pi,

    \\partial_\\theta \\log\\pi = -\\theta/s^2 + \\tfrac12 e^{-\\theta}\\sum_{i\\ge1} x_i^2 - \\frac{d-1}{2},
    \\qquad \\partial_{x_i}\\log\\pi = -x_i e^{-\\theta}.

Exact moments (derived in ``smile_ref.theory.targets_sympy.funnel_moments``; the lognormal
moment ``E[e^{k theta}] = e^{k^2 s^2/2}``):

* mean 0; the coordinates are uncorrelated (``E[theta x_i] = E[x_i x_j] = 0``), so
  ``cov = diag(s^2, e^{s^2/2}, ..., e^{s^2/2})``;
* ``E[theta^2] = s^2``, ``Var[theta^2] = 2 s^4``;
* ``E[x_i^2] = E[e^theta] = e^{s^2/2}``;
  ``Var[x_i^2] = 3 E[e^{2 theta}] - E[e^theta]^2 = 3 e^{2 s^2} - e^{s^2}``.

The ``x_i`` marginals are not Gaussian, which is why ``second_moment_var`` is
overridden.  Reference: Neal (2003), "Slice sampling"; SMILE (arXiv 2602.06500)
experiments section.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend.validate import check_positive_float, check_positive_int
from .base import Target

__all__ = ["Funnel"]


class Funnel(Target):
    """Neal's funnel in ``dim`` dimensions (``dim >= 2``) with ``theta ~ N(0, theta_scale^2)``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import Funnel
    >>> t = Funnel(5)
    >>> t.second_moment[:2].round(4)  # s^2 and e^{s^2/2}
    array([ 9.    , 90.0171])
    >>> t.logdensity_and_grad(np.zeros((1, 5)))[1]  # d log p / d theta = -(d - 1)/2 at the origin
    array([[-2., -0., -0., -0., -0.]])
    """

    name = "funnel"

    def __init__(self, dim: int = 10, theta_scale: float = 3.0):
        dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"dim must be >= 2 for the funnel (theta plus at least one x_i), got {dim}")
        self.dim = dim
        self.theta_scale = check_positive_float(theta_scale, "theta_scale")
        s2 = self.theta_scale**2
        self._const = -0.5 * math.log(2.0 * math.pi * s2) - 0.5 * (dim - 1) * math.log(2.0 * math.pi)
        self.mean = np.zeros(dim)
        self.cov = np.diag(np.concatenate([[s2], np.full(dim - 1, math.exp(0.5 * s2))]))

    def _logdensity_and_grad(self, xp, x):
        s2 = self.theta_scale**2
        k = 0.5 * (self.dim - 1)
        theta = x[:, 0]
        rest = x[:, 1:]
        e = xp.exp(-theta)
        ss = xp.sum(rest * rest, axis=1)
        logp = -0.5 * theta * theta / s2 - 0.5 * ss * e - k * theta + self._const
        g_theta = -theta / s2 + 0.5 * ss * e - k
        g_rest = -rest * e[:, None]
        return logp, xp.concat([g_theta[:, None], g_rest], axis=1)

    @property
    def second_moment(self) -> np.ndarray:
        """``E[theta^2] = s^2``; ``E[x_i^2] = e^{s^2/2}``."""
        s2 = self.theta_scale**2
        return np.concatenate([[s2], np.full(self.dim - 1, math.exp(0.5 * s2))])

    @property
    def second_moment_var(self) -> np.ndarray:
        """``Var[theta^2] = 2 s^4``; ``Var[x_i^2] = 3 e^{2 s^2} - e^{s^2}``."""
        s2 = self.theta_scale**2
        vx = 3.0 * math.exp(2.0 * s2) - math.exp(s2)
        return np.concatenate([[2.0 * s2**2], np.full(self.dim - 1, vx)])

    def exact_sample(self, generator: np.random.Generator, n: int) -> np.ndarray:
        """``n`` i.i.d. host draws: ``theta = s z_0``, ``x_i = e^{theta/2} z_i``; shape ``(n, d)``."""
        n = check_positive_int(n, "n")
        z = generator.standard_normal((n, self.dim))
        theta = self.theta_scale * z[:, :1]
        return np.concatenate([theta, np.exp(0.5 * theta) * z[:, 1:]], axis=1)

    def describe(self) -> dict:
        return {"name": self.name, "dim": int(self.dim), "theta_scale": self.theta_scale}

    def __repr__(self) -> str:
        return f"Funnel(dim={self.dim}, theta_scale={self.theta_scale})"
