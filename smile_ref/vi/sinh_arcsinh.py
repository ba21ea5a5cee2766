"""Mean-field sinh-arcsinh family (Jones & Pewsey 2009): a non-Gaussian family with exact log-density and score.

Coordinate-wise, ``theta_j = m_j + sigma_j x_j`` where ``x`` has the sinh-arcsinh density

.. math::

    z = \\sinh(w),\\quad w = \\delta\\,\\mathrm{asinh}(x) - \\epsilon,\\quad z \\sim N(0, 1),

so, with ``r = sqrt(1 + x^2)`` and ``h(w) = tanh w - sinh w cosh w``,

.. math::

    \\log q(\\theta) = \\sum_j \\Big[-\\tfrac12 z_j^2 - \\tfrac12\\log 2\\pi + \\log\\delta_j + \\log\\cosh w_j
                      - \\tfrac12\\log(1 + x_j^2) - \\log\\sigma_j\\Big],
    \\qquad \\partial_{\\theta_j}\\log q = u_j / \\sigma_j,\\quad u = \\frac{\\delta h(w)}{r} - \\frac{x}{r^2}.

Skewness ``epsilon`` and tail weight ``delta > 0``; ``epsilon = 0, delta = 1`` is ``N(m, sigma^2)``.
Unconstrained parameters ``lambda = (m, log sigma, epsilon, log delta)``, each ``(d,)``.
Sampling: ``x = sinh((asinh(z) + epsilon) / delta)``.

Parameter derivatives (hand-derived; checked by SymPy in ``theory/sinh_arcsinh.py`` and by finite
differences in ``tests/test_vi_sinh_arcsinh.py``), with
``u_x = delta^2 h'(w) / r^2 - delta x h(w) / r^3 - (1 - x^2) / r^4`` and ``h'(w) = sech^2 w - cosh 2w``:

* score ``g = u / sigma``: ``dg/dm = -u_x / sigma^2``, ``dg/dlog sigma = -(x u_x + u) / sigma``,
  ``dg/d epsilon = -delta h'(w) / (r sigma)``, ``dg/dlog delta = delta (h(w) + delta a h'(w)) / (r sigma)``
  (``a = asinh x``);
* ``l = log q``: ``dl/dm = -u / sigma``, ``dl/dlog sigma = -x u - 1``, ``dl/d epsilon = -h(w)``,
  ``dl/dlog delta = 1 + delta a h(w)``.

The mean and covariance have no elementary closed form; :attr:`mean` / :attr:`cov` are not provided
(``VIResult.mean``/``cov`` estimate them from 200 000 draws for this family).
"""
from __future__ import annotations

import math

from ..backend import array_namespace

__all__ = ["SinhArcsinh"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class SinhArcsinh:
    """Mean-field sinh-arcsinh family with parameters ``loc, log_scale, skew, log_tail`` (each ``(d,)``)."""

    kind = "sinh_arcsinh"
    PARAMS = ("loc", "log_scale", "skew", "log_tail")

    def __init__(self, loc, log_scale, skew, log_tail):
        xp = array_namespace(loc, log_scale, skew, log_tail)
        for name, v in zip(self.PARAMS, (loc, log_scale, skew, log_tail)):
            if v.ndim != 1 or v.shape != loc.shape:
                raise ValueError(f"{name} must have shape (d,) = {tuple(loc.shape)}, got {tuple(v.shape)}")
            if not bool(xp.all(xp.isfinite(v))):
                raise ValueError(f"{name} must be finite")
        self.xp = xp
        self.loc, self.log_scale, self.skew, self.log_tail = loc, log_scale, skew, log_tail

    @property
    def dim(self) -> int:
        return int(self.loc.shape[0])

    def params(self) -> dict:
        return {k: getattr(self, k) for k in self.PARAMS}

    def _parts(self, theta):
        xp = self.xp
        sigma = xp.exp(self.log_scale)[None, :]
        delta = xp.exp(self.log_tail)[None, :]
        x = (theta - self.loc[None, :]) / sigma
        a = xp.asinh(x)
        r2 = 1.0 + x * x
        r = xp.sqrt(r2)
        w = delta * a - self.skew[None, :]
        sh, ch = xp.sinh(w), xp.cosh(w)
        h = xp.tanh(w) - sh * ch
        u = delta * h / r - x / r2
        return sigma, delta, x, a, r, r2, w, sh, ch, h, u

    def log_prob(self, theta):
        """``log q(theta)``, ``(n, d) -> (n,)``."""
        xp = self.xp
        sigma, delta, x, a, r, r2, w, sh, ch, h, u = self._parts(theta)
        # log cosh w = |w| + log1p(exp(-2|w|)) - log 2 (overflow-safe)
        logcosh = xp.abs(w) + xp.log1p(xp.exp(-2.0 * xp.abs(w))) - math.log(2.0)
        terms = -0.5 * sh * sh - _HALF_LOG_2PI + xp.log(delta) + logcosh - 0.5 * xp.log(r2) - xp.log(sigma)
        return xp.sum(terms, axis=1)

    def score(self, theta):
        """``grad_theta log q = u / sigma``, ``(n, d) -> (n, d)``."""
        sigma, *_, u = self._parts(theta)
        return u / sigma

    def param_derivatives(self, theta):
        """``(dg, dl)``: dicts over :attr:`PARAMS` of ``d score / d lambda_j`` ``(n, d)`` and ``d log q / d lambda_j``
        ``(n, d)`` (per coordinate; the family is a product, so only the diagonal is non-zero)."""
        xp = self.xp
        sigma, delta, x, a, r, r2, w, sh, ch, h, u = self._parts(theta)
        hp = 1.0 / (ch * ch) - xp.cosh(2.0 * w)
        ux = delta * delta * hp / r2 - delta * x * h / (r2 * r) - (1.0 - x * x) / (r2 * r2)
        dg = {"loc": -ux / (sigma * sigma), "log_scale": -(x * ux + u) / sigma,
              "skew": -delta * hp / (r * sigma), "log_tail": delta * (h + delta * a * hp) / (r * sigma)}
        dl = {"loc": -u / sigma, "log_scale": -x * u - 1.0, "skew": -h, "log_tail": 1.0 + delta * a * h}
        return dg, dl

    def sample(self, random, n: int):
        """``n`` draws ``m + sigma sinh((asinh(z) + epsilon) / delta)``, ``z`` standard normal from ``random``."""
        xp = self.xp
        z = random.normal((n, self.dim), dtype=self.loc.dtype)
        x = xp.sinh((xp.asinh(z) + self.skew[None, :]) / xp.exp(self.log_tail)[None, :])
        return self.loc[None, :] + xp.exp(self.log_scale)[None, :] * x

    def __repr__(self) -> str:
        return f"SinhArcsinh(dim={self.dim})"
